//! Engine.IO and Socket.IO counters over real WebSocket connections:
//! packets each way, broadcasts and deliveries, closes and disconnects by
//! reason, and connection state recoveries (recovered and not), which the
//! attendance application (recovery off) cannot move. Volatile drops are
//! checked in `tests/socketio.rs` (its volatile test).

use std::net::SocketAddr;
use std::time::Duration;

use rollcall::socketio::{Payload, RecoveryConfig, SocketIo, SocketIoConfig};
use serde_json::{json, Value};

mod common;

use common::{ws_connect, ws_next_text as next, ws_send as send, Ws};

/// A server whose main namespace answers `shout` (one packet to everyone).
async fn start(recovery: bool) -> (SocketAddr, SocketIo) {
    let mut config = SocketIoConfig::builder();
    if recovery {
        config = config.recovery(RecoveryConfig::default());
    }
    let io = SocketIo::new(config.build());
    io.ns("/", |socket| {
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
async fn writes_and_closes_are_counted() {
    let (addr, io) = start(false).await;
    let (es, ss) = (io.engine().stats(), io.stats());
    let mut c = ws(addr).await;
    connect(&mut c, json!({})).await;
    send(&mut c, "42[\"shout\"]").await;
    assert_eq!(next(&mut c).await.unwrap(), r#"42["heard"]"#);
    assert_eq!(es.handshakes[1].get(), 1);
    assert_eq!(es.received[1].packets.get(), 2, "CONNECT and shout");
    assert_eq!(es.sent_packets(1), 3, "open, CONNECT answer, heard");
    assert_eq!(ss.broadcasts.get(), 1);
    assert_eq!(ss.deliveries.get(), 1);
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
