//! A socket: one client's connection to one namespace.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::oneshot;

use super::adapter::Session;
use super::broadcast::BroadcastOperator;
use super::handler::ConnState;
use super::namespace::Namespace;
use super::packet::{Packet, PacketKind, Payload};
use super::rooms::Room;
use crate::engine::{CloseReason, Connection, Frame, HandshakeInfo, SendError};

/// Handles an event: the socket, the arguments, and the ack to answer with
/// when the client asked for one.
pub type EventHandler = Arc<dyn Fn(&Arc<Socket>, Payload, Option<AckSender>) + Send + Sync>;
/// Handles any event: like [`EventHandler`] with the event name.
pub type AnyHandler = Arc<dyn Fn(&Arc<Socket>, &str, Payload, Option<AckSender>) + Send + Sync>;
/// Called once when the socket disconnects.
pub type DisconnectHandler = Box<dyn FnOnce(&Arc<Socket>, DisconnectReason) + Send>;

/// Why a socket disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The client left the namespace (DISCONNECT packet).
    #[error("client namespace disconnect")]
    ClientNamespaceDisconnect,
    /// The server disconnected the socket ([`Socket::disconnect`]).
    #[error("server namespace disconnect")]
    ServerNamespaceDisconnect,
    /// The connection was closed by the client or dropped.
    #[error("transport close")]
    TransportClose,
    /// The connection broke.
    #[error("transport error")]
    TransportError,
    /// The client stopped answering pings.
    #[error("ping timeout")]
    PingTimeout,
    /// The client sent something that is not a valid packet.
    #[error("parse error")]
    ParseError,
    /// The server closed the whole connection.
    #[error("forced close")]
    ForcedClose,
    /// The client did not read fast enough and its queue overflowed.
    #[error("slow client")]
    SlowClient,
}

impl DisconnectReason {
    pub(crate) fn from_close(reason: &CloseReason) -> DisconnectReason {
        match reason {
            CloseReason::ClientClose | CloseReason::TransportClose => {
                DisconnectReason::TransportClose
            }
            CloseReason::TransportError(_) | CloseReason::PayloadTooLarge => {
                DisconnectReason::TransportError
            }
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::PingTimeout | CloseReason::FirstExchangeTimeout => {
                DisconnectReason::PingTimeout
            }
            CloseReason::BufferFull => DisconnectReason::SlowClient,
            CloseReason::ForcedClose | CloseReason::Upper(_) => DisconnectReason::ForcedClose,
        }
    }

    /// Whether a connection that ended this way may be recovered.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ForcedClose
        )
    }
}

/// Why an emit-with-ack got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No answer within the timeout.
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected")]
    Disconnected,
    /// The packet could not be queued.
    #[error("send failed: {0}")]
    Send(#[from] SendError),
}

/// Typed per-socket data, one value per type.
#[derive(Default)]
pub struct Extensions(Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>);

impl Extensions {
    /// Stores a value, replacing any of the same type.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) {
        self.0.lock().insert(TypeId::of::<T>(), Box::new(value));
    }
    /// A clone of the value of type `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self) -> Option<T> {
        self.0
            .lock()
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
    }
    /// Removes the value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<T> {
        self.0
            .lock()
            .remove(&TypeId::of::<T>())
            .and_then(|b| b.downcast::<T>().ok())
            .map(|b| *b)
    }
}

/// The answer owed to a client's event that carried an ack id.
pub struct AckSender {
    socket: Arc<Socket>,
    id: u64,
}

impl AckSender {
    /// Sends the acknowledgement (binary attachments make it a BINARY_ACK).
    pub fn send(self, payload: Payload) -> Result<(), SendError> {
        let ns = &self.socket.ns;
        let enc = ns.parser().encode_ack(ns.name(), self.id, &payload);
        self.socket.report_sent(None, &enc.frames);
        self.socket.conn.send_many(&enc.frames)
    }
}

/// One client's membership of one namespace.
pub struct Socket {
    id: Arc<str>,
    ns: Arc<Namespace>,
    conn: Arc<Connection>,
    conn_state: Weak<ConnState>,
    auth: Value,
    handlers: RwLock<HashMap<String, EventHandler>>,
    any: RwLock<Option<AnyHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    acks: Mutex<HashMap<u64, oneshot::Sender<Payload>>>,
    rooms: Mutex<HashSet<Room>>,
    data: Arc<Extensions>,
    connected: AtomicBool,
    pid: Option<Arc<str>>,
    recovered: bool,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.ns.name())
            .finish()
    }
}

pub(crate) struct SocketInit {
    pub id: Arc<str>,
    pub ns: Arc<Namespace>,
    pub conn: Arc<Connection>,
    pub conn_state: Weak<ConnState>,
    pub auth: Value,
    pub data: Arc<Extensions>,
    pub pid: Option<Arc<str>>,
    pub recovered: bool,
}

