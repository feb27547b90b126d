//! Outbound queue bound.

use crate::fixture::*;

/// Rule: with a 4-packet queue and OverflowPolicy::Disconnect, a handler that
/// sends 10 packets to a polling session with no GET pending closes it with
/// BufferFull.
#[tokio::test]
async fn queue_overflow_disconnects() {
    let cfg = quiet()
        .queue_limits(4, 1 << 20)
        .overflow(OverflowPolicy::Disconnect)
        .build();
    let (addr, rec) = start(cfg).await;
    let (sid, _) = handshake(addr).await;
    post(addr, &sid, b"4flood").await;
    assert_eq!(rec.wait_closes(1).await, [CloseReason::BufferFull]);
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
}

/// Rule: with OverflowPolicy::DropNewest the session stays open and the next
/// GET returns exactly the packets that fit.
#[tokio::test]
async fn queue_overflow_drops_newest() {
    let cfg = quiet()
        .queue_limits(4, 1 << 20)
        .overflow(OverflowPolicy::DropNewest)
        .build();
    let (addr, rec) = start(cfg).await;
    let (sid, _) = handshake(addr).await;
    assert_ok(&post(addr, &sid, b"4flood").await);
    assert_payload(&get(addr, &sid).await, "4f0\x1e4f1\x1e4f2\x1e4f3");
    assert_ok(&post(addr, &sid, b"4after").await);
    assert_payload(&get(addr, &sid).await, "4after");
    assert!(rec.closes().is_empty(), "closed: {:?}", rec.closes());
}

/// Direct writes (the sender writes to an idle WebSocket itself) and the
/// connection's task share one socket: with both senders writing directly
/// whenever they can, a client that stops reading until the socket is full
/// (writes then go partly out and the rest is queued) must still receive
/// every message once, whole, and in each sender's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_writes_keep_every_message_whole_and_in_order() {
    let cfg = quiet()
        .queue_limits(1 << 20, 1 << 30)
        .direct_writes(DirectWrites {
            idle: Duration::ZERO,
            share: 1.0,
            burst: Duration::from_secs(60),
        })
        .build();
    let (addr, _rec) = start(cfg).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "4stream ").await;
    // Not reading for a while: the socket's buffers fill up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut next_a, mut next_b) = (0usize, 0usize);
    while next_a < STREAM_LEN || next_b < STREAM_LEN {
        let t = match ws_data(&mut ws).await {
            WsMessage::Text(t) => t.as_str().to_string(),
            other => panic!("unexpected frame {other:?}"),
        };
        let (id, pad) = t[1..].split_once(' ').expect("a numbered message");
        assert_eq!(pad.len(), 300, "message {id} damaged");
        let (who, n) = id.split_at(1);
        let n: usize = n.parse().unwrap();
        let next = if who == "a" { &mut next_a } else { &mut next_b };
        assert_eq!(n, *next, "sender {who}: got {n}, expected {next}");
        *next += 1;
    }
}
