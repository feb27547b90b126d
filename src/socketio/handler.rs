//! The Engine.IO handler of the Socket.IO layer: it decodes each
//! connection's packets, routes them to its sockets, and runs CONNECT
//! (recovery through the namespace's adapter, middlewares, the answer).
//!
//! Before anything is parsed, each message passes the connection's abuse
//! checks ([`EventLimits`]: packet rate, size; a binary packet's whole size
//! and attachment deadline), SPEC.md §3.14.
//!
//! Locks: a connection's [`ConnState`] mutex guards its namespace slots,
//! packet decoder (a JSON binary packet waiting for its attachments) and
//! packet-rate bucket. It is
//! never held while a socket handles a packet, a middleware or handler runs,
//! or the adapter is called. Decoding goes through the server's
//! [`Parser`](super::packet::Parser), JSON or msgpack alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

use super::guard::{EventLimits, Refusal};
use super::namespace::ConnectError;
use super::packet::{Decoder, Packet, PacketKind};
use super::server::ServerInner;
use super::socket::{DisconnectReason, Extensions, Socket, SocketInit};
use crate::engine::{CloseReason, Connection, EngineHandler, Message};
use crate::http::Bucket;

enum NsSlot {
    /// CONNECT is being processed; packets for the namespace wait here.
    Connecting(Pending),
    Connected(Arc<Socket>),
}

/// Packets waiting for a CONNECT to complete, and their size in bytes.
#[derive(Default)]
struct Pending {
    packets: Vec<Packet>,
    bytes: usize,
}

#[derive(Default)]
struct ConnInner {
    slots: HashMap<String, NsSlot>,
    /// Decoding state (a JSON binary packet waiting for its attachments).
    decoder: Decoder,
    /// The connection's packet-rate bucket (created on the first message).
    bucket: Option<Bucket>,
    /// Set once the Engine.IO session has ended, with the reason sockets get.
    closed: Option<DisconnectReason>,
}

/// Socket.IO state of one Engine.IO connection.
pub struct ConnState {
    inner: Mutex<ConnInner>,
    /// Told when the first namespace is joined or the connection closes.
    joined: Notify,
}

impl ConnState {
    pub(crate) fn remove_ns(&self, ns: &str) {
        self.inner.lock().slots.remove(ns);
    }
}

/// The Engine.IO handler of the Socket.IO layer.
pub struct SioHandler {
    server: Arc<ServerInner>,
}

impl SioHandler {
    pub(crate) fn new(server: Arc<ServerInner>) -> SioHandler {
        SioHandler { server }
    }
}

impl EngineHandler for SioHandler {
    type State = Arc<ConnState>;

    fn on_open(&self, conn: &Arc<Connection>) -> Arc<ConnState> {
        if let Some(o) = self.server.observer() {
            o.connection_opened(conn);
        }
        let state = Arc::new(ConnState {
            inner: Mutex::new(ConnInner::default()),
            joined: Notify::new(),
        });
        let timeout = self.server.connect_timeout();
        let st = Arc::downgrade(&state);
        let c = Arc::downgrade(conn);
        tokio::spawn(async move {
            let joined = match st.upgrade() {
                Some(s) => s,
                None => return,
            };
            let waited = tokio::time::timeout(timeout, joined.joined.notified()).await;
            drop(joined);
            if waited.is_err() {
                let empty = st
                    .upgrade()
                    .is_some_and(|s| s.inner.lock().slots.is_empty());
                if let (true, Some(conn)) = (empty, c.upgrade()) {
                    conn.close_with(CloseReason::Upper("connect timeout"));
                }
            }
        });
        state
    }

    fn on_message(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, msg: Message) {
        if let Some(o) = self.server.observer() {
            o.message_received(match &msg {
                Message::Text(t) => t.len(),
                Message::Binary(b) => b.len(),
            });
        }
        let limits = self.server.event_limits();
        let packet = {
            let mut g = state.inner.lock();
            if let Err(refusal) = admit(&mut g, limits, &msg) {
                drop(g);
                return refuse(conn, refusal);
            }
            let before = g.decoder.pending().map(|(n, _)| n);
            let r = g
                .decoder
                .feed(self.server.parser(), msg, self.server.limits());
            match r {
                Ok(None) => {
                    let pending = g.decoder.pending();
                    drop(g);
                    if let Some((n, size)) = pending {
                        if size > conn.config().max_payload {
                            return refuse(conn, Refusal::Size);
                        }
                        if before != Some(n) {
                            arm_binary_deadline(conn, state, n, limits.binary_deadline);
                        }
                    }
                    return;
                }
                Ok(Some(p)) => p,
                Err(e) => {
                    drop(g);
                    tracing::debug!(sid = conn.id(), error = %e, "closing on a bad packet");
                    conn.close_with(CloseReason::ParseError);
                    return;
                }
            }
        };
        let (p, size) = packet;
        if size > conn.config().max_payload {
            return refuse(conn, Refusal::Size);
        }
        self.dispatch(conn, state, p, size);
    }

