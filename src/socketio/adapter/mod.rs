//! The adapter seam: the one interface between a namespace and "where its
//! sockets are".
//!
//! A namespace never selects sockets, writes broadcasts or keeps recovery
//! state itself: it holds an `Arc<dyn Adapter>` and calls it. The default,
//! [`LocalAdapter`], is this node's sharded room registry, its socket map,
//! the encode-once broadcast loop and the connection state recovery store. A
//! cluster adapter (e.g. one speaking the `@socket.io/redis-adapter` wire)
//! wraps a `LocalAdapter` — every adapter returns it from
//! [`Adapter::local`] — publishes what it must to other nodes, and on receipt
//! of their messages calls the `LocalAdapter`'s "apply locally" methods
//! ([`LocalAdapter::broadcast`], [`LocalAdapter::send_with_ack`],
//! [`LocalAdapter::fetch`], [`LocalAdapter::add_sockets`], ...,
//! [`LocalAdapter::apply_server_side_emit`]). This is the shape of Node's
//! `socket.io-adapter` (the in-memory adapter owns the rooms and the
//! broadcast loop, cluster adapters extend it).
//!
//! Design choices:
//!
//! - [`BroadcastOptions`] is plain data with the serialized shape of the
//!   Redis wire's `opts` (`{rooms, except, flags}`), so it crosses a node
//!   boundary unchanged. "Everyone but this socket" is `except` holding the
//!   socket's own room (every socket is in the room named by its id).
//! - The broadcast input is the packet (event and payload, binary
//!   attachments included), not frames: a remote adapter publishes the
//!   packet; the local adapter encodes it once for this namespace.
//! - Sync where the work on this node is sync (membership, `broadcast`,
//!   session persist/restore, which a durable log on sled can also do
//!   synchronously); boxed futures where a remote adapter must wait for
//!   other nodes (`fetch_sockets`, `broadcast_with_ack`,
//!   `server_side_emit_with_ack`). The local adapter answers those with
//!   futures that need no other task. The plain broadcast costs one virtual
//!   call per broadcast and nothing per recipient.
//! - Dispatch is dynamic (`Arc<dyn Adapter>`, built per namespace by the
//!   [`AdapterFactory`] of the server configuration) rather than a generic
//!   parameter on every public type: one virtual call per operation, and the
//!   choice of adapter stays a runtime configuration.
//! - Every trait method but [`Adapter::local`] defaults to this node only, so
//!   a cluster adapter overrides just what crosses nodes.
//!
//! [`contract`] is the rule book any adapter must pass (run over real
//! connections by `tests/adapter_contract.rs` for the local adapter, and by
//! `tests/redis_adapter.rs` for [`redis`] with two nodes).
//!
//! [`redis`] is the cluster adapter over Redis, wire-compatible with npm
//! `@socket.io/redis-adapter`.

mod local;
mod options;
pub mod redis;

#[doc(hidden)]
pub mod contract;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::packet::{Parser, Payload};
use super::recovery::{RecoveryConfig, RecoveryLog};
use super::rooms::Room;
use super::socket::{AckError, Extensions, Socket};
use crate::engine::Frame;

pub use local::{LocalAcks, LocalAdapter, ServerAck, ServerEventHandler};
pub use options::{BroadcastFlags, BroadcastOptions};

pub use super::namespace::BoxFuture;

/// How long a broadcast with acks waits when its options set no timeout.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// An event to broadcast: its name and arguments (with binary attachments).
/// The namespace is the adapter's own.
#[derive(Debug, Clone, Copy)]
pub struct EventPacket<'a> {
    /// The event name.
    pub event: &'a str,
    /// The arguments.
    pub payload: &'a Payload,
}

/// The answers to a broadcast (or server-side emit) with acks: every
/// response received, and why some are missing, if any are.
#[derive(Debug, Default, PartialEq)]
pub struct AckAggregate {
    /// The responses received (local ones in selection order, then remote ones).
    pub responses: Vec<Payload>,
    /// `Some(AckError::Timeout)` when some answers were missing at the
    /// timeout; `Some(AckError::Disconnected)` when every other answer came
    /// but some sockets disconnected first.
    pub error: Option<AckError>,
}

impl AckAggregate {
    /// All responses, or the error if any answer is missing.
    pub fn into_result(self) -> Result<Vec<Payload>, AckError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.responses),
        }
    }
}

/// Why an adapter could not complete an operation across nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Other nodes did not all answer in time.
    #[error("timed out waiting for other nodes")]
    Timeout,
    /// The transport to other nodes failed.
    #[error("adapter transport: {0}")]
    Transport(String),
}

