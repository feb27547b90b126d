//! CORS.

use crate::fixture::*;

/// Rule: with `Cors::any()`, a preflight gets 204 with the origin echoed,
/// credentials true, the allowed methods and the requested headers echoed;
/// a normal GET with Origin gets the allow-origin header.
#[tokio::test]
async fn cors_any_origin() {
    let (addr, _rec) = start(config().cors(Cors::any()).build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(
        addr,
        "OPTIONS",
        target,
        &[
            ("Origin", "http://x.test"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type, x-custom"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://x.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let methods = r
        .header("access-control-allow-methods")
        .expect("allow-methods");
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );

    let r = request(addr, "GET", target, &[("Origin", "http://x.test")], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://x.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

/// Rule: with an origin list, a listed origin is allowed and another origin
/// gets no allow-origin header (and, without credentials, no credentials header).
#[tokio::test]
async fn cors_origin_list() {
    let cors = Cors {
        origins: AllowedOrigins::List(vec!["http://a.test".into()]),
        credentials: false,
    };
    let (addr, _rec) = start(config().cors(cors).build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(addr, "GET", target, &[("Origin", "http://a.test")], b"").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);
    for method in ["GET", "OPTIONS"] {
        let r = request(addr, method, target, &[("Origin", "http://b.test")], b"").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{method}");
    }
}

/// Rule: without CORS configured no Access-Control-* header is ever sent.
#[tokio::test]
async fn cors_absent_sends_no_headers() {
    let (addr, _rec) = start(config().build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let headers = [
        ("Origin", "http://x.test"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    for method in ["GET", "OPTIONS"] {
        let r = request(addr, method, target, &headers, b"").await;
        let cors: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{method}: {cors:?}");
    }
}
