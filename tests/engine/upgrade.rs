//! Upgrade.

use crate::fixture::*;

/// Rule: polling -> WebSocket upgrade. `2probe` answers `3probe`; a GET
/// pending during the probe is released with `6`; after `5` echoes come over
/// the WebSocket; polling GET and POST for the sid then get 400 code 3; a
/// second WebSocket for the sid is refused while the first keeps working.
#[tokio::test]
async fn upgrade_from_polling_to_websocket() {
    let (addr, rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    // The client keeps a long-poll pending while it probes.
    let pending = spawn_get(addr, &sid);
    let mut ws = ws_connect(addr, &ws_sid_url(&sid)).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    let r = timeout(WAIT, pending).await.unwrap().unwrap();
    assert_payload(&r, "6");
    // Only one WebSocket per session, even while the first is probing.
    assert_second_ws_refused(addr, &sid).await;
    ws_send(&mut ws, "5").await;

    ws_send(&mut ws, "4over-ws").await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text("4over-ws"));
    ws_send_msg(&mut ws, WsMessage::binary(vec![7u8, 8])).await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::binary(vec![7u8, 8]));

    assert_error(&get(addr, &sid).await, 400, 3, "Bad request");
    assert_error(&post(addr, &sid, b"4x").await, 400, 3, "Bad request");

    match ws_connect(addr, &ws_sid_url(&sid)).await {
        Err(_) => {}
        Ok(mut second) => {
            ws_closed(&mut second).await;
        }
    }
    ws_send(&mut ws, "4still").await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text("4still"));
    assert!(rec.closes().is_empty(), "closed: {:?}", rec.closes());
}

/// Rule: messages POSTed before and during the upgrade, whose echoes are
/// queued while the probe is in flight, all arrive once each and in order:
/// in the last polling GET or over the WebSocket after `5`.
#[tokio::test]
async fn upgrade_delivers_in_flight_messages_in_order() {
    let (addr, rec) = start(quiet().build()).await;
    let (sid, _) = handshake(addr).await;
    // Echo queued before the probe starts (no GET pending).
    assert_ok(&post(addr, &sid, b"4m1").await);
    let mut ws = ws_connect(addr, &ws_sid_url(&sid)).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");

    // Echoes queued while the probe is in flight.
    assert_ok(&post(addr, &sid, b"4m2\x1e4m3").await);
    // The client's last poll: it may carry the echoes, or be a noop.
    let r = get(addr, &sid).await;
    assert_eq!(r.status, 200);
    let mut got: Vec<String> = r
        .text()
        .split('\x1e')
        .filter(|p| *p != "6")
        .map(str::to_string)
        .collect();
    assert_ok(&post(addr, &sid, b"4m4").await);
    ws_send(&mut ws, "5").await;
    while got.len() < 4 {
        match ws_data(&mut ws).await {
            WsMessage::Text(t) => got.push(t.as_str().to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, ["4m1", "4m2", "4m3", "4m4"]);
    // Nothing was duplicated: the next frame is the next echo.
    ws_send(&mut ws, "4m5").await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text("4m5"));
    assert!(rec.closes().is_empty(), "closed: {:?}", rec.closes());
}

/// Rule: a session that ends during an upgrade takes its probing WebSocket
/// with it: the probe is closed at once, not when the upgrade times out.
#[tokio::test]
async fn upgrade_probe_closed_when_session_closes() {
    let cfg = quiet().upgrade_timeout(Duration::from_secs(30)).build();
    let (addr, rec) = start(cfg).await;
    let (sid, _) = handshake(addr).await;
    let mut ws = ws_connect(addr, &ws_sid_url(&sid)).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_ok(&post(addr, &sid, b"1").await);
    assert_eq!(rec.wait_closes(1).await, [CloseReason::ClientClose]);
    let closed = timeout(Duration::from_secs(2), ws_closed(&mut ws)).await;
    assert!(
        closed.is_ok(),
        "the probing websocket is still open 2 s after its session closed"
    );
}