/// A socket as seen by [`Adapter::fetch_sockets`]: a socket of this node, or
/// the description another node sent of one of its sockets.
#[derive(Debug, Clone)]
pub enum FetchedSocket {
    /// A socket connected to this node.
    Local(Arc<Socket>),
    /// A socket connected to another node.
    Remote(RemoteSocket),
}

/// Another node's socket, as that node described it (the Redis wire's
/// `{id, handshake, rooms, data}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSocket {
    /// The socket id.
    pub id: Arc<str>,
    /// The handshake, as the remote node serialized it.
    pub handshake: Value,
    /// Its rooms (its own id included).
    pub rooms: Vec<Room>,
    /// Its data (see [`FetchedSocket::data_json`]).
    pub data: Value,
}

impl FetchedSocket {
    /// The socket id.
    pub fn id(&self) -> &str {
        match self {
            FetchedSocket::Local(s) => s.id(),
            FetchedSocket::Remote(r) => &r.id,
        }
    }

    /// The socket's rooms (its own id included).
    pub fn rooms(&self) -> Vec<Room> {
        match self {
            FetchedSocket::Local(s) => s.rooms(),
            FetchedSocket::Remote(r) => r.rooms.clone(),
        }
    }

    /// The socket's data as JSON: for a local socket, the `serde_json::Value`
    /// stored in its [`Extensions`] (the part of its data that can cross a
    /// node boundary); for a remote one, what its node sent.
    pub fn data_json(&self) -> Option<Value> {
        match self {
            FetchedSocket::Local(s) => s.data().get::<Value>(),
            FetchedSocket::Remote(r) => Some(r.data.clone()),
        }
    }

    /// The socket itself, when it is connected to this node.
    pub fn as_local(&self) -> Option<&Arc<Socket>> {
        match self {
            FetchedSocket::Local(s) => Some(s),
            FetchedSocket::Remote(_) => None,
        }
    }
}

/// A disconnected socket's state, kept for connection state recovery.
#[derive(Clone)]
pub struct Session {
    /// The private id the client presents to recover (`pid`).
    pub pid: Arc<str>,
    /// The socket id, given back on recovery.
    pub sid: Arc<str>,
    /// The socket's rooms (its own id included).
    pub rooms: Vec<Room>,
    /// The socket's data.
    pub data: Arc<Extensions>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("rooms", &self.rooms)
            .finish_non_exhaustive()
    }
}

/// A recovered session and the packets it missed, encoded for its namespace
/// in the order they were broadcast.
#[derive(Debug)]
pub struct Restored {
    /// The session.
    pub session: Session,
    /// The missed packets' frames, ready to queue.
    pub missed: Vec<Frame>,
    /// The sequence number `missed` was computed up to: packets after it
    /// are caught up by [`Adapter::resume`].
    pub upto: u64,
}

/// What an [`AdapterFactory`] gets to build one namespace's adapter.
#[derive(Debug, Clone, Copy)]
pub struct AdapterInit<'a> {
    /// The namespace name (`/` for the main namespace).
    pub namespace: &'a str,
    /// Connection state recovery settings, when enabled.
    pub recovery: Option<RecoveryConfig>,
    /// The durable recovery log, when one is configured (with `recovery`).
    pub recovery_log: Option<&'a RecoveryLog>,
    /// The server's packet format: what the adapter encodes broadcasts with.
    pub parser: Parser,
}

type Build = dyn Fn(&AdapterInit<'_>) -> Arc<dyn Adapter> + Send + Sync;

/// Builds the adapter of each namespace; set with
/// [`SocketIoConfigBuilder::adapter`](super::SocketIoConfigBuilder::adapter).
/// The default builds a [`LocalAdapter`].
#[derive(Clone)]
pub struct AdapterFactory(Arc<Build>);

impl AdapterFactory {
    /// A factory calling `f` for every namespace.
    pub fn new<F>(f: F) -> AdapterFactory
    where
        F: Fn(&AdapterInit<'_>) -> Arc<dyn Adapter> + Send + Sync + 'static,
    {
        AdapterFactory(Arc::new(f))
    }

    /// The factory of [`LocalAdapter`]s (this node only).
    pub fn local() -> AdapterFactory {
        AdapterFactory::new(|init| Arc::new(LocalAdapter::new(init)))
    }

    /// Builds the adapter of one namespace.
    pub fn build(&self, init: &AdapterInit<'_>) -> Arc<dyn Adapter> {
        (self.0)(init)
    }
}

impl Default for AdapterFactory {
    fn default() -> Self {
        AdapterFactory::local()
    }
}

impl std::fmt::Debug for AdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdapterFactory")
    }
}

