//! Optional observers of what happens in the Socket.IO layer: connections
//! opening, upgrading and closing, sockets connecting and disconnecting,
//! room joins and leaves, events in and out, and packet counts.
//!
//! Why a trait of hooks rather than an event stream: a server without an
//! observer (the default) pays one predictable branch on an `Option` at each
//! hook and nothing else; in particular the broadcast loop is untouched (a
//! broadcast reports its totals once, after the loop, never per recipient,
//! unless the observer asks for per-socket events with
//! [`Observer::wants_events`]). The observer decides what to do with a hook
//! (count, queue, ignore); it must not block.
//!
//! Hooks are called with no lock of this layer held (a join is reported
//! after the socket's room set is released, a broadcast after its loop),
//! so an observer may call back into the server, e.g. broadcast to a
//! namespace of its own (the `admin_ui` module does so through a task).
//!
//! Set with [`SocketIoConfigBuilder::observer`](super::SocketIoConfigBuilder::observer).

use std::sync::Arc;

use super::packet::Payload;
use super::socket::{DisconnectReason, Socket};
use crate::engine::{CloseReason, Connection};

/// What an observer is told. Every method defaults to doing nothing.
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// An Engine.IO connection opened (before any namespace is joined).
    fn connection_opened(&self, _conn: &Arc<Connection>) {}

    /// A connection moved from long-polling to WebSocket.
    fn connection_upgraded(&self, _conn: &Arc<Connection>) {}

    /// A connection closed (its sockets are disconnected right after).
    fn connection_closed(&self, _conn: &Arc<Connection>, _reason: &CloseReason) {}

    /// An Engine.IO message of `bytes` bytes arrived.
    fn message_received(&self, _bytes: usize) {}

    /// `packets` Socket.IO packets (events and acks) of `bytes` bytes in all
    /// were queued for clients (a broadcast reports its recipients times its
    /// size, once).
    fn packets_sent(&self, _packets: usize, _bytes: usize) {}

    /// A socket connected (it is in its own room; the connection handler
    /// runs next).
    fn socket_connected(&self, _socket: &Arc<Socket>) {}

    /// A socket disconnected; `rooms` are the rooms it was in.
    fn socket_disconnected(
        &self,
        _socket: &Arc<Socket>,
        _reason: DisconnectReason,
        _rooms: &[Arc<str>],
    ) {
    }

    /// A socket joined `room`.
    fn room_joined(&self, _socket: &Socket, _room: &str) {}

    /// A socket left `room` (not reported for the rooms it leaves by
    /// disconnecting: see [`Observer::socket_disconnected`]).
    fn room_left(&self, _socket: &Socket, _room: &str) {}

    /// Whether [`Observer::event_received`] and [`Observer::event_sent`]
    /// should be called for namespace `ns` (default false: they cost a
    /// pass over a broadcast's recipients).
    fn wants_events(&self, _ns: &str) -> bool {
        false
    }

    /// A client sent `event` (only when [`Observer::wants_events`]).
    fn event_received(&self, _socket: &Arc<Socket>, _event: &str, _payload: &Payload) {}

    /// `event` was sent to a socket, alone or by a broadcast (only when
    /// [`Observer::wants_events`]).
    fn event_sent(&self, _socket: &Arc<Socket>, _event: &str, _payload: &Payload) {}
}

/// The observer of a server, if any (`None`: every hook is one branch).
pub type ObserverRef = Option<Arc<dyn Observer>>;

/// Several observers as one: each hook goes to every observer, in the order
/// they were set (per-socket events only to those that want them).
#[derive(Debug)]
pub(crate) struct Fanout(pub(crate) Vec<Arc<dyn Observer>>);

impl Fanout {
    /// `first` and `then` as one observer (flattening earlier fan-outs is
    /// not needed: a chain of two-element fan-outs calls each hook once).
    pub(crate) fn of(first: Arc<dyn Observer>, then: Arc<dyn Observer>) -> Arc<dyn Observer> {
        Arc::new(Fanout(vec![first, then]))
    }
}

impl Observer for Fanout {
    fn connection_opened(&self, conn: &Arc<Connection>) {
        self.0.iter().for_each(|o| o.connection_opened(conn))
    }
    fn connection_upgraded(&self, conn: &Arc<Connection>) {
        self.0.iter().for_each(|o| o.connection_upgraded(conn))
    }
    fn connection_closed(&self, conn: &Arc<Connection>, reason: &CloseReason) {
        self.0
            .iter()
            .for_each(|o| o.connection_closed(conn, reason))
    }
    fn message_received(&self, bytes: usize) {
        self.0.iter().for_each(|o| o.message_received(bytes))
    }
    fn packets_sent(&self, packets: usize, bytes: usize) {
        self.0.iter().for_each(|o| o.packets_sent(packets, bytes))
    }
    fn socket_connected(&self, socket: &Arc<Socket>) {
        self.0.iter().for_each(|o| o.socket_connected(socket))
    }
    fn socket_disconnected(
        &self,
        socket: &Arc<Socket>,
        reason: DisconnectReason,
        rooms: &[Arc<str>],
    ) {
        self.0
            .iter()
            .for_each(|o| o.socket_disconnected(socket, reason, rooms))
    }
    fn room_joined(&self, socket: &Socket, room: &str) {
        self.0.iter().for_each(|o| o.room_joined(socket, room))
    }
    fn room_left(&self, socket: &Socket, room: &str) {
        self.0.iter().for_each(|o| o.room_left(socket, room))
    }
    fn wants_events(&self, ns: &str) -> bool {
        self.0.iter().any(|o| o.wants_events(ns))
    }
    fn event_received(&self, socket: &Arc<Socket>, event: &str, payload: &Payload) {
        let ns = socket.ns().name();
        for o in self.0.iter().filter(|o| o.wants_events(ns)) {
            o.event_received(socket, event, payload);
        }
    }
    fn event_sent(&self, socket: &Arc<Socket>, event: &str, payload: &Payload) {
        let ns = socket.ns().name();
        for o in self.0.iter().filter(|o| o.wants_events(ns)) {
            o.event_sent(socket, event, payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Count(AtomicUsize, bool);

    impl Observer for Count {
        fn message_received(&self, bytes: usize) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
        fn wants_events(&self, _ns: &str) -> bool {
            self.1
        }
    }

    #[test]
    fn a_fanout_tells_every_observer() {
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let both = Fanout::of(a.clone(), b.clone());
        both.message_received(3);
        assert_eq!(a.0.load(Ordering::Relaxed), 3);
        assert_eq!(b.0.load(Ordering::Relaxed), 3);
        assert!(!both.wants_events("/"));
        let eager = Arc::new(Count(AtomicUsize::new(0), true));
        assert!(Fanout::of(both, eager).wants_events("/"));
    }
}
