//! Engine.IO v4 protocol rules, checked over real TCP (issue #2).
//!
//! Every test starts its own in-process engine on 127.0.0.1:0 with an echo
//! handler that also records why sessions close. Polling requests go through
//! a tiny raw HTTP/1.1 helper (one connection per request, `Connection:
//! close`); WebSockets use the tokio-tungstenite client. Every wait is bounded
//! by a timeout, so a broken server fails a test instead of hanging it.
//!
//! Unless a test says otherwise the engine runs with pingInterval 300 ms,
//! pingTimeout 200 ms and maxPayload 1,000,000. Tests that assert exact
//! polling payloads use a long ping interval ([`quiet`]) so that a heartbeat
//! `2` cannot land in the middle of the payload under load.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rollcall::engine::{
    AllowedOrigins, CloseReason, Connection, Cors, DirectWrites, Engine, EngineConfig,
    EngineConfigBuilder, EngineHandler, Frame, Message, OverflowPolicy, TransportFault,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);
/// Upper bound of any single wait (a response, a frame, a close).
const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The engine under test
// ---------------------------------------------------------------------------

/// The close reasons the upper layer was given, in order.
#[derive(Clone, Default)]
struct Recorder {
    closes: Arc<Mutex<Vec<CloseReason>>>,
    closed: Arc<Notify>,
}

impl Recorder {
    /// The reasons recorded so far.
    fn closes(&self) -> Vec<CloseReason> {
        self.closes.lock().unwrap().clone()
    }

    /// Waits until `n` sessions have closed and returns all reasons.
    async fn wait_closes(&self, n: usize) -> Vec<CloseReason> {
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
struct TestHandler(Recorder);

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
const STREAM_LEN: usize = 8000;

/// The standard test configuration.
fn config() -> EngineConfigBuilder {
    EngineConfig::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(1_000_000)
}

/// The standard configuration without heartbeats during the test, for tests
/// that assert exact polling payloads.
fn quiet() -> EngineConfigBuilder {
    config()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// Starts an engine on a free port; returns its address and its close recorder.
async fn start(config: EngineConfig) -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Recorder::default();
    tokio::spawn(Engine::new(config, TestHandler(rec.clone())).serve(listener));
    (addr, rec)
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a fresh connection and reads the whole response.
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let chunked = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
        if !chunked && (!body.is_empty() || method == "POST" || method == "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await.unwrap();
        let mut raw = Vec::new();
        // A server that answers without reading the body may reset the
        // connection after its response; keep whatever arrived.
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw)
    };
    timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {target}: no response within {WAIT:?}"))
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    assert!(
        resp.header("transfer-encoding").is_none(),
        "chunked bodies are not expected"
    );
    if let Some(n) = resp
        .header("content-length")
        .map(|v| v.parse::<usize>().unwrap())
    {
        assert!(resp.body.len() >= n, "truncated body");
        resp.body.truncate(n);
    }
    resp
}

fn poll_url(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

/// A long-polling GET for `sid`.
async fn get(addr: SocketAddr, sid: &str) -> Resp {
    request(addr, "GET", &poll_url(sid), &[], b"").await
}

/// A long-polling POST for `sid`.
async fn post(addr: SocketAddr, sid: &str, body: &[u8]) -> Resp {
    let ct = [("Content-Type", "text/plain;charset=UTF-8")];
    request(addr, "POST", &poll_url(sid), &ct, body).await
}

/// A polling GET started in the background (for requests that stay pending).
fn spawn_get(addr: SocketAddr, sid: &str) -> tokio::task::JoinHandle<Resp> {
    let sid = sid.to_string();
    tokio::spawn(async move { get(addr, &sid).await })
}

/// Opens a polling session; returns its sid and the open packet's JSON.
async fn handshake(addr: SocketAddr) -> (String, Value) {
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200, "handshake refused: {}", r.text());
    open_packet(&r.text())
}

/// Parses an open packet `0{...}`.
fn open_packet(text: &str) -> (String, Value) {
    let json = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("expected an open packet, got {text:?}"));
    let v: Value = serde_json::from_str(json).unwrap();
    let sid = v["sid"].as_str().expect("sid is a string").to_string();
    (sid, v)
}

