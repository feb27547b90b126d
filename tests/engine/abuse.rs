//! Abuse limits (SPEC.md §2.16): handshakes per address, the session cap,
//! the first-exchange deadline, the polling body deadline, the WebSocket
//! `Origin` check.

use rollcall::engine::{AbuseLimits, AllowedOrigins, Cors, TransportFault};
use rollcall::http::Rate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::*;

fn limits() -> AbuseLimits {
    AbuseLimits::unlimited()
}

/// Rule: over the address's handshake rate: 429, code 6, `Retry-After: 1`.
#[tokio::test]
async fn handshakes_over_the_rate_get_429_code_6() {
    let l = AbuseLimits {
        handshakes_per_addr: Some(Rate::new(0.5, 2.0)),
        ..limits()
    };
    let (addr, _rec) = start(quiet().abuse(l).build()).await;
    handshake(addr).await;
    handshake(addr).await;
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_error(&r, 429, 6, "Too many requests");
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// Rule: with the session cap reached: 503, code 7, `Retry-After: 5`; a
/// closed session frees its place.
#[tokio::test]
async fn the_session_cap_answers_503_code_7() {
    let l = AbuseLimits {
        max_sessions: 1,
        ..limits()
    };
    let (addr, rec) = start(quiet().abuse(l).build()).await;
    let (sid, _) = handshake(addr).await;
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_error(&r, 503, 7, "Server busy");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_ok(&post(addr, &sid, b"1").await);
    rec.wait_closes(1).await;
    handshake(addr).await;
}

/// Rule: a polling session with no request after its handshake closes after
/// the first-exchange timeout; one that polled in time stays open.
#[tokio::test]
async fn a_session_that_never_polls_is_reclaimed_early() {
    let l = AbuseLimits {
        first_exchange_timeout: Duration::from_millis(300),
        ..limits()
    };
    let (addr, rec) = start(quiet().abuse(l).build()).await;
    let (idle, _) = handshake(addr).await;
    let (active, _) = handshake(addr).await;
    assert_ok(&post(addr, &active, b"4hi").await);
    let closes = rec.wait_closes(1).await;
    assert_eq!(closes, vec![CloseReason::FirstExchangeTimeout]);
    assert_error(&get(addr, &idle).await, 400, 1, "Session ID unknown");
    let echoed = get(addr, &active).await;
    assert_eq!(echoed.text(), "4hi");
}

/// Rule: a POST body slower than the floor: 408, the session closes with
/// "request body too slow".
#[tokio::test]
async fn a_slow_post_body_gets_408() {
    let l = AbuseLimits {
        body_timeout: Duration::from_millis(300),
        body_min_rate: 1_000_000,
        ..limits()
    };
    let (addr, rec) = start(quiet().abuse(l).build()).await;
    let (sid, _) = handshake(addr).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n4abc",
        poll_url(&sid)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let closes = rec.wait_closes(1).await;
    assert_eq!(
        closes,
        vec![CloseReason::TransportError(TransportFault::SlowBody)]
    );
}

/// Rule: with CORS for a list of origins, a WebSocket from another origin
/// gets 403 code 4; a listed origin and no origin are let through.
#[tokio::test]
async fn websocket_origin_follows_the_cors_list() {
    let cors = Cors {
        origins: AllowedOrigins::List(vec!["http://ok.test".into()]),
        credentials: true,
    };
    let (addr, _rec) = start(quiet().cors(cors).abuse(limits()).build()).await;
    let url = "/engine.io/?EIO=4&transport=websocket";
    let r = request(addr, "GET", url, &[("Origin", "http://evil.test")], b"").await;
    assert_error(&r, 403, 4, "Forbidden");
    // Past the Origin check, a plain GET is not an upgrade: error 3.
    for headers in [&[("Origin", "http://ok.test")][..], &[]] {
        let r = request(addr, "GET", url, headers, b"").await;
        assert_error(&r, 400, 3, "Bad request");
    }
}

/// Rule: the accept loop's connection cap counts a WebSocket for as long as
/// it is open: over it, 503 with code 7 and `Retry-After: 5`.
#[tokio::test]
async fn a_websocket_holds_its_place_under_the_connection_cap() {
    let mut l = limits();
    l.connections.max_connections = 1;
    let (addr, rec) = start(quiet().abuse(l).build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("5"));
    assert_eq!(r.text(), r#"{"code":7,"message":"Server busy"}"#);
    ws_send(&mut ws, "1").await;
    rec.wait_closes(1).await;
    drop(ws);
    let mut ok = false;
    for _ in 0..50 {
        let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
        if r.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the place is given back once the WebSocket is gone");
}
