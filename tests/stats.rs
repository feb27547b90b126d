//! The Engine.IO and Socket.IO counters that the attendance application
//! cannot move on its own (it sends nothing volatile and runs without
//! connection state recovery), over real WebSocket connections: volatile
//! drops, broadcasts and deliveries, direct against queued writes,
//! recoveries recovered and not, and disconnects by reason.

use std::net::SocketAddr;
use std::time::Duration;

use rollcall::socketio::{Payload, RecoveryConfig, SocketIo, SocketIoConfig};
use serde_json::{json, Value};

mod common;

use common::{ws_connect, ws_next_text as next, ws_send as send, Ws};

/// A server whose main namespace answers `burst` (n volatile packets to the
/// sender's room, then one normal one) and `shout` (one packet to everyone).
async fn start(recovery: bool) -> (SocketAddr, SocketIo) {
    let mut config = SocketIoConfig::builder();
    if recovery {
        config = config.recovery(RecoveryConfig::default());
    }
    let io = SocketIo::new(config.build());
    io.ns("/", |socket| {
        socket.on("burst", |s, p, _| {
            let n = p.arg::<u64>(0).unwrap_or(0);
            for i in 0..n {
                s.ns()
                    .to(s.id())
                    .volatile()
                    .emit("v", &Payload::one(json!(i)));
            }
            s.ns().to(s.id()).emit("done", &Payload::default());
        });
        socket.on("shout", |s, _, _| {
            s.ns().broadcast().emit("heard", &Payload::default());
        });
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    (addr, io)
}

async fn ws(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    assert!(next(&mut ws).await.unwrap().starts_with("0{"));
    ws
}

/// Connects to `/` with `auth`; returns the CONNECT answer's data.
async fn connect(ws: &mut Ws, auth: Value) -> Value {
    send(ws, &format!("40{auth}")).await;
    let answer = next(ws).await.unwrap();
    serde_json::from_str(answer.strip_prefix("40").unwrap()).unwrap()
}

/// Polls `f` until it holds (bounded).
async fn eventually(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn volatile_drops_broadcasts_and_writes_are_counted() {
    let (addr, io) = start(false).await;
    let mut c = ws(addr).await;
    connect(&mut c, json!({})).await;
    let (es, ss) = (io.engine().stats(), io.stats());
    let (b0, d0, v0) = (
        ss.broadcasts.get(),
        ss.deliveries.get(),
        es.volatile_dropped.get(),
    );
    send(&mut c, "42[\"burst\",300]").await;
    let mut got = 0;
    loop {
        let t = next(&mut c).await.unwrap();
        if t == r#"42["done"]"# {
            break;
        }
        got += 1;
    }
    assert!((1..300).contains(&got), "{got} volatile packets delivered");
    // 301 broadcasts to one socket each; the volatile ones not delivered were dropped.
    assert_eq!(ss.broadcasts.get() - b0, 301);
    assert_eq!(ss.deliveries.get() - d0, 301);
    assert_eq!(es.volatile_dropped.get() - v0, 300 - got);
    // Every packet the client read was written directly or from the queue.
    let sent = es.sent_packets(1);
    assert!(es.direct_frames.get() > 0 || es.queued_frames.get() > 0);
    assert!(sent >= got + 2, "open, CONNECT, packets: {sent}");
    assert!(es.delivery_latency_us.snapshot().count > 0);
    assert_eq!(es.handshakes[1].get(), 1);
    assert_eq!(es.received[1].packets.get(), 2, "CONNECT and burst");

    // A client close: one Engine.IO close, one Socket.IO disconnect.
    send(&mut c, "1").await;
    eventually(|| es.closes[0].get() == 1, "client close counted").await;
    eventually(|| ss.disconnects[2].get() == 1, "transport close counted").await;
}

#[tokio::test]
async fn recoveries_are_counted_by_result() {
    let (addr, io) = start(true).await;
    let ss = io.stats();
    let mut a = ws(addr).await;
    let first = connect(&mut a, json!({})).await;
    let pid = first["pid"].as_str().unwrap().to_string();
    // A broadcast with an offset, then the connection drops.
    send(&mut a, "42[\"shout\"]").await;
    let heard: Value =
        serde_json::from_str(next(&mut a).await.unwrap().strip_prefix("42").unwrap()).unwrap();
    let offset = heard[1].as_str().unwrap().to_string();
    drop(a);
    eventually(|| ss.disconnects[2].get() == 1, "transport close").await;

    let mut b = ws(addr).await;
    let back = connect(&mut b, json!({"pid": pid, "offset": offset})).await;
    assert_eq!(back["sid"], first["sid"], "recovered");
    assert_eq!(ss.recoveries[0].get(), 1);
    assert_eq!(ss.recoveries[1].get(), 0);

    let mut c = ws(addr).await;
    let fresh = connect(&mut c, json!({"pid": "no-such-pid", "offset": offset})).await;
    assert_ne!(fresh["sid"], first["sid"]);
    assert_eq!(ss.recoveries[1].get(), 1, "not recovered");
    // A CONNECT without pid is not a recovery attempt.
    let mut d = ws(addr).await;
    connect(&mut d, json!({})).await;
    assert_eq!(ss.recoveries[0].get() + ss.recoveries[1].get(), 2);
    assert_eq!(ss.connects.get(), 4);
}
