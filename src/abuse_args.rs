//! The `serve` flags of the engine and Socket.IO abuse limits (SPEC.md
//! §1.1, §2.16, §3.14): a block of its own so the binary's argument list
//! stays readable; each flag also reads the environment variable named
//! after it.

use std::time::Duration;

use clap::Args;
use rollcall::engine::{AbuseLimits, WsOrigins};
use rollcall::http::{ConnLimits, Rate};
use rollcall::socketio::EventLimits;

/// Abuse limits of the HTTP, Engine.IO and Socket.IO layers.
#[derive(Args, Debug, Clone)]
pub struct AbuseArgs {
    /// New TCP connections per second per address (0: unlimited).
    #[arg(long, env = "CONN_RATE", default_value_t = 100.0)]
    conn_rate: f64,
    /// Burst of new TCP connections per address.
    #[arg(long, env = "CONN_BURST", default_value_t = 500.0)]
    conn_burst: f64,
    /// Open TCP connections in all.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 20_000)]
    max_connections: usize,
    /// Time to receive a request's headers, in ms.
    #[arg(long, env = "HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Engine.IO handshakes per second per address (0: unlimited).
    #[arg(long, env = "HANDSHAKE_RATE", default_value_t = 50.0)]
    handshake_rate: f64,
    /// Burst of Engine.IO handshakes per address.
    #[arg(long, env = "HANDSHAKE_BURST", default_value_t = 200.0)]
    handshake_burst: f64,
    /// Open Engine.IO sessions in all.
    #[arg(long, env = "MAX_SESSIONS", default_value_t = 20_000)]
    max_sessions: usize,
    /// A polling session with no request after its handshake closes after this many ms.
    #[arg(long, env = "FIRST_EXCHANGE_MS", default_value_t = 10_000)]
    first_exchange_ms: u64,
    /// Bytes of URI and selected headers a session keeps from its handshake.
    #[arg(long, env = "HANDSHAKE_BYTES", default_value_t = 8192)]
    handshake_bytes: usize,
    /// Time a polling POST body may take beyond its size at BODY_MIN_RATE, in ms.
    #[arg(long, env = "BODY_TIMEOUT_MS", default_value_t = 10_000)]
    body_timeout_ms: u64,
    /// Rate floor of a polling POST body, bytes per second.
    #[arg(long, env = "BODY_MIN_RATE", default_value_t = 16_384)]
    body_min_rate: u64,
    /// Origins that may open a WebSocket: empty = the CORS origins (CLIENT_URL), `*` = any, else a comma-separated list.
    #[arg(long, env = "WS_ORIGINS", default_value = "")]
    ws_origins: String,
    /// Largest Socket.IO text packet in bytes, checked before parsing.
    #[arg(long, env = "MAX_EVENT_BYTES", default_value_t = 1 << 20)]
    max_event_bytes: usize,
    /// Time a binary packet's attachments may take to arrive, in ms.
    #[arg(long, env = "BINARY_DEADLINE_MS", default_value_t = 10_000)]
    binary_deadline_ms: u64,
    /// Engine.IO messages per second per connection (0: unlimited).
    #[arg(long, env = "PACKET_RATE", default_value_t = 1000.0)]
    packet_rate: f64,
    /// Burst of Engine.IO messages per connection.
    #[arg(long, env = "PACKET_BURST", default_value_t = 2000.0)]
    packet_burst: f64,
}

impl AbuseArgs {
    /// The engine's and the Socket.IO layer's limits.
    pub fn limits(&self) -> (AbuseLimits, EventLimits) {
        let engine = AbuseLimits {
            connections: ConnLimits {
                per_addr: rate(self.conn_rate, self.conn_burst),
                max_connections: self.max_connections.max(1),
                header_read_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            },
            handshakes_per_addr: rate(self.handshake_rate, self.handshake_burst),
            max_sessions: self.max_sessions.max(1),
            first_exchange_timeout: Duration::from_millis(self.first_exchange_ms.max(1)),
            handshake_bytes: self.handshake_bytes,
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            body_min_rate: self.body_min_rate.max(1),
            websocket_origins: WsOrigins::parse(&self.ws_origins),
        };
        let events = EventLimits {
            max_event_bytes: self.max_event_bytes,
            binary_deadline: Duration::from_millis(self.binary_deadline_ms.max(1)),
            packet_rate: rate(self.packet_rate, self.packet_burst),
        };
        (engine, events)
    }
}

impl Default for AbuseArgs {
    /// The library's defaults (what the flags default to).
    fn default() -> Self {
        let (e, ev) = (AbuseLimits::default(), EventLimits::default());
        let (conn, hs, pk) = (
            e.connections.per_addr,
            e.handshakes_per_addr,
            ev.packet_rate,
        );
        AbuseArgs {
            conn_rate: conn.map_or(0.0, |r| r.per_sec),
            conn_burst: conn.map_or(1.0, |r| r.burst),
            max_connections: e.connections.max_connections,
            header_timeout_ms: e.connections.header_read_timeout.as_millis() as u64,
            handshake_rate: hs.map_or(0.0, |r| r.per_sec),
            handshake_burst: hs.map_or(1.0, |r| r.burst),
            max_sessions: e.max_sessions,
            first_exchange_ms: e.first_exchange_timeout.as_millis() as u64,
            handshake_bytes: e.handshake_bytes,
            body_timeout_ms: e.body_timeout.as_millis() as u64,
            body_min_rate: e.body_min_rate,
            ws_origins: String::new(),
            max_event_bytes: ev.max_event_bytes,
            binary_deadline_ms: ev.binary_deadline.as_millis() as u64,
            packet_rate: pk.map_or(0.0, |r| r.per_sec),
            packet_burst: pk.map_or(1.0, |r| r.burst),
        }
    }
}

/// A rate, or none when `per_sec` is 0 (or less).
fn rate(per_sec: f64, burst: f64) -> Option<Rate> {
    (per_sec > 0.0).then(|| Rate::new(per_sec, burst))
}
