//! In-process engine properties (issue #5): broadcasts are byte-identical
//! for every recipient, and the regression tests of what the fuzzers found.
//!
//! Everything runs in process under paused Tokio time: long-polling through
//! the public `SocketIo::handle` / `Engine::handle` with in-memory bodies,
//! WebSockets through the `Engine::attach_websocket` test hook over
//! `tokio::io::duplex`. No sockets, no real waiting.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use rollcall::engine::frame::testing::client_frame;
use rollcall::engine::packet::{decode_payload, encode_payload};
use rollcall::engine::{
    CloseReason, Connection, Engine, EngineConfig, EngineHandler, Frame, Message, OverflowPolicy,
    Packet as EioPacket,
};
use rollcall::socketio::packet::encode_event;
use rollcall::socketio::{Payload, SocketIo, SocketIoConfig};
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Runs every task until all are idle (paused time moves at most 1 ms).
async fn settle() {
    tokio::time::sleep(Duration::from_micros(1)).await;
}

fn peer() -> std::net::SocketAddr {
    ([127, 0, 0, 1], 40000).into()
}

fn request(method: &str, query: &str, body: &[u8]) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("/socket.io/?{query}"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

async fn body(res: http::Response<Full<Bytes>>) -> (u16, Bytes) {
    let status = res.status().as_u16();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// A masked client text frame.
fn ws_text(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    client_frame(true, 1, text.as_bytes(), [0x11, 0x22, 0x33, 0x44])
}

/// Reads exactly `n` bytes (the server has written them by now).
async fn read_n(io: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(5), io.read_exact(&mut buf))
        .await
        .expect("server wrote less than expected")
        .unwrap();
    buf
}

/// Skips one unmasked server frame, returning its payload.
async fn read_frame(io: &mut DuplexStream) -> Vec<u8> {
    let h = read_n(io, 2).await;
    let len = match h[1] {
        126 => {
            let b = read_n(io, 2).await;
            u16::from_be_bytes([b[0], b[1]]) as usize
        }
        127 => {
            let b = read_n(io, 8).await;
            u64::from_be_bytes(b.try_into().unwrap()) as usize
        }
        n => n as usize,
    };
    read_n(io, len).await
}

// ---------------------------------------------------------------------------
// Broadcasts
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Arg {
    Json(Value),
    Binary(Vec<u8>),
    Array(Vec<Arg>),
    Object(Vec<(String, Arg)>),
}

fn arg() -> impl Strategy<Value = Arg> {
    let leaf = prop_oneof![
        3 => prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ]
        .prop_map(Arg::Json),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Arg::Binary),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Arg::Array),
            proptest::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(Arg::Object),
        ]
    })
}

fn build(a: &Arg, p: &mut Payload) -> Value {
    match a {
        Arg::Json(v) => v.clone(),
        Arg::Binary(b) => p.add_binary(Bytes::from(b.clone())),
        Arg::Array(x) => Value::Array(x.iter().map(|y| build(y, p)).collect()),
        Arg::Object(kv) => {
            let mut m = Map::new();
            for (k, v) in kv {
                let v = build(v, p);
                m.insert(k.clone(), v);
            }
            Value::Object(m)
        }
    }
}