/// Asserts an Engine.IO HTTP refusal: status, JSON content type, exact body.
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: u8, message: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        format!(r#"{{"code":{code},"message":"{message}"}}"#)
    );
}

#[track_caller]
fn assert_ok(r: &Resp) {
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

#[track_caller]
fn assert_payload(r: &Resp, expected: &str) {
    assert_eq!((r.status, r.text().as_str()), (200, expected));
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path_query` (e.g. `/engine.io/?EIO=4&transport=websocket`).
async fn ws_connect(addr: SocketAddr, path_query: &str) -> Result<Ws, tungstenite::Error> {
    timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}{path_query}")),
    )
    .await
    .expect("websocket handshake timed out")
    .map(|(ws, _)| ws)
}

/// A second WebSocket for a session that already has one: the handshake may
/// complete, but the server closes it (status 1008) without sending data.
async fn assert_second_ws_refused(addr: SocketAddr, sid: &str) {
    if let Ok(mut ws2) = ws_connect(addr, &ws_sid_url(sid)).await {
        assert_eq!(ws_closed(&mut ws2).await, Some(1008));
    }
}

fn ws_sid_url(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=websocket&sid={sid}")
}

/// The next frame, or `None` once the connection has ended.
async fn ws_next(ws: &mut Ws) -> Option<WsMessage> {
    match timeout(WAIT, ws.next())
        .await
        .expect("no websocket frame in time")
    {
        Some(Ok(m)) => Some(m),
        Some(Err(_)) | None => None,
    }
}

async fn ws_send(ws: &mut Ws, text: &str) {
    ws_send_msg(ws, WsMessage::text(text)).await
}

async fn ws_send_msg(ws: &mut Ws, msg: WsMessage) {
    timeout(WAIT, ws.send(msg))
        .await
        .expect("websocket send timed out")
        .expect("websocket send failed");
}

/// The next text frame (it must be one).
async fn ws_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        Some(WsMessage::Text(t)) => t.as_str().to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next data frame, answering server pings (`2`) with pongs (`3`) on the way.
async fn ws_data(ws: &mut Ws) -> WsMessage {
    loop {
        match ws_next(ws).await {
            Some(WsMessage::Text(t)) if t.as_str() == "2" => ws_send(ws, "3").await,
            Some(m @ (WsMessage::Text(_) | WsMessage::Binary(_))) => return m,
            Some(_) => {}
            None => panic!("websocket closed while waiting for data"),
        }
    }
}

/// Reads until the server ends the connection; returns its close code, if it
/// sent a close frame. Data frames before the close are ignored.
async fn ws_closed(ws: &mut Ws) -> Option<u16> {
    let mut code = None;
    while let Some(m) = ws_next(ws).await {
        if let WsMessage::Close(frame) = m {
            code = frame.map(|f| u16::from(f.code));
        }
    }
    code
}

/// The set of keys of a JSON object.
fn keys(v: &Value) -> HashSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

const OPEN_KEYS: [&str; 5] = [
    "sid",
    "upgrades",
    "pingInterval",
    "pingTimeout",
    "maxPayload",
];

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

/// Rule: the polling handshake answers `0{...}` as text/plain; charset=UTF-8
/// with exactly sid, upgrades ["websocket"], pingInterval, pingTimeout and
/// maxPayload; a sid carries at least 120 bits (>= 20 base64url characters)
/// and is unique across handshakes.
#[tokio::test]
async fn handshake_polling_open_packet_fields() {
    let (addr, _rec) = start(config().build()).await;
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let (sid, v) = open_packet(&r.text());
    assert_eq!(keys(&v), HashSet::from(OPEN_KEYS));
    assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(v["pingInterval"].as_u64(), Some(300));
    assert_eq!(v["pingTimeout"].as_u64(), Some(200));
    assert_eq!(v["maxPayload"].as_u64(), Some(1_000_000));
    assert!(sid.len() >= 20, "sid {sid:?} is shorter than 120 bits");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid:?} is not base64url"
    );

    let mut sids = HashSet::from([sid]);
    for _ in 0..20 {
        let (sid, _) = handshake(addr).await;
        assert!(sids.insert(sid.clone()), "sid {sid} handed out twice");
    }
}

/// Rule: a direct WebSocket session's first frame is the open packet, with
/// the same fields and upgrades [].
#[tokio::test]
async fn handshake_websocket_open_packet_fields() {
    let (addr, _rec) = start(config().build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let (sid, v) = open_packet(&ws_text(&mut ws).await);
    assert_eq!(keys(&v), HashSet::from(OPEN_KEYS));
    assert_eq!(v["upgrades"], serde_json::json!([]));
    assert_eq!(v["pingInterval"].as_u64(), Some(300));
    assert_eq!(v["pingTimeout"].as_u64(), Some(200));
    assert_eq!(v["maxPayload"].as_u64(), Some(1_000_000));
    assert!(sid.len() >= 20);
    let (polling_sid, _) = handshake(addr).await;
    assert_ne!(sid, polling_sid);
}

// ---------------------------------------------------------------------------
// HTTP errors
// ---------------------------------------------------------------------------

/// Rule: code 0 `Transport unknown` for a missing or unknown transport, even
/// when EIO is missing too.
#[tokio::test]
async fn error_0_transport_unknown() {
    let (addr, _rec) = start(config().build()).await;
    for target in [
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
        "/engine.io/?transport=abc",
        "/engine.io/",
    ] {
        let r = request(addr, "GET", target, &[], b"").await;
        assert_error(&r, 400, 0, "Transport unknown");
    }
}

/// Rule: code 1 `Session ID unknown` for a sid that never existed, GET and POST.
#[tokio::test]
async fn error_1_session_id_unknown() {
    let (addr, _rec) = start(config().build()).await;
    assert_error(&get(addr, "nope").await, 400, 1, "Session ID unknown");
    assert_error(
        &post(addr, "nope", b"4x").await,
        400,
        1,
        "Session ID unknown",
    );
}

/// Rule: code 2 `Bad handshake method` for a POST or PUT without sid.
#[tokio::test]
async fn error_2_bad_handshake_method() {
    let (addr, _rec) = start(config().build()).await;
    for method in ["POST", "PUT"] {
        let r = request(
            addr,
            method,
            "/engine.io/?EIO=4&transport=polling",
            &[],
            b"4x",
        )
        .await;
        assert_error(&r, 400, 2, "Bad handshake method");
    }
}

/// Rule: code 3 `Bad request` for a plain GET with transport=websocket and no
/// upgrade headers. (Polling after an upgrade: see the upgrade test.)
#[tokio::test]
async fn error_3_websocket_without_upgrade_headers() {
    let (addr, _rec) = start(config().build()).await;
    let r = request(
        addr,
        "GET",
        "/engine.io/?EIO=4&transport=websocket",
        &[],
        b"",
    )
    .await;
    assert_error(&r, 400, 3, "Bad request");
}

/// Rule: code 4 `Forbidden`, status 403, when the allow_request hook refuses
/// a handshake (polling or WebSocket); accepted handshakes proceed.
#[tokio::test]
async fn error_4_forbidden_by_allow_request() {
    let cfg = config()
        .allow_request(|parts| parts.headers.contains_key("x-let-me-in"))
        .build();
    let (addr, _rec) = start(cfg).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(addr, "GET", target, &[], b"").await;
    assert_error(&r, 403, 4, "Forbidden");
    let r = request(addr, "GET", target, &[("X-Let-Me-In", "1")], b"").await;
    assert_eq!(r.status, 200);
    open_packet(&r.text());
    match ws_connect(addr, "/engine.io/?EIO=4&transport=websocket").await {
        Err(tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        Err(e) => panic!("unexpected websocket error {e}"),
        Ok(_) => panic!("websocket handshake accepted despite allow_request"),
    }
}

/// Rule: code 5 `Unsupported protocol version` when EIO is missing, 3 or junk.
#[tokio::test]
async fn error_5_unsupported_protocol_version() {
    let (addr, _rec) = start(config().build()).await;
    for target in [
        "/engine.io/?transport=polling",
        "/engine.io/?EIO=3&transport=polling",
        "/engine.io/?EIO=abc&transport=polling",
    ] {
        let r = request(addr, "GET", target, &[], b"").await;
        assert_error(&r, 400, 5, "Unsupported protocol version");
    }
}

// ---------------------------------------------------------------------------
// Long-polling
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Upgrade
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// maxPayload
// ---------------------------------------------------------------------------

/// Rule: with maxPayload 1000 a 1000-byte POST is accepted; a 1001-byte POST
/// gets 413 and closes the session (PayloadTooLarge, then 400 code 1).
#[tokio::test]
async fn max_payload_polling() {
    let (addr, rec) = start(quiet().max_payload(1000).build()).await;
    let (sid, v) = handshake(addr).await;
    assert_eq!(v["maxPayload"].as_u64(), Some(1000));
    let exact = format!("4{}", "x".repeat(999));
    assert_ok(&post(addr, &sid, exact.as_bytes()).await);
    assert_payload(&get(addr, &sid).await, &exact);

    let over = format!("4{}", "x".repeat(1000));
    let r = post(addr, &sid, over.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PayloadTooLarge]);
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");

    // The same with a chunked body, whose size is only known while reading it.
    let (sid, _) = handshake(addr).await;
    let te = [("Transfer-Encoding", "chunked")];
    let r = request(
        addr,
        "POST",
        &poll_url(&sid),
        &te,
        &chunked(exact.as_bytes()),
    )
    .await;
    assert_ok(&r);
    let r = request(
        addr,
        "POST",
        &poll_url(&sid),
        &te,
        &chunked(over.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        rec.wait_closes(2).await,
        [CloseReason::PayloadTooLarge, CloseReason::PayloadTooLarge]
    );
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
}

/// `data` as a chunked request body (one chunk).
fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

/// Rule: a WebSocket message over maxPayload closes the WebSocket with close
/// code 1009 (PayloadTooLarge); a message of exactly maxPayload is fine.
#[tokio::test]
async fn max_payload_websocket() {
    let (addr, rec) = start(config().max_payload(1000).build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    let exact = format!("4{}", "x".repeat(999));
    ws_send(&mut ws, &exact).await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text(exact));
    ws_send(&mut ws, &format!("4{}", "x".repeat(1000))).await;
    assert_eq!(ws_closed(&mut ws).await, Some(1009));
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PayloadTooLarge]);
}

// ---------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------

/// Rule: with `Cors::any()`, a preflight gets 204 with the origin echoed,
/// credentials true, the allowed methods and the requested headers echoed;
/// a normal GET with Origin gets the allow-origin header.
#[tokio::test]
async fn cors_any_origin() {
    let (addr, _rec) = start(config().cors(Cors::any()).build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(
        addr,
        "OPTIONS",
        target,
        &[
            ("Origin", "http://x.test"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type, x-custom"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://x.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let methods = r
        .header("access-control-allow-methods")
        .expect("allow-methods");
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-custom")
    );

    let r = request(addr, "GET", target, &[("Origin", "http://x.test")], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://x.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
}

/// Rule: with an origin list, a listed origin is allowed and another origin
/// gets no allow-origin header (and, without credentials, no credentials header).
#[tokio::test]
async fn cors_origin_list() {
    let cors = Cors {
        origins: AllowedOrigins::List(vec!["http://a.test".into()]),
        credentials: false,
    };
    let (addr, _rec) = start(config().cors(cors).build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let r = request(addr, "GET", target, &[("Origin", "http://a.test")], b"").await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://a.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), None);
    for method in ["GET", "OPTIONS"] {
        let r = request(addr, method, target, &[("Origin", "http://b.test")], b"").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{method}");
    }
}

/// Rule: without CORS configured no Access-Control-* header is ever sent.
#[tokio::test]
async fn cors_absent_sends_no_headers() {
    let (addr, _rec) = start(config().build()).await;
    let target = "/engine.io/?EIO=4&transport=polling";
    let headers = [
        ("Origin", "http://x.test"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    for method in ["GET", "OPTIONS"] {
        let r = request(addr, method, target, &headers, b"").await;
        let cors: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{method}: {cors:?}");
    }
}

// ---------------------------------------------------------------------------
// Path
// ---------------------------------------------------------------------------

/// Rule: an engine mounted at `/custom/` answers there (polling and
/// WebSocket) and `/engine.io/` is 404.
#[tokio::test]
async fn configurable_path() {
    let (addr, _rec) = start(config().path("/custom/").build()).await;
    let r = request(addr, "GET", "/custom/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200);
    open_packet(&r.text());
    let mut ws = ws_connect(addr, "/custom/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 404);
}

// ---------------------------------------------------------------------------
// Outbound queue bound
// ---------------------------------------------------------------------------

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
