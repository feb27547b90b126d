//! The Socket.IO layer's own counters: sockets connected and refused,
//! disconnects by reason, connection state recoveries, broadcasts and
//! deliveries. Like the engine's ([`crate::engine::stats`]) they are
//! sharded relaxed counters read by a collector above at scrape time; a
//! broadcast costs two adds, whatever its number of recipients.

use super::socket::DisconnectReason;
use crate::util::counter::Counter;

/// Label values of the disconnect reasons, in [`disconnect_index`] order
/// (the reasons of SPEC.md §3.6).
pub const DISCONNECT_REASONS: [&str; 8] = [
    "client namespace disconnect",
    "server namespace disconnect",
    "transport close",
    "transport error",
    "ping timeout",
    "parse error",
    "forced close",
    "slow client",
];

/// The index of `r` in [`DISCONNECT_REASONS`].
pub fn disconnect_index(r: DisconnectReason) -> usize {
    match r {
        DisconnectReason::ClientNamespaceDisconnect => 0,
        DisconnectReason::ServerNamespaceDisconnect => 1,
        DisconnectReason::TransportClose => 2,
        DisconnectReason::TransportError => 3,
        DisconnectReason::PingTimeout => 4,
        DisconnectReason::ParseError => 5,
        DisconnectReason::ForcedClose => 6,
        DisconnectReason::SlowClient => 7,
    }
}

/// The Socket.IO counters of one server ([`super::SocketIo::stats`]).
#[derive(Debug, Default)]
pub struct SocketIoStats {
    /// Sockets connected (CONNECT answered with the socket id).
    pub connects: Counter,
    /// CONNECTs refused by a middleware (CONNECT_ERROR sent).
    pub connect_refusals: Counter,
    /// CONNECTs for a namespace that does not exist.
    pub invalid_namespace: Counter,
    /// Sockets disconnected, by reason ([`DISCONNECT_REASONS`]).
    pub disconnects: [Counter; 8],
    /// Recovery attempts (CONNECT with a `pid` and an `offset` on a
    /// namespace with recovery on): `[recovered, not recovered]`.
    pub recoveries: [Counter; 2],
    /// Broadcasts (emits through the adapter without ack, `socket.to(..)`
    /// and namespace-wide alike).
    pub broadcasts: Counter,
    /// Sockets of this node selected by those broadcasts (each got the
    /// packet queued or written, or refused it at its queue limits, which
    /// the engine counts).
    pub deliveries: Counter,
}

/// Rate limit of the layer's refusal log lines (20 a second).
static REFUSAL_LOG: std::sync::LazyLock<crate::util::counter::LogLimiter> =
    std::sync::LazyLock::new(|| {
        crate::util::counter::LogLimiter::new(std::time::Duration::from_secs(1), 20)
    });

/// Logs a refused CONNECT (rate-limited).
pub(crate) fn log_refusal(ns: &str, code: &str) {
    if let Some(suppressed) = REFUSAL_LOG.allow() {
        tracing::info!(ns, code, suppressed, "socket.io connect refused");
    }
}

/// Refusal log lines held back so far.
pub fn refusal_log_suppressed() -> u64 {
    REFUSAL_LOG.suppressed()
}

/// Sockets of one namespace on this node, by the transport of their
/// connection ([`super::SocketIo::connections_by_namespace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConnections {
    /// The namespace name.
    pub namespace: String,
    /// Sockets on long-polling connections.
    pub polling: usize,
    /// Sockets on WebSocket connections.
    pub websocket: usize,
}
