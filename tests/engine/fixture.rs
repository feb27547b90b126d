//! The engine under test: an echo handler that records why sessions close,
//! the standard configurations, and Engine.IO-specific request helpers
//! (polling URLs, handshakes, error assertions).
//!
//! It also re-exports what the test modules use, so each starts with
//! `use crate::fixture::*;`.

pub use std::collections::HashSet;
pub use std::net::SocketAddr;
pub use std::sync::{Arc, Mutex};
pub use std::time::{Duration, Instant};

pub use futures_util::{SinkExt, StreamExt};
pub use rollcall::engine::{
    AllowedOrigins, CloseReason, Connection, Cors, DirectWrites, Engine, EngineConfig,
    EngineConfigBuilder, EngineHandler, Frame, Message, OverflowPolicy, TransportFault,
};
pub use serde_json::Value;
pub use tokio::net::TcpListener;
pub use tokio::sync::Notify;
pub use tokio::time::timeout;
pub use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

pub use crate::common::*;

/// The standard ping interval.
pub const PING_INTERVAL: Duration = Duration::from_millis(300);
/// The standard ping timeout.
pub const PING_TIMEOUT: Duration = Duration::from_millis(200);

/// The close reasons the upper layer was given, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    /// The reasons, in order.
    closes: Arc<Mutex<Vec<CloseReason>>>,
    closed: Arc<Notify>,
}

impl Recorder {
    /// The reasons recorded so far.
    pub fn closes(&self) -> Vec<CloseReason> {
        self.closes.lock().unwrap().clone()
    }

    /// Waits until `n` sessions have closed and returns all reasons.
    pub async fn wait_closes(&self, n: usize) -> Vec<CloseReason> {
        timeout(WAIT, async {
            loop {
                {
                    let v = self.closes.lock().unwrap();
                    if v.len() >= n {
                        return v.clone();
                    }
                }
                // `notify_one` keeps a permit, so a close between the check and
                // this await is not missed.
                self.closed.notified().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("expected {n} on_close calls, got {:?}", self.closes()))
    }
}

/// Echoes every message (text as text, binary as binary), except the text
/// message `flood`, which it answers with ten messages `f0`..`f9` sent one
/// by one with `conn.send`, and `violate`, on which it closes the session as
/// a protocol violation (ParseError). Records every `on_close` reason.
pub struct TestHandler(pub Recorder);

impl EngineHandler for TestHandler {
    type State = ();

    fn on_open(&self, _conn: &Arc<Connection>) {}

    fn on_message(&self, conn: &Arc<Connection>, _state: &(), msg: Message) {
        match msg {
            Message::Text(t) if t.as_str() == "violate" => {
                // What an upper layer does on a protocol violation inside a message.
                conn.close_with(CloseReason::ParseError);
            }
            Message::Text(t) if t.as_str() == "flood" => {
                for i in 0..10 {
                    let _ = conn.send(Frame::message(&format!("f{i}")));
                }
            }
            Message::Text(t) if t.as_str().starts_with("stream ") => {
                // Two senders at once, this task and another one: each
                // sends `STREAM_LEN` numbered messages.
                let pad = "x".repeat(300);
                let other = conn.clone();
                let pad2 = pad.clone();
                tokio::spawn(async move {
                    for i in 0..STREAM_LEN {
                        let _ = other.send(Frame::message(&format!("b{i} {pad2}")));
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                });
                for i in 0..STREAM_LEN {
                    let _ = conn.send(Frame::message(&format!("a{i} {pad}")));
                }
            }
            Message::Text(t) => {
                let _ = conn.send(Frame::message(t.as_str()));
            }
            Message::Binary(b) => {
                let _ = conn.send(Frame::binary(&b));
            }
        }
    }

    fn on_close(&self, _conn: &Arc<Connection>, _state: &(), reason: CloseReason) {
        self.0.closes.lock().unwrap().push(reason);
        self.0.closed.notify_one();
    }
}

/// Messages per sender of the `stream` command.
pub const STREAM_LEN: usize = 8000;

/// The standard test configuration.
pub fn config() -> EngineConfigBuilder {
    EngineConfig::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(1_000_000)
}

/// The standard configuration without heartbeats during the test, for tests
/// that assert exact polling payloads.
pub fn quiet() -> EngineConfigBuilder {
    config()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// Starts an engine on a free port; returns its address and its close recorder.
pub async fn start(config: EngineConfig) -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Recorder::default();
    tokio::spawn(Engine::new(config, TestHandler(rec.clone())).serve(listener));
    (addr, rec)
}

pub fn poll_url(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

/// A long-polling GET for `sid`.
pub async fn get(addr: SocketAddr, sid: &str) -> Resp {
    request(addr, "GET", &poll_url(sid), &[], b"").await
}

/// A long-polling POST for `sid`.
pub async fn post(addr: SocketAddr, sid: &str, body: &[u8]) -> Resp {
    let ct = [("Content-Type", "text/plain;charset=UTF-8")];
    request(addr, "POST", &poll_url(sid), &ct, body).await
}

/// A polling GET started in the background (for requests that stay pending).
pub fn spawn_get(addr: SocketAddr, sid: &str) -> tokio::task::JoinHandle<Resp> {
    let sid = sid.to_string();
    tokio::spawn(async move { get(addr, &sid).await })
}

/// Opens a polling session; returns its sid and the open packet's JSON.
pub async fn handshake(addr: SocketAddr) -> (String, Value) {
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200, "handshake refused: {}", r.text());
    open_packet(&r.text())
}

/// Parses an open packet `0{...}`.
pub fn open_packet(text: &str) -> (String, Value) {
    let json = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("expected an open packet, got {text:?}"));
    let v: Value = serde_json::from_str(json).unwrap();
    let sid = v["sid"].as_str().expect("sid is a string").to_string();
    (sid, v)
}

/// Asserts an Engine.IO HTTP refusal: status, JSON content type, exact body.
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, code: u8, message: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        format!(r#"{{"code":{code},"message":"{message}"}}"#)
    );
}

#[track_caller]
pub fn assert_ok(r: &Resp) {
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[track_caller]
pub fn assert_payload(r: &Resp, expected: &str) {
    assert_eq!((r.status, r.text().as_str()), (200, expected));
}

/// A second WebSocket for a session that already has one: the handshake may
/// complete, but the server closes it (status 1008) without sending data.
pub async fn assert_second_ws_refused(addr: SocketAddr, sid: &str) {
    if let Ok(mut ws2) = ws_connect(addr, &ws_sid_url(sid)).await {
        assert_eq!(ws_closed(&mut ws2).await, Some(1008));
    }
}

pub fn ws_sid_url(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=websocket&sid={sid}")
}

/// The set of keys of a JSON object.
pub fn keys(v: &Value) -> HashSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

pub const OPEN_KEYS: [&str; 5] = [
    "sid",
    "upgrades",
    "pingInterval",
    "pingTimeout",
    "maxPayload",
];