/// A long-polling client joined to `/`; returns its query string.
async fn polling_client(io: &SocketIo) -> String {
    let (status, open) = body(
        io.handle(request("GET", "EIO=4&transport=polling", b""), peer())
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let open: Value = serde_json::from_slice(&open[1..]).unwrap();
    let q = format!(
        "EIO=4&transport=polling&sid={}",
        open["sid"].as_str().unwrap()
    );
    let (status, _) = body(io.handle(request("POST", &q, b"40"), peer()).await).await;
    assert_eq!(status, 200);
    let (status, answer) = body(io.handle(request("GET", &q, b""), peer()).await).await;
    assert_eq!(status, 200);
    assert!(answer.starts_with(b"40{\"sid\":"), "{answer:?}");
    q
}

/// A WebSocket client joined to `/`.
async fn ws_client(io: &SocketIo) -> DuplexStream {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    io.engine().attach_websocket(None, server).unwrap();
    let open = read_frame(&mut client).await;
    assert_eq!(open[0], b'0');
    client.write_all(&ws_text("40")).await.unwrap();
    let answer = read_frame(&mut client).await;
    assert!(answer.starts_with(b"40{\"sid\":"));
    client
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One broadcast, many recipients over both transports: each polling
    /// client gets the same bytes, each WebSocket client gets the same bytes,
    /// and both are exactly the encoded packet and its attachments.
    #[test]
    fn broadcast_is_byte_identical(
        n_poll in 1usize..4,
        n_ws in 0usize..3,
        name in "[a-zA-Z0-9 _-]{1,12}",
        args in proptest::collection::vec(arg(), 0..4),
        to_room in any::<bool>(),
    ) {
        let mut payload = Payload::default();
        let json: Vec<Value> = args.iter().map(|a| build(a, &mut payload)).collect();
        payload.args = json;
        let want = encode_event("/", &name, &payload, None, None);
        let want_poll = encode_payload(&want.frames);
        let want_ws: Vec<u8> = want.frames.iter().flat_map(|f| f.ws_bytes().to_vec()).collect();

        runtime().block_on(async {
            let io = SocketIo::new(SocketIoConfig::builder().build());
            io.ns("/", |socket| socket.join("room"));
            let mut polls = Vec::new();
            for _ in 0..n_poll {
                polls.push(polling_client(&io).await);
            }
            let mut wss = Vec::new();
            for _ in 0..n_ws {
                wss.push(ws_client(&io).await);
            }
            settle().await;
            let ns = io.of("/").unwrap();
            let op = if to_room { ns.to("room") } else { ns.broadcast() };
            assert_eq!(op.emit(&name, &payload), n_poll + n_ws);
            settle().await;
            for q in &polls {
                let (status, got) = body(io.handle(request("GET", q, b""), peer()).await).await;
                assert_eq!(status, 200);
                assert_eq!(&got[..], &want_poll[..], "a polling recipient got different bytes");
            }
            for c in &mut wss {
                let got = read_n(c, want_ws.len()).await;
                assert_eq!(got, want_ws, "a WebSocket recipient got different bytes");
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the fuzzers
// ---------------------------------------------------------------------------

struct Quiet;

impl EngineHandler for Quiet {
    type State = ();
    fn on_open(&self, _: &Arc<Connection>) {}
    fn on_message(&self, _: &Arc<Connection>, _: &(), _: Message) {}
    fn on_close(&self, _: &Arc<Connection>, _: &(), _: CloseReason) {}
}

/// Where [`Keep`] puts the last connection it was told of.
#[derive(Clone, Default)]
struct Slot(Arc<std::sync::Mutex<Option<Arc<Connection>>>>);

impl Slot {
    /// The last connection opened (there must be one).
    fn conn(&self) -> Arc<Connection> {
        self.0.lock().unwrap().clone().unwrap()
    }
}

/// Like [`Quiet`], and keeps the last connection opened in its [`Slot`].
struct Keep(Slot);

impl EngineHandler for Keep {
    type State = ();
    fn on_open(&self, c: &Arc<Connection>) {
        *self.0 .0.lock().unwrap() = Some(c.clone());
    }
    fn on_message(&self, _: &Arc<Connection>, _: &(), _: Message) {}
    fn on_close(&self, _: &Arc<Connection>, _: &(), _: CloseReason) {}
}

/// Found by `fuzz/fuzz_targets/session.rs`: the heartbeat queued its pings
/// past the queue limits, so a client that never reads but answers pings
/// blindly grew its queue by one ping per interval, forever.
#[test]
fn heartbeat_pings_respect_the_queue_limits() {
    for policy in [OverflowPolicy::DropNewest, OverflowPolicy::Disconnect] {
        runtime().block_on(async {
            let config = EngineConfig::builder()
                .ping_interval(Duration::from_secs(1))
                .ping_timeout(Duration::from_millis(500))
                .queue_limits(2, 1 << 20)
                .overflow(policy)
                .build();
            let engine = Engine::new(config, Quiet);
            let (_, open) = body(
                engine
                    .handle(request("GET", "EIO=4&transport=polling", b""), peer())
                    .await,
            )
            .await;
            let open: Value = serde_json::from_slice(&open[1..]).unwrap();
            let q = format!(
                "EIO=4&transport=polling&sid={}",
                open["sid"].as_str().unwrap()
            );
            // Nothing is ever read: the queue fills with pings.
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(1100)).await;
                let _ = body(engine.handle(request("POST", &q, b"3"), peer()).await).await;
            }
            settle().await;
            match policy {
                OverflowPolicy::DropNewest => {
                    assert_eq!(engine.session_count(), 1);
                    let (status, got) =
                        body(engine.handle(request("GET", &q, b""), peer()).await).await;
                    assert_eq!(status, 200);
                    let (packets, _) = decode_payload(got);
                    assert_eq!(
                        packets,
                        vec![EioPacket::Ping("".into()); 2],
                        "queue over its limit"
                    );
                }
                OverflowPolicy::Disconnect => {
                    // The third ping found the queue full: the session closed.
                    assert_eq!(engine.session_count(), 0);
                }
            }
        });
    }
}

/// The same bound seen from `Connection::send`: a server message cannot
/// squeeze past pings into a full queue either.
#[test]
fn send_after_pings_fill_the_queue_is_refused() {
    runtime().block_on(async {
        let config = EngineConfig::builder()
            .ping_interval(Duration::from_secs(1))
            .ping_timeout(Duration::from_secs(30))
            .queue_limits(1, 1 << 20)
            .overflow(OverflowPolicy::DropNewest)
            .build();
        let slot = Slot::default();
        let engine = Engine::new(config, Keep(slot.clone()));
        let _ = body(
            engine
                .handle(request("GET", "EIO=4&transport=polling", b""), peer())
                .await,
        )
        .await;
        let conn = slot.conn();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(conn.queued().0, 1);
        assert!(conn.send(Frame::message("x")).is_err());
        assert_eq!(conn.queued().0, 1);
    });
}

/// Found by `fuzz/fuzz_targets/session.rs` (small WebSocket pipe): packets
/// queued while a WebSocket write was waiting for the client to read were
/// never written. Their wake-up was consumed by the write, and pushes onto
/// a non-empty queue wake no one, so they sat in the queue until the client
/// happened to send something (a silent client then missed its pings and
/// was dropped for a ping timeout).
#[test]
fn packets_queued_during_a_slow_websocket_write_are_sent() {
    runtime().block_on(async {
        let slot = Slot::default();
        let engine = Engine::new(EngineConfig::default(), Keep(slot.clone()));
        // 64 bytes of pipe: the open packet alone does not fit, so the
        // server's first write waits for the client.
        let (mut client, server) = tokio::io::duplex(64);
        engine.attach_websocket(None, server).unwrap();
        settle().await;
        let conn = slot.conn();
        for i in 0..6 {
            conn.send(Frame::message(&format!("m{i}"))).unwrap();
            settle().await;
        }
        let open = read_frame(&mut client).await;
        assert_eq!(open[0], b'0');
        for i in 0..6 {
            let m = read_frame(&mut client).await;
            assert_eq!(m, format!("4m{i}").into_bytes());
        }
        assert_eq!(conn.queued().0, 0);
    });
}

/// Found by `fuzz/fuzz_targets/session.rs` (small WebSocket pipe): when the
/// session closed (here: its queue overflowed) while a WebSocket write was
/// waiting for the client, the write was dropped half done and the close
/// path then wrote the rest of the queue and a close frame after the half
/// frame, so the client read garbage. Now nothing follows an interrupted
/// write: the stream ends, at worst, in the middle of its last frame.
#[test]
fn an_interrupted_websocket_write_is_not_followed_by_other_frames() {
    runtime().block_on(async {
        let slot = Slot::default();
        let config = EngineConfig::builder()
            .queue_limits(4, 1 << 20)
            .overflow(OverflowPolicy::Disconnect)
            .build();
        let engine = Engine::new(config, Keep(slot.clone()));
        let (mut client, server) = tokio::io::duplex(64);
        engine.attach_websocket(None, server).unwrap();
        settle().await;
        let conn = slot.conn();
        let long = "x".repeat(100);
        for _ in 0..8 {
            let _ = conn.send(Frame::message(&long));
            settle().await;
        }
        assert!(conn.is_closed(), "the queue overflowed");
        let mut bytes = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut bytes))
            .await
            .unwrap()
            .unwrap();
        // Walk the frames: each complete one is a server text frame holding
        // an Engine.IO packet; only the very last one may be cut short.
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            let len = rest[1] as usize;
            assert!(len < 126);
            if rest.len() < 2 + len {
                break; // the interrupted frame, at the very end
            }
            let payload = &rest[2..2 + len];
            match rest[0] {
                0x81 => assert!(
                    payload == b"1"
                        || payload.starts_with(b"0{")
                        || payload == format!("4{long}").as_bytes(),
                    "garbage frame {payload:?}"
                ),
                0x88 => {}
                b => panic!("bad frame header {b:#x}: the stream is out of step"),
            }
            rest = &rest[2 + len..];
        }
    });
}

/// Found by `fuzz/fuzz_targets/session.rs` (a timeout: the harness and the
/// server waited on each other forever): the last flush of a closed
/// session (queued packets and its `1`) had no time bound, so a client that
/// stopped reading kept the WebSocket task and its socket alive for good.
/// It now gets the same one-second bound as the close frame.
#[test]
fn a_closed_session_does_not_wait_forever_on_a_client_that_does_not_read() {
    runtime().block_on(async {
        let slot = Slot::default();
        let engine = Engine::new(EngineConfig::default(), Keep(slot.clone()));
        let (mut client, server) = tokio::io::duplex(256);
        engine.attach_websocket(None, server).unwrap();
        settle().await;
        let conn = slot.conn();
        // More than the pipe holds, then the close: the final flush blocks.
        conn.send(Frame::message(&"x".repeat(300))).unwrap();
        conn.close();
        settle().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(engine.session_count(), 0);
        // The server let go of its end: writing to it fails.
        let r = client.write_all(&ws_text("4late")).await;
        assert!(
            r.is_err(),
            "the server still holds the socket of a closed session"
        );
    });
}