/// Where a namespace's sockets are: membership, broadcasts, selections and
/// recovery state. See the [module docs](self).
///
/// Every method but [`Adapter::local`] defaults to this node only (the
/// [`LocalAdapter`]'s method of the same purpose).
///
/// Locks: [`Adapter::add_all`], [`Adapter::del`] and [`Adapter::del_all`]
/// are called with the socket's own room set locked (the order is that set,
/// then the adapter's locks), so they must not call back into the socket.
/// No other method is called with a lock held.
pub trait Adapter: Send + Sync + 'static {
    /// This node's sockets and rooms.
    fn local(&self) -> &LocalAdapter;

    /// Resolves once the adapter reaches the other nodes (a cluster adapter:
    /// subscribed to its channels), so that nothing sent to this namespace
    /// from then on is missed. At once for the local adapter.
    fn ready(&self) -> BoxFuture<()> {
        Box::pin(std::future::ready(()))
    }

    /// Adds `socket` to `rooms` (on this node: membership is where the
    /// socket is). Called by [`Socket::join`].
    fn add_all(&self, socket: &Arc<Socket>, rooms: &[Room]) {
        self.local().add_all(socket, rooms)
    }

    /// Removes socket `id` from `room`. Called by [`Socket::leave`].
    fn del(&self, id: &str, room: &str) {
        self.local().del(id, room)
    }

    /// Removes socket `id` from every room in `rooms` (all its rooms), when
    /// it disconnects.
    fn del_all(&self, id: &str, rooms: &[Room]) {
        self.local().del_all(id, rooms)
    }

    /// Sends `packet` to the selected sockets (the local ones encoded once);
    /// returns how many sockets of this node were selected.
    fn broadcast(&self, packet: &EventPacket<'_>, opts: &BroadcastOptions) -> usize {
        self.local().broadcast(packet, opts)
    }

    /// Sends `packet` with an ack request to the selected sockets and
    /// resolves with the responses once all came or at
    /// `opts.flags.timeout` (default [`DEFAULT_ACK_TIMEOUT`]). The packet is
    /// sent before this returns.
    fn broadcast_with_ack(
        &self,
        packet: &EventPacket<'_>,
        opts: &BroadcastOptions,
    ) -> BoxFuture<AckAggregate> {
        let acks = self.local().send_with_ack(packet, opts);
        let timeout = opts.flags.timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
        Box::pin(acks.collect(timeout))
    }

    /// The selected sockets.
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<FetchedSocket>, AdapterError>> {
        let found = self.local().fetch(opts);
        Box::pin(std::future::ready(Ok(found)))
    }

    /// Makes the selected sockets join `rooms`.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local().add_sockets(opts, rooms)
    }

    /// Makes the selected sockets leave `rooms`.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local().del_sockets(opts, rooms)
    }

    /// Disconnects the selected sockets from the namespace; with `close`,
    /// closes their whole connections instead.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.local().disconnect_sockets(opts, close)
    }

    /// Emits `packet` to the server-side handlers of the other nodes (not
    /// this one); returns how many other nodes it was sent to, when known.
    fn server_side_emit(&self, _packet: &EventPacket<'_>) -> usize {
        0
    }

    /// [`Adapter::server_side_emit`] with an ack: resolves with one response
    /// per other node, or at `timeout` with those received.
    fn server_side_emit_with_ack(
        &self,
        _packet: &EventPacket<'_>,
        _timeout: Duration,
    ) -> BoxFuture<AckAggregate> {
        Box::pin(std::future::ready(AckAggregate::default()))
    }

    /// Keeps the session of a socket that dropped, for recovery.
    fn persist_session(&self, session: Session) {
        self.local().persist_session(session)
    }

    /// Takes the session `pid` back if it is still recoverable from
    /// `offset` (the last packet offset the client saw), with the packets
    /// it missed; each session is restored at most once.
    fn restore_session(&self, pid: &str, offset: &str) -> Option<Restored> {
        self.local().restore_session(pid, offset)
    }

    /// Makes a restored socket join its `rooms` and queues `missed` plus
    /// whatever was broadcast to it after `upto` while it was being
    /// restored, so that no packet is lost, repeated or reordered between
    /// the restore and the join.
    fn resume(&self, socket: &Arc<Socket>, rooms: &[Room], missed: Vec<Frame>, upto: u64) {
        self.local().resume(socket, rooms, missed, upto)
    }

    /// Whether the adapter can reach what it needs (for a readiness check,
    /// `GET /api/ready`): a cluster adapter checks its connection to the
    /// other nodes (e.g. a Redis `PING`); this node alone is always ready.
    /// The caller bounds the wait.
    fn reachable(&self) -> BoxFuture<Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Adapter for LocalAdapter {
    fn local(&self) -> &LocalAdapter {
        self
    }
}
