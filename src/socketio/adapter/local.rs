//! The local adapter: this node's sockets, rooms, broadcast loop, recovery
//! store and server-side event handlers ([`LocalAdapter`] lists its state
//! and lock rules).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::{
    AckAggregate, AdapterInit, BroadcastOptions, EventPacket, FetchedSocket, Restored, Session,
};
use crate::engine::Frame;
use crate::socketio::observer::Observer;
use crate::socketio::packet::{Parser, Payload};
use crate::socketio::recovery::RecoveryStore;
use crate::socketio::rooms::{Members, Room, RoomRegistry};
use crate::socketio::socket::{AckError, Socket};
use crate::util::ShardedMap;

/// Handles an event emitted by another node with
/// [`Namespace::server_side_emit`](crate::socketio::Namespace::server_side_emit):
/// the arguments, and the ack to answer with when the emitter wants one.
pub type ServerEventHandler = Arc<dyn Fn(Payload, Option<ServerAck>) + Send + Sync>;

/// The answer owed to a server-side emit with an ack.
pub struct ServerAck(Box<dyn FnOnce(Payload) + Send>);

impl ServerAck {
    /// An ack that hands the answer to `f` (a cluster adapter publishes it).
    pub fn new(f: impl FnOnce(Payload) + Send + 'static) -> ServerAck {
        ServerAck(Box::new(f))
    }

    /// Answers.
    pub fn send(self, payload: Payload) {
        (self.0)(payload)
    }
}

/// Sockets excluded from a broadcast, resolved once per broadcast.
enum Excluded {
    Nobody,
    /// The members of a single small except room (typically a socket's own
    /// room): compared by identity, no set built.
    Few(Members<Arc<Socket>>),
    Set(HashSet<Arc<str>>),
}

/// Up to this many members of a single except room are scanned rather than
/// hashed.
const FEW: usize = 8;

impl Excluded {
    fn contains(&self, s: &Arc<Socket>) -> bool {
        match self {
            Excluded::Nobody => false,
            Excluded::Few(m) => m.iter().any(|x| x.id() == s.id()),
            Excluded::Set(set) => set.contains(s.id()),
        }
    }
}

