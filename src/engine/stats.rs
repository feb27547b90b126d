//! The engine's own counters: what `/metrics` reports of Engine.IO
//! (handshakes, upgrades, closes by reason, packets and bytes each way,
//! direct against queued writes, drops, delivery latency, queue depth).
//!
//! The engine only counts; it knows nothing of Prometheus. Every field is a
//! sharded relaxed [`Counter`] or [`Histogram`] (see [`crate::util::counter`]),
//! so counting on the send path is one relaxed add on the thread's own
//! cache line. Counts are per write or per batch where possible: a
//! broadcast's per-recipient cost is only the direct write's counter add
//! (next to its system call) or nothing (queued frames are counted when the
//! connection's task writes its batch). A collector above reads the
//! accessors at scrape time.

use std::time::Instant;

use super::error::CloseReason;
use super::session::TransportKind;
use crate::util::counter::{Counter, Histogram};

/// Label values of the close reasons, in [`close_index`] order.
pub const CLOSE_REASONS: [&str; 10] = [
    "client_close",
    "transport_close",
    "transport_error",
    "parse_error",
    "ping_timeout",
    "forced_close",
    "buffer_full",
    "payload_too_large",
    "upper_layer",
    "first_exchange_timeout",
];

/// The index of `reason` in [`CLOSE_REASONS`].
pub fn close_index(reason: &CloseReason) -> usize {
    match reason {
        CloseReason::ClientClose => 0,
        CloseReason::TransportClose => 1,
        CloseReason::TransportError(_) => 2,
        CloseReason::ParseError => 3,
        CloseReason::PingTimeout => 4,
        CloseReason::ForcedClose => 5,
        CloseReason::BufferFull => 6,
        CloseReason::PayloadTooLarge => 7,
        CloseReason::Upper(_) => 8,
        CloseReason::FirstExchangeTimeout => 9,
    }
}

/// Label values of the transports, in [`transport_index`] order.
pub const TRANSPORTS: [&str; 2] = ["polling", "websocket"];

/// The index of `t` in [`TRANSPORTS`].
pub fn transport_index(t: TransportKind) -> usize {
    match t {
        TransportKind::Polling => 0,
        TransportKind::WebSocket => 1,
    }
}

/// Packets and bytes through one transport in one direction.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Engine.IO packets.
    pub packets: Counter,
    /// Bytes: WebSocket frames as written or read (headers included), or
    /// polling bodies.
    pub bytes: Counter,
}

/// The Engine.IO counters of one engine (read them through
/// [`super::Engine::stats`]).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Sessions opened, by transport of the handshake ([`TRANSPORTS`]).
    pub handshakes: [Counter; 2],
    /// Polling sessions moved to WebSocket.
    pub upgrades: Counter,
    /// Sessions ended, by reason ([`CLOSE_REASONS`]).
    pub closes: [Counter; CLOSE_REASONS.len()],
    /// Received from clients, by transport.
    pub received: [Traffic; 2],
    /// Sent to clients over polling.
    pub polling_sent: Traffic,
    /// Bytes written to WebSockets (the packets are `direct_frames` +
    /// `queued_frames`: see [`EngineStats::sent_packets`]).
    pub websocket_sent_bytes: Counter,
    /// Frames written to a WebSocket by their sender (direct writes).
    pub direct_frames: Counter,
    /// Frames written to a WebSocket by its connection's task from the queue.
    pub queued_frames: Counter,
    /// Volatile packets dropped because the connection could not take them.
    pub volatile_dropped: Counter,
    /// Packets refused by a full queue (under either overflow policy; under
    /// `disconnect` the session closes as `buffer_full`).
    pub overflow_dropped: Counter,
    /// Microseconds from a packet's encoding to its write on the socket,
    /// sampled once per write (the oldest packet of the write).
    pub delivery_latency_us: Histogram,
    /// Packets taken from a session's queue per write (at each flush).
    pub queue_depth: Histogram,
}

impl EngineStats {
    /// Packets written on `transport` (an index into [`TRANSPORTS`]).
    pub fn sent_packets(&self, transport: usize) -> u64 {
        match transport {
            0 => self.polling_sent.packets.get(),
            _ => self.direct_frames.get() + self.queued_frames.get(),
        }
    }

    /// Bytes written on `transport`.
    pub fn sent_bytes(&self, transport: usize) -> u64 {
        match transport {
            0 => self.polling_sent.bytes.get(),
            _ => self.websocket_sent_bytes.get(),
        }
    }

    /// Records that `frames` queued packets, `bytes` long, were taken from
    /// a session's queue to be written on `transport` (an index into
    /// [`TRANSPORTS`]), the oldest encoded at `oldest`.
    pub(crate) fn wrote_queued(
        &self,
        transport: usize,
        frames: usize,
        bytes: usize,
        oldest: Instant,
    ) {
        if transport == 1 {
            self.queued_frames.add(frames as u64);
            self.websocket_sent_bytes.add(bytes as u64);
        } else {
            self.polling_sent.packets.add(frames as u64);
            self.polling_sent.bytes.add(bytes as u64);
        }
        self.queue_depth.observe(frames as u64);
        self.delivery_latency_us
            .observe(oldest.elapsed().as_micros() as u64);
    }

    /// Records a direct write (by the sender) of `frames` whole packets and
    /// `bytes` bytes at `now`, the first packet encoded at `oldest`.
    pub(crate) fn wrote_direct(&self, frames: usize, bytes: usize, oldest: Instant, now: Instant) {
        self.direct_frames.add(frames as u64);
        self.websocket_sent_bytes.add(bytes as u64);
        self.delivery_latency_us
            .observe(now.saturating_duration_since(oldest).as_micros() as u64);
    }
}