impl Socket {
    pub(crate) fn new(init: SocketInit) -> Socket {
        Socket {
            id: init.id,
            ns: init.ns,
            conn: init.conn,
            conn_state: init.conn_state,
            auth: init.auth,
            handlers: RwLock::new(HashMap::new()),
            any: RwLock::new(None),
            on_disconnect: Mutex::new(Vec::new()),
            acks: Mutex::new(HashMap::new()),
            rooms: Mutex::new(HashSet::new()),
            data: init.data,
            connected: AtomicBool::new(false),
            pid: init.pid,
            recovered: init.recovered,
        }
    }

    /// The socket id (distinct from the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The namespace.
    pub fn ns(&self) -> &Arc<Namespace> {
        &self.ns
    }

    /// The CONNECT payload (`{}` when the client sent none).
    pub fn auth(&self) -> &Value {
        &self.auth
    }

    /// The HTTP request that opened the underlying connection.
    pub fn handshake(&self) -> &HandshakeInfo {
        self.conn.handshake()
    }

    /// The transport the connection uses now: `polling` or `websocket`.
    pub fn transport(&self) -> &'static str {
        match self.conn.transport() {
            crate::engine::TransportKind::Polling => "polling",
            crate::engine::TransportKind::WebSocket => "websocket",
        }
    }

    /// The underlying Engine.IO connection.
    pub fn conn(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Typed per-socket data.
    pub fn data(&self) -> &Arc<Extensions> {
        &self.data
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    /// The private id a client presents to recover this socket (recovery on).
    pub(crate) fn pid(&self) -> Option<&Arc<str>> {
        self.pid.as_ref()
    }

    /// Whether this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Registers the handler of `event` (replacing any previous one).
    pub fn on<F>(&self, event: &str, f: F)
    where
        F: Fn(&Arc<Socket>, Payload, Option<AckSender>) + Send + Sync + 'static,
    {
        self.handlers.write().insert(event.to_string(), Arc::new(f));
    }

    /// Registers a handler for events with no handler of their own.
    pub fn on_any<F>(&self, f: F)
    where
        F: Fn(&Arc<Socket>, &str, Payload, Option<AckSender>) + Send + Sync + 'static,
    {
        *self.any.write() = Some(Arc::new(f));
    }

    /// Registers a handler called once when the socket disconnects.
    pub fn on_disconnect<F>(&self, f: F)
    where
        F: FnOnce(&Arc<Socket>, DisconnectReason) + Send + 'static,
    {
        self.on_disconnect.lock().push(Box::new(f));
    }

    /// Sends an event to this client.
    pub fn emit(self: &Arc<Self>, event: &str, payload: &Payload) -> Result<(), SendError> {
        if self.ns.recovery().is_some() {
            // Through the socket's own room, so that the packet is kept for recovery.
            self.ns.to_rooms(vec![self.id.clone()]).emit(event, payload);
            return if self.connected() {
                Ok(())
            } else {
                Err(SendError::Closed)
            };
        }
        let enc = self
            .ns
            .parser()
            .encode_event(self.ns.name(), event, payload, None, None);
        self.report_sent(Some((event, payload)), &enc.frames);
        self.conn.send_many(&enc.frames)
    }

    /// Tells the observer, if any, of a packet sent to this socket alone.
    fn report_sent(self: &Arc<Self>, event: Option<(&str, &Payload)>, frames: &[Frame]) {
        let Some(o) = self.ns.observer() else { return };
        o.packets_sent(1, frames.iter().map(Frame::len).sum());
        if let Some((event, payload)) = event {
            if o.wants_events(self.ns.name()) {
                o.event_sent(self, event, payload);
            }
        }
    }

    /// Sends an event and waits for the client's acknowledgement.
    pub async fn emit_with_ack(
        self: &Arc<Self>,
        event: &str,
        payload: &Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let id = self.ns.next_ack_id();
        let rx = self.expect_ack(id);
        let enc = self
            .ns
            .parser()
            .encode_event(self.ns.name(), event, payload, Some(id), None);
        self.report_sent(Some((event, payload)), &enc.frames);
        if let Err(e) = self.conn.send_many(&enc.frames) {
            self.forget_ack(id);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.forget_ack(id);
                Err(AckError::Timeout)
            }
        }
    }

    /// Registers ack `id` as awaited: the client's ACK with this id resolves
    /// the receiver; a disconnect drops it.
    pub(crate) fn expect_ack(&self, id: u64) -> oneshot::Receiver<Payload> {
        let (tx, rx) = oneshot::channel();
        self.acks.lock().insert(id, tx);
        rx
    }

    /// Stops waiting for ack `id`.
    pub(crate) fn forget_ack(&self, id: u64) {
        self.acks.lock().remove(&id);
    }

    /// Joins a room (no effect once the socket has disconnected).
    pub fn join(self: &Arc<Self>, room: &str) {
        let room: Room = room.into();
        // The socket's room set stays locked while the adapter is updated,
        // so a concurrent disconnect (which drains this set under the same
        // lock) always sees, and undoes, the join. Lock order: this set,
        // then the adapter's shard locks.
        let mut rooms = self.rooms.lock();
        if self.connected() && rooms.insert(room.clone()) {
            self.ns.adapter().add_all(self, std::slice::from_ref(&room));
            drop(rooms);
            if let Some(o) = self.ns.observer() {
                o.room_joined(self, &room);
            }
        }
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        let mut rooms = self.rooms.lock();
        if rooms.remove(room) {
            self.ns.adapter().del(&self.id, room);
            drop(rooms);
            if let Some(o) = self.ns.observer() {
                o.room_left(self, room);
            }
        }
    }

    /// The rooms this socket is in (its own id included).
    pub fn rooms(&self) -> Vec<Room> {
        self.rooms.lock().iter().cloned().collect()
    }

    /// A broadcast to `room` from this socket (the socket itself excluded).
    pub fn to(self: &Arc<Self>, room: &str) -> BroadcastOperator {
        self.ns.to(room).except_room(self.id.clone())
    }

    /// A broadcast to every socket of the namespace but this one.
    pub fn broadcast(self: &Arc<Self>) -> BroadcastOperator {
        self.ns.broadcast().except_room(self.id.clone())
    }

    /// Disconnects this socket from its namespace (the client sees
    /// `io server disconnect`); the connection stays open for other namespaces.
    pub fn disconnect(self: &Arc<Self>) {
        if !self.connected() {
            return;
        }
        let _ = self.conn.send(self.ns.parser().encode_control(
            PacketKind::Disconnect,
            self.ns.name(),
            None,
        ));
        if let Some(state) = self.conn_state.upgrade() {
            state.remove_ns(self.ns.name());
        }
        self.closed(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Handles a packet for this socket, in arrival order.
    pub(crate) fn on_packet(self: &Arc<Self>, packet: Packet) {
        match packet.kind {
            PacketKind::Event | PacketKind::BinaryEvent => {
                let name = packet.event_name().unwrap_or_default();
                let id = packet.id;
                let payload = packet.into_payload();
                if let Some(o) = self.ns.observer() {
                    if o.wants_events(self.ns.name()) {
                        o.event_received(self, &name, &payload);
                    }
                }
                let ack = id.map(|id| AckSender {
                    socket: self.clone(),
                    id,
                });
                let own = self.handlers.read().get(&name).cloned();
                let handler = own.or_else(|| self.ns.shared_handler(&name));
                if let Some(h) = handler {
                    h(self, payload, ack);
                } else {
                    // Cloned out first: the handler may disconnect the
                    // socket, which clears `any` under its write lock.
                    let any = self.any.read().clone();
                    if let Some(any) = any {
                        any(self, &name, payload, ack);
                    }
                }
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                let Some(id) = packet.id else { return };
                let tx = self.acks.lock().remove(&id);
                if let Some(tx) = tx {
                    let _ = tx.send(packet.into_payload());
                }
            }
            PacketKind::Disconnect => {
                if let Some(state) = self.conn_state.upgrade() {
                    state.remove_ns(self.ns.name());
                }
                self.closed(DisconnectReason::ClientNamespaceDisconnect);
            }
            PacketKind::Connect | PacketKind::ConnectError => {}
        }
    }

    /// The session to keep for recovery, with `rooms` (none when recovery
    /// is off).
    pub(crate) fn session(&self, rooms: Vec<Room>) -> Option<Session> {
        self.ns.recovery()?;
        Some(Session {
            pid: self.pid.clone()?,
            sid: self.id.clone(),
            rooms,
            data: self.data.clone(),
        })
    }

    /// Tears the socket down once: leaves every room, fails pending acks,
    /// keeps the session for recovery when allowed, runs disconnect handlers.
    pub(crate) fn closed(self: &Arc<Self>, reason: DisconnectReason) {
        if !self.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        self.ns.stats().disconnects[super::stats::disconnect_index(reason)].inc();
        self.ns.remove_socket(&self.id);
        let rooms: Vec<Room> = {
            let mut set = self.rooms.lock();
            let rooms: Vec<Room> = set.drain().collect();
            self.ns.adapter().del_all(&self.id, &rooms);
            rooms
        };
        self.acks.lock().clear();
        if let Some(o) = self.ns.observer() {
            o.socket_disconnected(self, reason, &rooms);
        }
        if reason.is_recoverable() {
            if let Some(session) = self.session(rooms) {
                self.ns.adapter().persist_session(session);
            }
        }
        let handlers: Vec<DisconnectHandler> = std::mem::take(&mut *self.on_disconnect.lock());
        for h in handlers {
            h(self, reason);
        }
        self.handlers.write().clear();
        *self.any.write() = None;
    }
}