/// This node's part of a namespace.
///
/// State and locks (each owned here, private, reached through methods):
///
/// - `sockets`: id -> socket, lock-sharded by id.
/// - `rooms`: room -> members, lock-sharded by room name
///   ([`RoomRegistry`]). A broadcast reads each room's members as an
///   immutable snapshot, so no shard lock is held while packets are queued
///   on the members (queueing takes each connection's own lock). Shard locks
///   are leaves: nothing else is taken while one is held.
/// - `recovery`: the recovery store (its packet log and session map each
///   have one mutex, leaves too; with a durable log it also writes through
///   to sled, which takes no lock of ours; its recovery gate is held by a
///   broadcast from store to last delivery and by `resume`, see there).
/// - `server_handlers`: event -> handler, read-mostly; the handler runs with
///   no lock held.
///
/// Callers may hold a socket's own room-set lock while calling
/// [`LocalAdapter::add_all`] / [`LocalAdapter::del`] (that is how
/// [`Socket::join`] keeps a join and a concurrent disconnect consistent):
/// the order is socket room set, then shard; never the reverse, since
/// nothing here calls back into a socket while a shard lock is held.
pub struct LocalAdapter {
    name: String,
    sockets: ShardedMap<Arc<str>, Arc<Socket>>,
    rooms: RoomRegistry<Arc<Socket>>,
    recovery: Option<RecoveryStore>,
    parser: Parser,
    ack_ids: AtomicU64,
    server_handlers: RwLock<HashMap<String, ServerEventHandler>>,
    /// Told of what broadcasts send (set once by the namespace; unset: one
    /// branch per broadcast).
    observer: OnceLock<Arc<dyn Observer>>,
}

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter")
            .field("namespace", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalAdapter {
    /// An empty adapter for the namespace in `init` (with a recovery store
    /// when recovery is enabled).
    pub fn new(init: &AdapterInit<'_>) -> LocalAdapter {
        LocalAdapter {
            name: init.namespace.to_string(),
            sockets: ShardedMap::new(64),
            rooms: RoomRegistry::new(64),
            recovery: init.recovery.map(|c| match init.recovery_log {
                Some(log) => RecoveryStore::durable(c, log, init.namespace),
                None => RecoveryStore::new(c),
            }),
            parser: init.parser,
            ack_ids: AtomicU64::new(0),
            server_handlers: RwLock::new(HashMap::new()),
            observer: OnceLock::new(),
        }
    }

    pub(crate) fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    /// Reports a broadcast of `frames` to `n` sockets of this node to the
    /// observer, if any: once for the totals, and per recipient only when
    /// the observer wants events of this namespace.
    #[inline]
    fn report_sent(
        &self,
        packet: &EventPacket<'_>,
        opts: &BroadcastOptions,
        n: usize,
        frames: &[Frame],
    ) {
        let Some(o) = self.observer.get() else { return };
        let bytes: usize = frames.iter().map(Frame::len).sum();
        o.packets_sent(n, n * bytes);
        if o.wants_events(&self.name) {
            self.for_each(opts, |s| o.event_sent(s, packet.event, packet.payload));
        }
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        &self.name
    }

    /// The room registry of this node.
    pub fn rooms(&self) -> &RoomRegistry<Arc<Socket>> {
        &self.rooms
    }

    /// A new ack id, unique within the namespace on this node.
    pub fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert_socket(&self, socket: Arc<Socket>) {
        self.sockets.insert(socket.id_arc().clone(), socket);
    }

    pub(crate) fn remove_socket(&self, id: &str) {
        self.sockets.remove(id);
    }

    /// The socket with this id, if connected to this node.
    pub fn socket(&self, id: &str) -> Option<Arc<Socket>> {
        self.sockets.get(id)
    }

    /// Every socket connected to this node (not a snapshot across shards).
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets.values()
    }

    /// Number of sockets connected to this node.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Adds `socket` to each of `rooms`.
    pub fn add_all(&self, socket: &Arc<Socket>, rooms: &[Room]) {
        for r in rooms {
            self.rooms.join(r, socket.id_arc(), socket.clone());
        }
    }

    /// Removes socket `id` from `room`.
    pub fn del(&self, id: &str, room: &str) {
        self.rooms.leave(room, id);
    }

    /// Removes socket `id` from each of `rooms`.
    pub fn del_all(&self, id: &str, rooms: &[Room]) {
        for r in rooms {
            self.rooms.leave(r, id);
        }
    }

    fn excluded(&self, except: &[Room]) -> Excluded {
        match except {
            [] => Excluded::Nobody,
            [room] => match self.rooms.members(room) {
                None => Excluded::Nobody,
                Some(m) if m.len() <= FEW => Excluded::Few(m),
                Some(m) => Excluded::Set(m.iter().map(|s| s.id_arc().clone()).collect()),
            },
            rooms => {
                let mut set = HashSet::new();
                for m in rooms.iter().filter_map(|r| self.rooms.members(r)) {
                    set.extend(m.iter().map(|s| s.id_arc().clone()));
                }
                Excluded::Set(set)
            }
        }
    }

    /// Calls `f` once for every selected socket of this node, reading room
    /// membership from snapshots so that no registry lock is held while `f`
    /// runs. One room or none: no set is built; several rooms: their union,
    /// each socket once.
    pub fn for_each(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Arc<Socket>)) {
        let excluded = self.excluded(&opts.except);
        match opts.rooms.as_slice() {
            [] => self
                .sockets
                .values()
                .iter()
                .filter(|s| !excluded.contains(s))
                .for_each(&mut f),
            [room] => {
                if let Some(m) = self.rooms.members(room) {
                    m.iter().filter(|s| !excluded.contains(s)).for_each(&mut f)
                }
            }
            rooms => {
                let mut seen: HashMap<Arc<str>, Arc<Socket>> = HashMap::new();
                for m in rooms.iter().filter_map(|r| self.rooms.members(r)) {
                    for s in m.iter() {
                        seen.entry(s.id_arc().clone()).or_insert_with(|| s.clone());
                    }
                }
                seen.values()
                    .filter(|s| !excluded.contains(s))
                    .for_each(&mut f)
            }
        }
    }

    /// The selected sockets of this node.
    pub fn select(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        let mut v = Vec::new();
        self.for_each(opts, |s| v.push(s.clone()));
        v
    }

    /// Encodes `packet` once (with a recovery offset when recovery is on and
    /// the broadcast is not volatile, keeping it for recovery) and queues the
    /// same frames on every selected socket of this node; returns how many
    /// were selected.
    pub fn broadcast(&self, packet: &EventPacket<'_>, opts: &BroadcastOptions) -> usize {
        let volatile = opts.flags.volatile;
        let offset = match (volatile, &self.recovery) {
            (false, Some(rec)) => Some(rec.next_offset()),
            _ => None,
        };
        let enc = self.parser.encode_event(
            &self.name,
            packet.event,
            packet.payload,
            None,
            offset.as_ref().map(|(_, s)| s.as_str()),
        );
        // With recovery on, a broadcast holds the recovery gate from its
        // store to its last delivery (see `resume`); without, no lock.
        let gate = match (offset, &self.recovery) {
            (Some((seq, _)), Some(rec)) => {
                let gate = rec.broadcasting();
                rec.store(
                    seq,
                    opts.rooms.clone(),
                    opts.except.clone(),
                    enc.frames.clone(),
                );
                Some(gate)
            }
            _ => None,
        };
        let frames = &enc.frames;
        let mut n = 0;
        self.for_each(opts, |s| {
            n += 1;
            if volatile {
                s.conn().send_volatile(frames);
            } else {
                let _ = s.conn().send_many(frames);
            }
        });
        drop(gate);
        self.report_sent(packet, opts, n, frames);
        n
    }

    /// Sends `packet` with an ack request to every selected socket of this
    /// node; the returned [`LocalAcks`] waits for their answers.
    pub fn send_with_ack(&self, packet: &EventPacket<'_>, opts: &BroadcastOptions) -> LocalAcks {
        let id = self.next_ack_id();
        let enc =
            self.parser
                .encode_event(&self.name, packet.event, packet.payload, Some(id), None);
        let mut waiting = Vec::new();
        self.for_each(opts, |s| {
            let rx = s.expect_ack(id);
            if s.conn().send_many(&enc.frames).is_ok() {
                waiting.push((s.clone(), rx));
            } else {
                s.forget_ack(id);
            }
        });
        self.report_sent(packet, opts, waiting.len(), &enc.frames);
        LocalAcks { id, waiting }
    }

    /// The selected sockets of this node, for [`super::Adapter::fetch_sockets`].
    pub fn fetch(&self, opts: &BroadcastOptions) -> Vec<FetchedSocket> {
        let mut v = Vec::new();
        self.for_each(opts, |s| v.push(FetchedSocket::Local(s.clone())));
        v
    }

    /// Makes the selected sockets of this node join `rooms`.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.select(opts) {
            rooms.iter().for_each(|r| s.join(r));
        }
    }

    /// Makes the selected sockets of this node leave `rooms`.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.select(opts) {
            rooms.iter().for_each(|r| s.leave(r));
        }
    }

    /// Disconnects the selected sockets of this node (the client sees
    /// `io server disconnect`); with `close`, closes their connections.
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        for s in self.select(opts) {
            if close {
                s.conn().close();
            } else {
                s.disconnect();
            }
        }
    }

    /// Registers the handler of server-side event `event` (replacing any).
    pub fn on_server_event(&self, event: &str, handler: ServerEventHandler) {
        self.server_handlers
            .write()
            .insert(event.to_string(), handler);
    }

    /// Runs this node's handler of a server-side event received from
    /// another node; returns whether there was one (without one, `ack` is
    /// dropped unanswered).
    pub fn apply_server_side_emit(
        &self,
        event: &str,
        payload: Payload,
        ack: Option<ServerAck>,
    ) -> bool {
        let handler = self.server_handlers.read().get(event).cloned();
        match handler {
            Some(h) => {
                h(payload, ack);
                true
            }
            None => false,
        }
    }

    /// Keeps `session` for recovery (nothing when recovery is off).
    pub fn persist_session(&self, session: Session) {
        if let Some(rec) = &self.recovery {
            rec.save_session(session);
        }
    }

    /// Joins a restored socket to `rooms` and queues what it missed (see
    /// [`super::Adapter::resume`]); without recovery, just joins and queues.
    pub fn resume(&self, socket: &Arc<Socket>, rooms: &[Room], missed: Vec<Frame>, upto: u64) {
        let join = || rooms.iter().for_each(|r| socket.join(r));
        let send = |frames: Vec<Frame>| {
            if !frames.is_empty() {
                let _ = socket.conn().send_many(&frames);
            }
        };
        match &self.recovery {
            Some(rec) => rec.resume(rooms, missed, upto, join, send),
            None => {
                join();
                send(missed);
            }
        }
    }

    /// Takes session `pid` back with the packets it missed after `offset`.
    pub fn restore_session(&self, pid: &str, offset: &str) -> Option<Restored> {
        self.recovery.as_ref()?.restore(pid, offset)
    }
}

