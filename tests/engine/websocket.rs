//! WebSocket.

use crate::fixture::*;

/// Rule: on a direct WebSocket session, `4hello` echoes as text `4hello`, a
/// binary frame echoes as binary (no `4` prefix), and a client `1` closes the
/// connection (ClientClose).
#[tokio::test]
async fn websocket_echo_and_client_close() {
    let (addr, rec) = start(config().build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text("4hello"));
    ws_send_msg(&mut ws, WsMessage::binary(vec![0u8, 1, 2, 255])).await;
    assert_eq!(
        ws_data(&mut ws).await,
        WsMessage::binary(vec![0u8, 1, 2, 255])
    );
    ws_send(&mut ws, "1").await;
    ws_closed(&mut ws).await;
    assert_eq!(rec.wait_closes(1).await, [CloseReason::ClientClose]);
}

/// Rule: a WebSocket that goes away (TCP dropped, or a close frame) ends its
/// session with TransportClose.
#[tokio::test]
async fn websocket_dropped_is_transport_close() {
    let (addr, rec) = start(config().build()).await;
    let url = "/engine.io/?EIO=4&transport=websocket";
    let mut ws = ws_connect(addr, url).await.unwrap();
    open_packet(&ws_text(&mut ws).await);
    drop(ws);
    assert_eq!(rec.wait_closes(1).await, [CloseReason::TransportClose]);

    let mut ws = ws_connect(addr, url).await.unwrap();
    open_packet(&ws_text(&mut ws).await);
    timeout(WAIT, ws.close(None)).await.unwrap().unwrap();
    assert_eq!(
        rec.wait_closes(2).await,
        [CloseReason::TransportClose, CloseReason::TransportClose]
    );
}

/// Rule (heartbeat, WebSocket): the server sends `2` every pingInterval;
/// answering `3` keeps the connection open for more than a second.
#[tokio::test]
async fn websocket_pong_keeps_connection_open() {
    let (addr, rec) = start(config().build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    let until = tokio::time::Instant::now() + Duration::from_millis(1200);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(until, ws.next()).await {
        match frame {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                pings += 1;
                ws_send(&mut ws, "3").await;
            }
            other => panic!("unexpected {other:?} while answering pings"),
        }
    }
    assert!(pings >= 2, "only {pings} pings in 1.2 s");
    ws_send(&mut ws, "4alive").await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text("4alive"));
    assert!(rec.closes().is_empty(), "closed: {:?}", rec.closes());
}

/// Rule (heartbeat): after a pong the next ping is due pingInterval after the
/// pong, even when pingTimeout is longer than pingInterval (the driver does
/// not keep sleeping until the answered ping's deadline); without a pong the
/// session ends pingTimeout after the ping.
#[tokio::test]
async fn next_ping_follows_the_pong_when_ping_timeout_is_long() {
    let interval = Duration::from_millis(200);
    let long_timeout = Duration::from_millis(2000);
    let cfg = config()
        .ping_interval(interval)
        .ping_timeout(long_timeout)
        .build();
    let (addr, rec) = start(cfg).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    for _ in 0..3 {
        assert_eq!(ws_text(&mut ws).await, "2");
        let pong_at = Instant::now();
        ws_send(&mut ws, "3").await;
        assert_eq!(ws_text(&mut ws).await, "2");
        let gap = pong_at.elapsed();
        assert!(
            gap >= interval - Duration::from_millis(20) && gap < Duration::from_millis(1000),
            "next ping {gap:?} after the pong, expected about {interval:?}"
        );
        ws_send(&mut ws, "3").await;
    }
    // Unanswered: closed pingTimeout after the ping, not earlier.
    assert_eq!(ws_text(&mut ws).await, "2");
    let ping_at = Instant::now();
    ws_closed(&mut ws).await;
    let waited = ping_at.elapsed();
    assert!(
        waited >= long_timeout - Duration::from_millis(50) && waited < long_timeout * 2,
        "closed {waited:?} after the ping, expected about {long_timeout:?}"
    );
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PingTimeout]);
}

/// Rule (heartbeat, WebSocket): without pongs the server closes the socket
/// within about pingInterval + pingTimeout (PingTimeout).
#[tokio::test]
async fn websocket_missing_pong_closes() {
    let (addr, rec) = start(config().build()).await;
    let t0 = Instant::now();
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    assert_eq!(ws_text(&mut ws).await, "2");
    ws_closed(&mut ws).await;
    let elapsed = t0.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1500),
        "closed after {elapsed:?}, expected about {:?}",
        PING_INTERVAL + PING_TIMEOUT
    );
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PingTimeout]);
}
