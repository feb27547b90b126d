//! A `Parser::Msgpack` server over real WebSocket connections, checked at
//! the wire level (the expected bytes are what notepack.io, the npm
//! parser's library, writes): a middleware refusal with data, a binary
//! broadcast that reaches every member as the very same frame, events and
//! acks with binary, and bad input closing only its own connection. The
//! interop with the real clients is in tests/node/socketio_msgpack.test.mjs
//! and tests/python.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rollcall::socketio::packet::{msgpack, PacketKind};
use rollcall::socketio::{ConnectError, NamespaceSetup, Parser, Payload, SocketIo, SocketIoConfig};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod common;

use common::{ws_closed, ws_connect, ws_data, ws_send_msg, ws_text, Ws};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

async fn start() -> SocketAddr {
    let config = SocketIoConfig::builder()
        .engine(|e| {
            e.ping_interval(Duration::from_millis(2000))
                .ping_timeout(Duration::from_millis(1000))
        })
        .parser(Parser::Msgpack)
        .build();
    let io = SocketIo::new(config);
    io.ns("/", |socket| {
        socket.on("join", |s, p, ack| {
            if let Some(room) = p.args.first().and_then(Value::as_str) {
                s.join(room);
            }
            if let Some(ack) = ack {
                let _ = ack.send(Payload::default());
            }
        });
        socket.on("news", |s, mut p, _| {
            let room = p.args.remove(0);
            s.ns().to(room.as_str().unwrap_or("")).emit("news", &p);
        });
        socket.on("echo", |_, p, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(p);
            }
        });
    });
    io.ns_with(
        "/admin",
        NamespaceSetup::new(|_| {}).middleware(|_| async {
            Err(ConnectError::with_data(
                "not authorized",
                json!({"code": "E1"}),
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.serve(listener));
    addr
}

/// A raw Engine.IO WebSocket connection (open packet consumed).
async fn ws(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws
}

/// The next binary message (the only kind a msgpack server sends).
async fn packet(ws: &mut Ws) -> Vec<u8> {
    match ws_data(ws).await {
        WsMessage::Binary(b) => b.to_vec(),
        other => panic!("expected a binary message, got {other:?}"),
    }
}

async fn send(ws: &mut Ws, frame: rollcall::engine::Frame) {
    assert!(frame.is_binary());
    ws_send_msg(ws, WsMessage::Binary(frame.payload().to_vec().into())).await;
}

/// Connects to `ns`; returns the CONNECT answer's data.
async fn connect(ws: &mut Ws, ns: &str) -> Value {
    send(
        ws,
        Parser::Msgpack.encode_control(PacketKind::Connect, ns, None),
    )
    .await;
    read_connect(&packet(ws).await)
}

/// Reads a CONNECT answer (the server's packets decode like a client's,
/// except CONNECT_ERROR, which a client may not send).
fn read_connect(b: &[u8]) -> Value {
    let p = msgpack::decode(&Bytes::copy_from_slice(b), &Default::default()).unwrap();
    assert_eq!(p.kind, PacketKind::Connect);
    p.data.unwrap()
}

#[tokio::test]
async fn middleware_refusal_is_a_msgpack_connect_error_with_data() {
    let addr = start().await;
    let mut c = ws(addr).await;
    send(
        &mut c,
        Parser::Msgpack.encode_control(PacketKind::Connect, "/admin", Some(&json!({"t": 1}))),
    )
    .await;
    // {type:4, data:{message:"not authorized", data:{code:"E1"}}, nsp:"/admin"}
    assert_eq!(
        packet(&mut c).await,
        hex("83a47479706504a46461746182a76d657373616765ae6e6f7420617574686f72697a6564a46461746181a4636f6465a24531a36e7370a62f61646d696e")
    );
    // The connection stays usable.
    assert!(connect(&mut c, "/").await["sid"].is_string());
}

#[tokio::test]
async fn a_binary_broadcast_is_the_same_frame_for_every_member() {
    let addr = start().await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut m = ws(addr).await;
        connect(&mut m, "/").await;
        let p = Payload::one(json!("room-1"));
        send(
            &mut m,
            Parser::Msgpack
                .encode_event("/", "join", &p, Some(1), None)
                .frames
                .remove(0),
        )
        .await;
        // ack {type:3, data:[], nsp:"/", id:1}
        assert_eq!(
            packet(&mut m).await,
            hex("84a47479706503a46461746190a36e7370a12fa2696401")
        );
        members.push(m);
    }
    let mut sender = ws(addr).await;
    connect(&mut sender, "/").await;
    let mut p = Payload::one(json!("room-1"));
    let blob = p.add_binary(Bytes::from_static(&[1, 2, 3]));
    p.args.push(json!({"n": 1, "blob": blob}));
    send(
        &mut sender,
        Parser::Msgpack
            .encode_event("/", "news", &p, None, None)
            .frames
            .remove(0),
    )
    .await;
    // {type:2, data:["news", {n:1, blob:<Buffer 01 02 03>}], nsp:"/"}
    let want = hex("83a47479706502a46461746192a46e65777382a16e01a4626c6f62c403010203a36e7370a12f");
    for m in &mut members {
        assert_eq!(packet(m).await, want);
    }
}

#[tokio::test]
async fn acks_carry_binary_inline() {
    let addr = start().await;
    let mut c = ws(addr).await;
    connect(&mut c, "/").await;
    let mut p = Payload::default();
    let b = p.add_binary(Bytes::from_static(b"\x00\xff"));
    p.args = vec![json!({"b": b}), json!(-7), json!(1.5)];
    let f = Parser::Msgpack
        .encode_event("/", "echo", &p, Some(9), None)
        .frames
        .remove(0);
    send(&mut c, f).await;
    // {type:3, data:[{b:<Buffer 00 ff>}, -7, 1.5], nsp:"/", id:9}
    assert_eq!(
        packet(&mut c).await,
        hex(concat!(
            "84a47479706503a46461746193",
            "81a162c40200ff",
            "f9",
            "cb3ff8000000000000",
            "a36e7370a12fa2696409"
        ))
    );
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let addr = start().await;
    let mut good = ws(addr).await;
    connect(&mut good, "/").await;
    let bad: [WsMessage; 3] = [
        WsMessage::Text("40".into()),
        WsMessage::Binary(vec![0xc1].into()),
        // {type:2, nsp:"/", data:"not an array"}
        WsMessage::Binary(hex("83a47479706502a36e7370a12fa464617461a178").into()),
    ];
    for msg in bad {
        let mut c = ws(addr).await;
        connect(&mut c, "/").await;
        ws_send_msg(&mut c, msg).await;
        ws_closed(&mut c).await;
        let p = Payload::one(json!("still here"));
        send(
            &mut good,
            Parser::Msgpack
                .encode_event("/", "echo", &p, Some(1), None)
                .frames
                .remove(0),
        )
        .await;
        // ack {type:3, data:["still here"], nsp:"/", id:1}
        assert_eq!(
            packet(&mut good).await,
            hex("84a47479706503a46461746191aa7374696c6c2068657265a36e7370a12fa2696401")
        );
    }
}