    fn on_close(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, reason: CloseReason) {
        if let Some(o) = self.server.observer() {
            o.connection_closed(conn, &reason);
        }
        let reason = DisconnectReason::from_close(&reason);
        let slots = {
            let mut g = state.inner.lock();
            g.closed = Some(reason);
            std::mem::take(&mut g.slots)
        };
        state.joined.notify_one();
        for slot in slots.into_values() {
            if let NsSlot::Connected(s) = slot {
                s.closed(reason);
            }
        }
    }

    fn on_upgrade(&self, conn: &Arc<Connection>, _state: &Arc<ConnState>) {
        if let Some(o) = self.server.observer() {
            o.connection_upgraded(conn);
        }
    }
}

/// The checks before parsing (SPEC.md §3.14): the connection's packet rate,
/// and the size of a text packet (msgpack: of any packet).
fn admit(g: &mut ConnInner, limits: &EventLimits, msg: &Message) -> Result<(), Refusal> {
    if let Some(rate) = &limits.packet_rate {
        let now = Instant::now();
        let bucket = g.bucket.get_or_insert_with(|| Bucket::full(rate, now));
        bucket.take(rate, now).map_err(|_| Refusal::Rate)?;
    }
    let text_len = match msg {
        Message::Text(t) => t.len(),
        // A JSON attachment is bounded with its packet's total.
        Message::Binary(b) if g.decoder.pending().is_none() => b.len(),
        Message::Binary(_) => 0,
    };
    if text_len > limits.max_event_bytes {
        return Err(Refusal::Size);
    }
    Ok(())
}

/// Closes a connection refused by [`admit`] or a binary-packet bound:
/// counted, logged at debug level only.
fn refuse(conn: &Connection, refusal: Refusal) {
    refusal.count();
    tracing::debug!(sid = conn.id(), ?refusal, "closing: over a Socket.IO limit");
    conn.close_with(match refusal {
        Refusal::Rate => CloseReason::Upper("packet rate limit"),
        Refusal::Size | Refusal::Deadline => CloseReason::ParseError,
    });
}

/// Closes the connection if binary packet number `n` is still waiting for
/// attachments `after` from now.
fn arm_binary_deadline(conn: &Arc<Connection>, state: &Arc<ConnState>, n: u64, after: Duration) {
    let (c, st) = (Arc::downgrade(conn), Arc::downgrade(state));
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let (Some(conn), Some(st)) = (c.upgrade(), st.upgrade()) else {
            return;
        };
        let still = st.inner.lock().decoder.pending().map(|(m, _)| m) == Some(n);
        if still {
            refuse(&conn, Refusal::Deadline);
        }
    });
}

impl SioHandler {
    /// Routes a complete packet; `size` is its size on the wire (message
    /// and attachments), which counts against the connect buffer.
    fn dispatch(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, p: Packet, size: usize) {
        if p.kind == PacketKind::Connect {
            return self.connect(conn, state, p);
        }
        let socket = {
            let mut g = state.inner.lock();
            match g.slots.get_mut(&p.ns) {
                Some(NsSlot::Connecting(pending)) => {
                    let limit = self.server.connect_buffer();
                    if pending.packets.len() >= limit.packets
                        || pending.bytes.saturating_add(size) > limit.bytes
                    {
                        drop(g);
                        tracing::debug!(
                            sid = conn.id(),
                            ns = %p.ns,
                            "closing: too much sent while the namespace was connecting"
                        );
                        conn.close_with(CloseReason::Upper("connect buffer overflow"));
                        return;
                    }
                    pending.bytes += size;
                    pending.packets.push(p);
                    return;
                }
                Some(NsSlot::Connected(s)) => s.clone(),
                None => {
                    drop(g);
                    conn.close_with(CloseReason::ParseError);
                    return;
                }
            }
        };
        socket.on_packet(p);
    }