/// Acks awaited from this node's sockets after [`LocalAdapter::send_with_ack`].
#[must_use = "the acks are only collected when awaited"]
pub struct LocalAcks {
    id: u64,
    waiting: Vec<(Arc<Socket>, oneshot::Receiver<Payload>)>,
}

impl LocalAcks {
    /// How many sockets were sent the packet (and owe an answer).
    pub fn expected(&self) -> usize {
        self.waiting.len()
    }

    /// Calls `f` with each answer as it comes (in arrival order) until all
    /// came or `timeout`; the missing acks are then forgotten. A cluster
    /// adapter relays each answer to the node that asked, as it comes.
    pub async fn each(self, timeout: Duration, mut f: impl FnMut(Payload)) {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let sockets: Vec<Arc<Socket>> = self.waiting.iter().map(|(s, _)| s.clone()).collect();
        let mut pending: FuturesUnordered<_> = self.waiting.into_iter().map(|(_, rx)| rx).collect();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = pending.next() => match next {
                    Some(Ok(p)) => f(p),
                    Some(Err(_)) => {}
                    None => return,
                },
                _ = &mut deadline => break,
            }
        }
        for s in sockets {
            s.forget_ack(self.id);
        }
    }

    /// Waits up to `timeout` for every answer. At the timeout the missing
    /// acks are forgotten and the aggregate holds those received with
    /// [`AckError::Timeout`].
    pub async fn collect(self, timeout: Duration) -> AckAggregate {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = AckAggregate {
            responses: Vec::with_capacity(self.waiting.len()),
            error: None,
        };
        let mut timed_out = false;
        for (s, rx) in self.waiting {
            // `timeout_at` polls the receiver first, so answers already in
            // are taken even once the deadline has passed.
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(p)) => out.responses.push(p),
                Ok(Err(_)) => {
                    out.error.get_or_insert(AckError::Disconnected);
                }
                Err(_) => {
                    timed_out = true;
                    s.forget_ack(self.id);
                }
            }
        }
        if timed_out {
            out.error = Some(AckError::Timeout);
        }
        out
    }
}
