//! Broadcasts: a builder of [`BroadcastOptions`] over a namespace whose
//! every action is one call to the namespace's [`Adapter`](super::adapter::Adapter).

use std::sync::Arc;
use std::time::Duration;

use super::adapter::{AckAggregate, AdapterError, BroadcastOptions, EventPacket, FetchedSocket};
use super::namespace::Namespace;
use super::packet::Payload;
use super::rooms::Room;
use super::socket::Socket;

/// Selects sockets of a namespace (by rooms, minus excluded rooms) and acts on
/// them: emit, emit with acks, fetch, join, leave, disconnect.
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>, rooms: Vec<Room>) -> BroadcastOperator {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::to_rooms(rooms),
        }
    }

    /// Adds a target room.
    pub fn to(mut self, room: &str) -> Self {
        self.opts.rooms.push(room.into());
        self
    }

    /// Excludes the sockets in `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// Excludes the sockets in `room` (a socket's own room for "everyone but
    /// this socket").
    pub(crate) fn except_room(mut self, room: Room) -> Self {
        self.opts.except.push(room);
        self
    }

    /// Drops the packet for any socket that cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Reaches the sockets of this node only (no effect with the local adapter).
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Sets the timeout of [`BroadcastOperator::emit_with_ack`] (default 10 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.flags.timeout = Some(d);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits `event` to the selected sockets; returns how many were selected
    /// on this node.
    pub fn emit(&self, event: &str, payload: &Payload) -> usize {
        let packet = EventPacket { event, payload };
        let n = self.ns.adapter().broadcast(&packet, &self.opts);
        let stats = self.ns.stats();
        stats.broadcasts.inc();
        stats.deliveries.add(n as u64);
        n
    }

    /// Emits `event` with an ack request to every selected socket and waits
    /// for their replies (in no particular order) until all came or the
    /// timeout: the aggregate holds the replies received, and
    /// `Some(AckError::Timeout)` when some were missing.
    pub async fn emit_with_ack(&self, event: &str, payload: &Payload) -> AckAggregate {
        let packet = EventPacket { event, payload };
        self.ns
            .adapter()
            .broadcast_with_ack(&packet, &self.opts)
            .await
    }

    /// The selected sockets of this node (see
    /// [`BroadcastOperator::fetch_sockets`] for every node's).
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.ns.adapter().local().select(&self.opts)
    }

    /// The selected sockets, on every node.
    pub async fn fetch_sockets(&self) -> Result<Vec<FetchedSocket>, AdapterError> {
        self.ns.adapter().fetch_sockets(&self.opts).await
    }

    /// Makes every selected socket join `room`.
    pub fn join(&self, room: &str) {
        self.ns.adapter().add_sockets(&self.opts, &[room.into()]);
    }

    /// Makes every selected socket leave `room`.
    pub fn leave(&self, room: &str) {
        self.ns.adapter().del_sockets(&self.opts, &[room.into()]);
    }

    /// Disconnects every selected socket from the namespace.
    pub fn disconnect(&self) {
        self.ns.adapter().disconnect_sockets(&self.opts, false);
    }
}