    fn connect(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, p: Packet) {
        if self.server.shutting_down() {
            // A restore now would take a session the shutdown has saved.
            conn.close();
            return;
        }
        let Some(ns) = self.server.namespace(&p.ns) else {
            self.server.stats().invalid_namespace.inc();
            super::stats::log_refusal(&p.ns, "invalid_namespace");
            let err = ConnectError::new("Invalid namespace").to_json();
            let frame =
                self.server
                    .parser()
                    .encode_control(PacketKind::ConnectError, &p.ns, Some(&err));
            let _ = conn.send(frame);
            return;
        };
        {
            let mut g = state.inner.lock();
            if g.slots.contains_key(&p.ns) {
                drop(g);
                conn.close_with(CloseReason::ParseError);
                return;
            }
            g.slots
                .insert(p.ns.clone(), NsSlot::Connecting(Pending::default()));
        }
        let mut auth = match p.data {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let mut restored = None;
        let mut pid = None;
        if ns.recovery().is_some() {
            let old_pid = auth.remove("pid");
            let offset = auth.remove("offset");
            if let (Some(Value::String(old_pid)), Some(Value::String(offset))) = (old_pid, offset) {
                restored = ns.adapter().restore_session(&old_pid, &offset);
                let outcome = usize::from(restored.is_none());
                self.server.stats().recoveries[outcome].inc();
                if restored.is_some() {
                    pid = Some(Arc::<str>::from(old_pid.as_str()));
                }
            }
            if pid.is_none() {
                pid = Some(crate::util::random_id(16).into());
            }
        }
        let recovered = restored.is_some();
        let (id, data, resume) = match restored {
            Some(r) => {
                let resume = Resume {
                    rooms: r.session.rooms,
                    missed: r.missed,
                    upto: r.upto,
                };
                (r.session.sid, r.session.data, Some(resume))
            }
            None => (
                crate::util::random_id(15).into(),
                Arc::new(Extensions::default()),
                None,
            ),
        };
        let socket = Arc::new(Socket::new(SocketInit {
            id,
            ns: ns.clone(),
            conn: conn.clone(),
            conn_state: Arc::downgrade(state),
            auth: Value::Object(auth),
            data,
            pid,
            recovered,
        }));
        let skip = recovered && ns.recovery().is_some_and(|r| r.skip_middlewares);
        if ns.middlewares().is_empty() || skip {
            finish_connect(state, socket, resume);
            return;
        }
        let state = Arc::downgrade(state);
        tokio::spawn(async move {
            for mw in socket.ns().middlewares().to_vec() {
                if let Err(e) = mw(socket.clone()).await {
                    socket.ns().stats().connect_refusals.inc();
                    if let Some(st) = state.upgrade() {
                        st.remove_ns(socket.ns().name());
                    }
                    let _ = socket.conn().send(socket.ns().parser().encode_control(
                        PacketKind::ConnectError,
                        socket.ns().name(),
                        Some(&e.to_json()),
                    ));
                    return;
                }
            }
            if let Some(st) = state.upgrade() {
                finish_connect(&st, socket, resume);
            }
        });
    }
}

/// What a recovered socket gets back once connected: its rooms and the
/// packets it missed (see [`Adapter::resume`](super::adapter::Adapter::resume)).
struct Resume {
    rooms: Vec<super::rooms::Room>,
    missed: Vec<crate::engine::Frame>,
    upto: u64,
}

/// Completes a CONNECT: answer, rooms, connection handler, missed packets,
/// then the packets that arrived for the namespace in the meantime. If the
/// connection ends before the socket is registered as connected (e.g. while
/// the connection handler runs), the socket is disconnected here with the
/// connection's real reason.
fn finish_connect(state: &Arc<ConnState>, socket: Arc<Socket>, resume: Option<Resume>) {
    let ns = socket.ns().clone();
    if state.inner.lock().closed.is_some() || socket.conn().is_closed() {
        return;
    }
    let mut answer = serde_json::Map::new();
    answer.insert("sid".into(), Value::String(socket.id().to_string()));
    if let Some(pid) = socket.pid() {
        answer.insert("pid".into(), Value::String(pid.to_string()));
    }
    let _ = socket.conn().send(ns.parser().encode_control(
        PacketKind::Connect,
        ns.name(),
        Some(&Value::Object(answer)),
    ));
    socket.set_connected();
    ns.stats().connects.inc();
    ns.add_socket(socket.clone());
    match resume {
        // The rooms include the socket's own.
        Some(r) => ns.adapter().resume(&socket, &r.rooms, r.missed, r.upto),
        None => socket.join(socket.id()),
    }
    if let Some(o) = ns.observer() {
        o.socket_connected(&socket);
    }
    state.joined.notify_one();
    ns.run_connection_handler(socket.clone());
    loop {
        let queued = {
            let mut g = state.inner.lock();
            // `on_close` took the slots (and reported only connected
            // sockets): this one is ours to disconnect.
            if let Some(reason) = g.closed {
                drop(g);
                socket.closed(reason);
                return;
            }
            match g.slots.get_mut(ns.name()) {
                Some(NsSlot::Connecting(q)) if !q.packets.is_empty() => std::mem::take(q).packets,
                Some(slot @ NsSlot::Connecting(_)) => {
                    // From here on `on_close` reports this socket.
                    *slot = NsSlot::Connected(socket.clone());
                    return;
                }
                // The socket left the namespace meanwhile (it has been told).
                _ => return,
            }
        };
        for p in queued {
            socket.on_packet(p);
        }
    }
}
