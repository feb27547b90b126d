//! The Engine.IO session state machine, in process.
//!
//! An engine under paused time is driven by an arbitrary sequence of
//! operations on up to two clients: polling handshakes and WebSocket-only
//! handshakes, long-poll GETs (left pending), POSTs with numbered messages,
//! pongs, closes or arbitrary bodies, WebSocket probes (`2probe`), upgrades
//! (`5`), WebSocket text/binary/control frames or raw bytes, dropping the
//! socket, server sends and closes, and timer ticks that run the heartbeat.
//! WebSockets run over `tokio::io::duplex` through `Engine::attach_websocket`.
//!
//! After every step, once all tasks are idle, it checks:
//! - queues stay bounded (packets and bytes, plus the final `1`);
//! - a closed session accepts nothing: no message reaches the handler, sends
//!   fail, polling requests and WebSocket attaches are refused;
//! - every session that closed was reported exactly once, and the session
//!   table holds exactly the open ones;
//! - a long-poll GET never sits pending while packets are queued for it;
//! - order: server messages reach the client in the order sent, across the
//!   upgrade, and nothing follows a close packet; client messages reach the
//!   handler in the order sent, and every one acknowledged (`ok` to a POST,
//!   or written to the active WebSocket) arrives;
//! - no message is larger than `maxPayload`.
//!
//! At the end every open session is drained: it must have received exactly
//! the server messages whose send succeeded.
#![no_main]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::packet::decode_payload;
use rollcall::engine::{
    CloseReason, Connection, Engine, EngineConfig, EngineHandler, Frame, HttpError, Message,
    OverflowPolicy, Packet, SendError, TransportKind, Utf8Bytes,
};
use rollcall_fuzz::{
    client_frame, parse_server_frames, read_all, read_response, request, runtime, settle, tick,
    Input,
};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Rec {
    conns: Vec<Arc<Connection>>,
    msgs: Vec<(String, Message)>,
    closes: Vec<(String, CloseReason)>,
}

struct Handler {
    rec: Arc<Mutex<Rec>>,
    max_payload: usize,
}

impl EngineHandler for Handler {
    type State = ();

    fn on_open(&self, conn: &Arc<Connection>) {
        self.rec.lock().unwrap().conns.push(conn.clone());
    }

    fn on_message(&self, conn: &Arc<Connection>, _: &(), msg: Message) {
        assert!(
            !conn.is_closed(),
            "a message reached the handler of a closed session"
        );
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        };
        assert!(
            len <= self.max_payload,
            "a message over maxPayload was delivered"
        );
        self.rec
            .lock()
            .unwrap()
            .msgs
            .push((conn.id().to_string(), msg));
    }

    fn on_close(&self, conn: &Arc<Connection>, _: &(), reason: CloseReason) {
        assert!(
            conn.is_closed(),
            "on_close for a session that is not closed"
        );
        let mut rec = self.rec.lock().unwrap();
        assert!(
            !rec.closes.iter().any(|(s, _)| s == conn.id()),
            "on_close called twice"
        );
        rec.closes.push((conn.id().to_string(), reason));
    }
}

struct Get {
    handle: JoinHandle<(u16, Bytes)>,
    /// The session was already closed when the GET was sent.
    after_close: bool,
}

struct Ws {
    io: DuplexStream,
    rbuf: Vec<u8>,
    eof: bool,
    mask: [u8; 4],
    /// Attached while an older WebSocket of the session was still open, so
    /// the server may have refused it.
    maybe_refused: bool,
}

struct Client {
    conn: Arc<Connection>,
    sid: String,
    gets: Vec<Get>,
    ws: Option<Ws>,
    /// Older WebSockets kept open (never written to again, but read).
    parked: Vec<Ws>,
    /// Client messages `#n`: next number, and whether raw bytes may have forged one.
    next_c: u64,
    tainted: bool,
    /// Server messages: next number, the ones queued successfully, the ones received.
    next_s: u64,
    sent_s: Vec<u64>,
    recv_s: Vec<u64>,
    got_open: bool,
    got_close: bool,
    /// Messages the handler had when the session was first seen closed.
    frozen: Option<usize>,
}

