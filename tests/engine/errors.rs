//! HTTP errors.

use crate::fixture::*;

/// Rule: code 0 `Transport unknown` for a missing or unknown transport, even
/// when EIO is missing too.
#[tokio::test]
async fn error_0_transport_unknown() {
    let (addr, _rec) = start(config().build()).await;
    for target in [
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
        "/engine.io/?transport=abc",
        "/engine.io/",
    ] {
        let r = request(addr, "GET", target, &[], b"").await;
        assert_error(&r, 400, 0, "Transport unknown");
    }
}

/// Rule: code 1 `Session ID unknown` for a sid that never existed, GET and POST.
#[tokio::test]
async fn error_1_session_id_unknown() {
    let (addr, _rec) = start(config().build()).await;
    assert_error(&get(addr, "nope").await, 400, 1, "Session ID unknown");
    assert_error(
        &post(addr, "nope", b"4x").await,
        400,
        1,
        "Session ID unknown",
    );
}

/// Rule: code 2 `Bad handshake method` for a POST or PUT without sid.
#[tokio::test]
async fn error_2_bad_handshake_method() {
    let (addr, _rec) = start(config().build()).await;
    for method in ["POST", "PUT"] {
        let r = request(
            addr,
            method,
            "/engine.io/?EIO=4&transport=polling",
            &[],
            b"4x",
        )
        .await;
        assert_error(&r, 400, 2, "Bad handshake method");
    }
}

/// Rule: code 3 `Bad request` for a plain GET with transport=websocket and no
/// upgrade headers. (Polling after an upgrade: see the upgrade test.)
#[tokio::test]
async fn error_3_websocket_without_upgrade_headers() {
    let (addr, _rec) = start(config().build()).await;
    let r = request(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=websocket",
        &[],
        b"",
    )
    .await;
    assert_error(&r, 400, 3, "Bad request");
}

/// Rule: code 4 `Forbidden`, status 403, when the allow_request hook refuses
/// a handshake (polling or WebSocket); accepted handshakes proceed.
#[tokio::test]
async fn error_4_forbidden_by_allow_request() {
    let cfg = config()
        .allow_request(|parts| parts.headers.contains_key("x-let-me-in"))
        .build();
    let (addr, _rec) = start(cfg).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(addr, "GET", target, &[], b"").await;
    assert_error(&r, 403, 4, "Forbidden");
    let r = request(addr, "GET", target, &[("X-Let-Me-In", "1")], b"").await;
    assert_eq!(r.status, 200);
    open_packet(&r.text());
    match ws_connect(addr, "/engine.io/?EIO=4&transport=websocket").await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        Err(e) => panic!("unexpected websocket error {e}"),
        Ok(_) => panic!("websocket handshake accepted despite allow_request"),
    }
}

/// Rule: code 5 `Unsupported protocol version` when EIO is missing, 3 or junk.
#[tokio::test]
async fn error_5_unsupported_protocol_version() {
    let (addr, _rec) = start(config().build()).await;
    for target in [
        "/engine.io/?transport=polling",
        "/engine.io/?EIO=3&transport=polling",
        "/engine.io/?EIO=abc&transport=polling",
    ] {
        let r = request(addr, "GET", target, &[], b"").await;
        assert_error(&r, 400, 5, "Unsupported protocol version");
    }
}
