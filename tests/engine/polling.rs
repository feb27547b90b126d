//! Long-polling.

use crate::fixture::*;

/// Rule: a POST of several packets (text and `b<base64>` binary) answers 200
/// `ok`; the next GET returns the echoes joined by \x1e, binary as base64.
#[tokio::test]
async fn polling_post_then_get_echoes_payload() {
    let (addr, _rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    assert_ok(&post(addr, &sid, b"4a\x1e4b\x1ebAAEC/w==").await);
    let r = get(addr, &sid).await;
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_payload(&r, "4a\x1e4b\x1ebAAEC/w==");
}

/// Rule: a GET with nothing queued long-polls and returns a lone ping `2`
/// after about pingInterval.
#[tokio::test]
async fn polling_idle_get_returns_ping() {
    let (addr, _rec) = start(config().build()).await;
    let (sid, _) = handshake(addr).await;
    let t0 = Instant::now();
    let r = get(addr, &sid).await;
    let elapsed = t0.elapsed();
    assert_payload(&r, "2");
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "ping after {elapsed:?}, expected about {PING_INTERVAL:?}"
    );
}

/// Rule: answering each ping with a POSTed `3` keeps a polling session alive
/// well past pingInterval + pingTimeout.
#[tokio::test]
async fn polling_pong_keeps_session_alive() {
    let (addr, rec) = start(config().build()).await;
    let (sid, _) = handshake(addr).await;
    for _ in 0..4 {
        assert_payload(&get(addr, &sid).await, "2");
        assert_ok(&post(addr, &sid, b"3").await);
    }
    // About 4 intervals (> 2 x (pingInterval + pingTimeout)) later it still echoes.
    assert_ok(&post(addr, &sid, b"4still").await);
    assert_payload(&get(addr, &sid).await, "4still");
    assert!(rec.closes().is_empty(), "closed: {:?}", rec.closes());
}

/// Rule: a GET while another is pending gets 400; the pending one completes
/// with 200 `1`; the session is closed (TransportError(DuplicateGet)) and
/// later requests get 400 code 1.
#[tokio::test]
async fn polling_duplicate_get_closes_session() {
    let (addr, rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    // Whichever of the two GETs reaches the server second is the duplicate.
    let (a, b) = tokio::join!(get(addr, &sid), get(addr, &sid));
    let (refused, released) = if a.status == 400 { (a, b) } else { (b, a) };
    assert_error(&refused, 400, 3, "Bad request");
    assert_payload(&released, "1");
    assert_eq!(
        rec.wait_closes(1).await,
        [CloseReason::TransportError(TransportFault::DuplicateGet)]
    );
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
    assert_error(&post(addr, &sid, b"4x").await, 400, 1, "Session ID unknown");
}

/// Rule: a POSTed `1` closes the session (ClientClose); a pending GET
/// completes with `6`; later requests get 400 code 1.
#[tokio::test]
async fn polling_client_close_releases_pending_get() {
    let (addr, rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    let pending = spawn_get(addr, &sid);
    // Nothing observable tells that the GET has reached the server: give it time.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_ok(&post(addr, &sid, b"1").await);
    let r = timeout(WAIT, pending).await.unwrap().unwrap();
    assert_payload(&r, "6");
    assert_eq!(rec.wait_closes(1).await, [CloseReason::ClientClose]);
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
    assert_error(&post(addr, &sid, b"4x").await, 400, 1, "Session ID unknown");
}

/// Rule: a POST with a packet that is not Engine.IO (`9x`) closes the session
/// (ParseError) and is answered 400 code 3; a later GET gets 400 code 1.
#[tokio::test]
async fn polling_bad_packet_closes_session() {
    let (addr, rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    assert_error(&post(addr, &sid, b"9x").await, 400, 3, "Bad request");
    assert_eq!(rec.wait_closes(1).await, [CloseReason::ParseError]);
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
}

/// Rule: every protocol violation in a POST is answered alike, 400 code 3
/// with the session closed (ParseError): a client ping `2`, a client open
/// `0`, and a violation the upper layer finds in a message. Records before
/// the violation are still delivered; records after it are not. A client
/// close `1` is not a violation: `ok`.
#[tokio::test]
async fn polling_protocol_violations_answer_400() {
    let (addr, rec) = start(quiet().build()).await;
    let bodies: [&[u8]; 4] = [b"4a\x1e2\x1e4b", b"0", b"4a\x1e0{}", b"4violate\x1e4b"];
    for (i, body) in bodies.into_iter().enumerate() {
        let (sid, _) = handshake(addr).await;
        let pending = spawn_get(addr, &sid);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = post(addr, &sid, body).await;
        assert_error(&r, 400, 3, "Bad request");
        let closes = rec.wait_closes(i + 1).await;
        assert_eq!(closes[i], CloseReason::ParseError, "{body:?}");
        // The held GET gets what was queued before the violation (and the
        // `1`); nothing after the violation was handled.
        let r = timeout(WAIT, pending).await.unwrap().unwrap();
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(!text.contains("4b"), "{body:?}: {text:?}");
        if body.starts_with(b"4a") {
            assert!(text.starts_with("4a"), "{body:?}: {text:?}");
        } else {
            assert_eq!(text, "1", "{body:?}");
        }
        assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
    }
    let (sid, _) = handshake(addr).await;
    assert_ok(&post(addr, &sid, b"1").await);
    assert_eq!(rec.wait_closes(5).await[4], CloseReason::ClientClose);
}

/// Rule (heartbeat, polling): without a pong, the session is gone
/// pingTimeout after the ping (PingTimeout); the next request gets 400 code 1.
#[tokio::test]
async fn polling_missing_pong_times_out() {
    let (addr, rec) = start(config().build()).await;
    let (sid, _) = handshake(addr).await;
    assert_payload(&get(addr, &sid).await, "2");
    tokio::time::sleep(PING_TIMEOUT + Duration::from_millis(150)).await;
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PingTimeout]);
}