struct Harness {
    /// Capacity of each direction of a WebSocket's in-memory pipe: small
    /// ones make the server's writes wait for the client to read.
    ws_capacity: usize,
    engine: Engine<Handler>,
    rec: Arc<Mutex<Rec>>,
    cfg: EngineConfig,
    clients: Vec<Client>,
}

fn poll_query(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn numbered(client: &mut Client) -> u64 {
    let n = client.next_c;
    client.next_c += 1;
    n
}

/// Client message numbers the handler received for `sid`, in order.
fn delivered(rec: &Rec, sid: &str) -> Vec<u64> {
    rec.msgs
        .iter()
        .filter(|(s, _)| s == sid)
        .filter_map(|(_, m)| match m {
            Message::Text(t) => t.as_str().strip_prefix('#')?.parse().ok(),
            Message::Binary(_) => None,
        })
        .collect()
}

impl Client {
    fn new(conn: Arc<Connection>) -> Client {
        Client {
            sid: conn.id().to_string(),
            conn,
            gets: Vec::new(),
            ws: None,
            parked: Vec::new(),
            next_c: 0,
            tainted: false,
            next_s: 0,
            sent_s: Vec::new(),
            recv_s: Vec::new(),
            got_open: false,
            got_close: false,
            frozen: None,
        }
    }

    /// A packet the client received, in arrival order.
    fn receive(&mut self, p: Packet) {
        // `3probe` answers the probe on its own socket, outside the
        // session's packet stream, so it may be read after the close packet.
        if matches!(&p, Packet::Pong(t) if t.as_str() == "probe") || p == Packet::Noop {
            return;
        }
        assert!(!self.got_close, "{p:?} followed the close packet");
        let n = match p {
            Packet::Open => {
                assert!(!self.got_open, "second open packet");
                self.got_open = true;
                return;
            }
            Packet::Close => {
                self.got_close = true;
                return;
            }
            Packet::Ping(_) | Packet::Pong(_) | Packet::Noop => return,
            Packet::Upgrade => panic!("the server sent an upgrade packet"),
            Packet::Message(t) => t
                .as_str()
                .strip_prefix('s')
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("unexpected server message {t:?}")),
            Packet::Binary(b) => u64::from_be_bytes(
                b[..]
                    .try_into()
                    .unwrap_or_else(|_| panic!("unexpected binary message {b:?}")),
            ),
        };
        assert!(n < self.next_s, "received a message never sent");
        assert!(
            self.recv_s.last().is_none_or(|&l| n > l),
            "server messages out of order: {n} after {:?}",
            self.recv_s.last()
        );
        assert!(
            self.sent_s.contains(&n),
            "received a message whose send failed"
        );
        self.recv_s.push(n);
    }

    fn receive_body(&mut self, body: Bytes) {
        let (packets, err) = decode_payload(body.clone());
        assert_eq!(err, None, "the server sent a bad polling payload {body:?}");
        for p in packets {
            self.receive(p);
        }
    }

    /// Takes the finished GETs (in the order sent).
    async fn collect_gets(&mut self) {
        let mut i = 0;
        while i < self.gets.len() {
            if self.gets[i].handle.is_finished() {
                let g = self.gets.remove(i);
                let (status, body) = g.handle.await.expect("GET task panicked");
                if g.after_close {
                    assert_ne!(status, 200, "a GET on a closed session was answered");
                }
                if status == 200 {
                    self.receive_body(body);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Reads and handles what the WebSockets have for us now (older ones first).
    async fn read_ws(&mut self) {
        let mut frames = Vec::new();
        for ws in self.parked.iter_mut().chain(self.ws.as_mut()) {
            if !ws.eof && read_all(&mut ws.io, &mut ws.rbuf).await {
                ws.eof = true;
            }
            frames.extend(parse_server_frames(&mut ws.rbuf));
        }
        for f in frames {
            match f.opcode {
                1 => {
                    let t = Utf8Bytes::try_from(Bytes::from(f.payload))
                        .expect("server text frame is not UTF-8");
                    let p = Packet::decode_text(t, false).expect("server sent a bad packet");
                    self.receive(p);
                }
                2 => self.receive(Packet::Binary(Bytes::from(f.payload))),
                8 | 10 => {}
                op => panic!("server frame with opcode {op}"),
            }
        }
    }

    async fn ws_write(&mut self, bytes: &[u8]) {
        if let Some(ws) = self.ws.as_mut() {
            if ws.io.write_all(bytes).await.is_err() {
                ws.eof = true;
            }
        }
    }

    async fn ws_send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        if let Some(ws) = self.ws.as_ref() {
            let frame = client_frame(fin, opcode, payload, ws.mask);
            self.ws_write(&frame).await;
        }
    }
}

impl Harness {
    /// The connection of the latest `on_open` (a handshake just made one).
    fn last_conn(&self) -> Arc<Connection> {
        let rec = self.rec.lock().unwrap();
        rec.conns.last().cloned().expect("no on_open")
    }

    async fn handshake_polling(&mut self) {
        let res = self
            .engine
            .handle(
                request("GET", "EIO=4&transport=polling", Vec::new(), None),
                rollcall_fuzz::peer(),
            )
            .await;
        let (status, body) = read_response(res).await;
        if !self.cfg.transports.polling {
            assert_eq!(status, 400);
            return;
        }
        assert_eq!(status, 200);
        let mut c = Client::new(self.last_conn());
        let (packets, err) = decode_payload(body);
        assert_eq!(err, None);
        assert!(matches!(packets.first(), Some(Packet::Open)));
        assert_eq!(packets.len(), 1);
        c.got_open = true;
        self.clients.push(c);
    }

    async fn handshake_ws(&mut self, mask: [u8; 4]) {
        let (client, server) = tokio::io::duplex(self.ws_capacity);
        match self.engine.attach_websocket(None, server) {
            Ok(()) => {
                let mut c = Client::new(self.last_conn());
                c.ws = Some(Ws {
                    io: client,
                    rbuf: Vec::new(),
                    eof: false,
                    mask,
                    maybe_refused: false,
                });
                self.clients.push(c);
            }
            Err(e) => {
                assert!(!self.cfg.transports.websocket);
                assert_eq!(e, HttpError::UnknownTransport);
            }
        }
    }

    async fn get(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let after_close = c.conn.is_closed();
        let engine = self.engine.clone();
        let req = request("GET", &poll_query(&c.sid), Vec::new(), None);
        let handle = tokio::spawn(async move {
            read_response(engine.handle(req, rollcall_fuzz::peer()).await).await
        });
        c.gets.push(Get {
            handle,
            after_close,
        });
    }

    async fn post(&mut self, i: usize, body: Vec<u8>, content_type: Option<&str>) -> u16 {
        let c = &self.clients[i];
        let was_closed = c.conn.is_closed();
        let res = self
            .engine
            .handle(
                request("POST", &poll_query(&c.sid), body, content_type),
                rollcall_fuzz::peer(),
            )
            .await;
        let (status, _) = read_response(res).await;
        if was_closed {
            assert_ne!(status, 200, "a POST to a closed session was accepted");
        }
        status
    }

    async fn step(&mut self, input: &mut Input<'_>) {
        let op = input.byte() % 24;
        if trace() {
            let state: Vec<_> = self
                .clients
                .iter()
                .map(|c| {
                    (
                        c.conn.transport(),
                        c.conn.is_closed(),
                        c.conn.queued().0,
                        c.ws.is_some(),
                        c.parked.len(),
                    )
                })
                .collect();
            eprintln!("op {op:2} clients {state:?}");
        }
        if op == 0 {
            if self.clients.len() < 2 {
                self.handshake_polling().await;
            }
            return;
        }
        if op == 1 {
            let mask = [input.byte(), input.byte(), 0x5a, 0xa5];
            if self.clients.len() < 2 {
                self.handshake_ws(mask).await;
            }
            return;
        }
        if op == 2 {
            let ms = input.byte() as u64 * self.cfg.ping_interval.as_millis() as u64 / 32;
            tick(Duration::from_millis(ms.max(1))).await;
            return;
        }
        if self.clients.is_empty() {
            return;
        }
        let i = input.byte() as usize % self.clients.len();
        match op {
            3 | 4 => self.get(i).await,
            5 | 6 => {
                // Numbered messages in one POST.
                let k = 1 + input.byte() as usize % 4;
                let c = &mut self.clients[i];
                let nums: Vec<u64> = (0..k).map(|_| numbered(c)).collect();
                let body = nums
                    .iter()
                    .map(|n| format!("4#{n}"))
                    .collect::<Vec<_>>()
                    .join("\u{1e}");
                let status = self.post(i, body.into_bytes(), None).await;
                if status == 200 {
                    let c = &self.clients[i];
                    let got = delivered(&self.rec.lock().unwrap(), &c.sid);
                    for n in nums {
                        assert!(
                            got.contains(&n),
                            "POST answered ok but message {n} was not delivered"
                        );
                    }
                }
            }
            7 => {
                // An arbitrary body ('#' is reserved for numbered messages).
                let body: Vec<u8> = input
                    .chunk()
                    .iter()
                    .map(|&b| if b == b'#' { b'_' } else { b })
                    .collect();
                self.post(i, body, None).await;
            }
            8 => {
                self.post(i, b"3".to_vec(), None).await;
            }
            9 => {
                let body = match input.byte() % 4 {
                    0 => b"1".to_vec(),
                    1 => b"2".to_vec(),
                    2 => vec![b'4'; self.cfg.max_payload + 1],
                    _ => b"5\x1e6\x1e3".to_vec(),
                };
                self.post(i, body, None).await;
            }
            10 => {
                self.post(i, b"4x".to_vec(), Some("application/octet-stream"))
                    .await;
            }
            11 => {
                // Probe: a new WebSocket for this session (the old one goes away).
                let mask = [input.byte(), 1, 2, input.byte()];
                let flags = input.byte();
                let send_probe = !flags.is_multiple_of(4);
                let keep_old = flags & 0x80 != 0;
                // Another WebSocket of this client still open may hold the slot.
                let mut maybe_refused = !self.clients[i].parked.is_empty();
                if let Some(old) = self.clients[i].ws.take() {
                    if keep_old && !old.eof {
                        self.clients[i].parked.push(old);
                        maybe_refused = true;
                    } else {
                        drop(old);
                        settle().await;
                    }
                }
                let (client, server) = tokio::io::duplex(self.ws_capacity);
                let closed = self.clients[i].conn.is_closed();
                match self
                    .engine
                    .attach_websocket(Some(&self.clients[i].sid), server)
                {
                    Ok(()) => {
                        assert!(!closed, "a closed session accepted a WebSocket");
                        let c = &mut self.clients[i];
                        c.ws = Some(Ws {
                            io: client,
                            rbuf: Vec::new(),
                            eof: false,
                            mask,
                            maybe_refused,
                        });
                        if send_probe {
                            c.ws_send(true, 1, b"2probe").await;
                        }
                    }
                    Err(e) => {
                        if closed {
                            assert_eq!(e, HttpError::UnknownSid);
                        }
                    }
                }
            }
            12 => self.clients[i].ws_send(true, 1, b"5").await,
            13 | 14 => {
                let c = &mut self.clients[i];
                let Some(maybe_refused) = c.ws.as_ref().map(|w| w.maybe_refused) else {
                    return;
                };
                let n = numbered(c);
                let text = format!("4#{n}");
                if input.byte().is_multiple_of(3) && text.len() > 2 {
                    // Fragmented, with a ping in the middle.
                    let (a, b) = text.as_bytes().split_at(2);
                    c.ws_send(false, 1, a).await;
                    c.ws_send(true, 9, b"hi").await;
                    c.ws_send(true, 0, b).await;
                } else {
                    c.ws_send(true, 1, text.as_bytes()).await;
                }
                settle().await;
                // The server does not read while its own write waits for the
                // client (back-pressure): read what it wrote first.
                self.clients[i].read_ws().await;
                let c = &self.clients[i];
                // Raw bytes written before may have left a frame unfinished.
                if !maybe_refused
                    && !c.tainted
                    && !c.conn.is_closed()
                    && c.conn.transport() == TransportKind::WebSocket
                {
                    let got = delivered(&self.rec.lock().unwrap(), &c.sid);
                    assert!(
                        got.contains(&n),
                        "message {n} written to the active WebSocket was lost"
                    );
                }
            }
            15 => {
                let data = input.chunk().to_vec();
                self.clients[i].ws_send(true, 2, &data).await;
            }
            16 => {
                let what = input.byte() % 5;
                let c = &mut self.clients[i];
                match what {
                    0 => c.ws_send(true, 1, b"3").await,
                    1 => c.ws_send(true, 9, b"ping").await,
                    2 => c.ws_send(true, 8, &1000u16.to_be_bytes()).await,
                    3 => c.ws_send(true, 1, b"1").await,
                    _ => c.ws_send(true, 1, b"2").await,
                }
            }
            17 => {
                // Drop the client's ends of its WebSockets.
                self.clients[i].ws = None;
                self.clients[i].parked.clear();
            }
            18 => {
                let raw = input.chunk().to_vec();
                let c = &mut self.clients[i];
                if c.ws.is_some() {
                    c.tainted = true;
                    c.ws_write(&raw).await;
                }
            }
            19 | 20 => {
                let binary = input.byte().is_multiple_of(3);
                let c = &mut self.clients[i];
                let n = c.next_s;
                c.next_s += 1;
                let frame = if binary {
                    Frame::binary(&n.to_be_bytes())
                } else {
                    Frame::message(&format!("s{n}"))
                };
                let closed = c.conn.is_closed();
                match c.conn.send(frame) {
                    Ok(()) => {
                        assert!(!closed);
                        c.sent_s.push(n);
                    }
                    Err(SendError::Closed) => assert!(closed),
                    Err(SendError::QueueFull) => assert!(!closed),
                }
            }
            21 => {
                // A group (a packet and its attachments): all or nothing.
                let c = &mut self.clients[i];
                let (a, b) = (c.next_s, c.next_s + 1);
                c.next_s += 2;
                let frames = [
                    Frame::message(&format!("s{a}")),
                    Frame::binary(&b.to_be_bytes()),
                ];
                if c.conn.send_many(&frames).is_ok() {
                    c.sent_s.extend([a, b]);
                }
            }
            22 => self.clients[i].conn.close(),
            _ => self.clients[i].read_ws().await,
        }
    }

    /// The invariants that hold whenever every task is idle.
    async fn check(&mut self) {
        for c in &mut self.clients {
            c.collect_gets().await;
        }
        let rec = self.rec.clone();
        let rec = rec.lock().unwrap();
        let open = rec.conns.iter().filter(|c| !c.is_closed()).count();
        assert_eq!(
            self.engine.session_count(),
            open,
            "session table out of step"
        );
        for conn in &rec.conns {
            let reported = rec.closes.iter().filter(|(s, _)| s == conn.id()).count();
            assert_eq!(
                reported,
                conn.is_closed() as usize,
                "on_close not called exactly once"
            );
            let (packets, bytes) = conn.queued();
            assert!(
                packets <= self.cfg.max_queue_packets + 1,
                "queue holds {packets} packets, limit {}",
                self.cfg.max_queue_packets
            );
            assert!(
                bytes <= self.cfg.max_queue_bytes + 256,
                "queue holds {bytes} bytes, limit {}",
                self.cfg.max_queue_bytes
            );
        }
        for c in &mut self.clients {
            let count = rec.msgs.iter().filter(|(s, _)| *s == c.sid).count();
            if c.conn.is_closed() {
                match c.frozen {
                    None => c.frozen = Some(count),
                    Some(n) => assert_eq!(n, count, "a closed session received a message"),
                }
                assert_eq!(c.conn.send(Frame::message("late")), Err(SendError::Closed));
            }
            if !c.tainted {
                let got = delivered(&rec, &c.sid);
                assert!(
                    got.windows(2).all(|w| w[0] < w[1]),
                    "client messages out of order: {got:?}"
                );
                assert!(got.iter().all(|&n| n < c.next_c));
            }
            if !c.gets.is_empty() {
                let (queued, _) = c.conn.queued();
                let polling = c.conn.transport() == TransportKind::Polling;
                assert!(
                    queued == 0 && polling && !c.conn.is_closed(),
                    "a long-poll GET is pending while the session has packets for it, \
                     runs on WebSocket or is closed"
                );
            }
        }
    }

    /// Drains every open session and checks it got all it was sent.
    async fn finish(&mut self) {
        settle().await;
        self.check().await;
        for i in 0..self.clients.len() {
            if self.clients[i].conn.is_closed() {
                continue;
            }
            match self.clients[i].conn.transport() {
                TransportKind::Polling => {
                    if self.clients[i].gets.is_empty() {
                        self.get(i).await;
                    }
                    settle().await;
                    if !self.clients[i].gets.is_empty() && self.clients[i].conn.queued().0 == 0 {
                        // Nothing queued: release the poll.
                        self.clients[i]
                            .conn
                            .send(Frame::text(rollcall::engine::PacketType::Noop, ""))
                            .ok();
                        settle().await;
                    }
                    self.clients[i].collect_gets().await;
                }
                TransportKind::WebSocket => self.clients[i].read_ws().await,
            }
            let c = &self.clients[i];
            if !c.conn.is_closed() {
                assert_eq!(
                    c.recv_s, c.sent_s,
                    "an open session did not receive all it was sent"
                );
            }
        }
        // Tear down: every session closes and is reported.
        for c in &self.clients {
            c.conn.close();
        }
        let conns = self.rec.lock().unwrap().conns.clone();
        for c in conns {
            c.close();
        }
        settle().await;
        for c in &mut self.clients {
            c.collect_gets().await;
            c.read_ws().await;
        }
        settle().await;
        assert_eq!(self.engine.session_count(), 0);
        let rec = self.rec.lock().unwrap();
        assert_eq!(rec.closes.len(), rec.conns.len());
    }
}

/// `SESSION_TRACE=1` prints each operation (to read a crash input).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SESSION_TRACE").is_some())
}

fn config(input: &mut Input) -> EngineConfig {
    const INTERVALS: [u64; 3] = [1_000, 5_000, 25_000];
    const TIMEOUTS: [u64; 3] = [500, 2_000, 20_000];
    // a: ping interval (a % 3), ping timeout (a / 3 % 3), WebSocket pipe size (a / 9 % 3).
    let a = input.byte();
    let b = input.byte();
    EngineConfig::builder()
        .ping_interval(Duration::from_millis(INTERVALS[a as usize % 3]))
        .ping_timeout(Duration::from_millis(TIMEOUTS[(a as usize / 3) % 3]))
        .upgrade_timeout(Duration::from_millis(3_000))
        .max_payload(16 + input.byte() as usize * 8)
        .queue_limits(
            1 + input.byte() as usize % 24,
            32 + input.byte() as usize * 16,
        )
        .overflow(if b & 1 == 0 {
            OverflowPolicy::Disconnect
        } else {
            OverflowPolicy::DropNewest
        })
        .allow_upgrades(b & 0x0e != 0)
        .transports(b & 0x30 != 0x10, b & 0x30 != 0x20)
        .build()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let ws_capacity = [1 << 20, 512, 64][data.first().map_or(0, |a| (*a as usize / 9) % 3)];
    let cfg = config(&mut input);
    let rec = Arc::new(Mutex::new(Rec::default()));
    let handler = Handler {
        rec: rec.clone(),
        max_payload: cfg.max_payload,
    };
    if trace() {
        eprintln!(
            "{cfg:?} queue {} packets / {} bytes, {:?}",
            cfg.max_queue_packets, cfg.max_queue_bytes, cfg.overflow
        );
    }
    let engine = Engine::new(cfg.clone(), handler);
    let rt = runtime();
    rt.block_on(async {
        let mut h = Harness {
            ws_capacity,
            engine,
            rec,
            cfg,
            clients: Vec::new(),
        };
        let mut steps = 0;
        while !input.is_empty() && steps < 400 {
            h.step(&mut input).await;
            settle().await;
            h.check().await;
            steps += 1;
        }
        h.finish().await;
    });
});
