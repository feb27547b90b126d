//! Engine.IO server configuration.

use std::sync::Arc;
use std::time::Duration;

pub use super::abuse::{AbuseLimits, WsOrigins};
pub use super::cors::{same_origin, AllowedOrigins, Cors};
pub use super::deflate::Deflate;
pub use super::direct::DirectWrites;

/// What happens when a connection's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Close the session with [`super::CloseReason::BufferFull`] (the default):
    /// a client that does not read cannot grow the server's memory.
    Disconnect,
    /// Drop the packet that does not fit and keep the session.
    DropNewest,
}

/// A hook that may refuse a handshake (answered 403 `{"code":4,"message":"Forbidden"}`).
pub type AllowRequest = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Engine.IO server settings; build with [`EngineConfig::builder`].
#[derive(Clone)]
pub struct EngineConfig {
    /// Path prefix the engine answers on (default `/engine.io/`).
    pub path: String,
    /// Interval between server pings (default 25 s).
    pub ping_interval: Duration,
    /// How long to wait for a pong (default 20 s).
    pub ping_timeout: Duration,
    /// Largest message or POST body in bytes (default 1,000,000).
    pub max_payload: usize,
    /// Whether polling sessions may upgrade to WebSocket (default true).
    pub allow_upgrades: bool,
    /// Which transports may be used (default both).
    pub transports: Transports,
    /// CORS settings (default none).
    pub cors: Option<Cors>,
    /// Largest number of packets queued for one connection (default 8,192).
    pub max_queue_packets: usize,
    /// Largest number of bytes queued for one connection (default 16 MiB).
    pub max_queue_bytes: usize,
    /// What to do when a queue is full (default disconnect).
    pub overflow: OverflowPolicy,
    /// How long a probing WebSocket may take to send the upgrade packet (default 10 s).
    pub upgrade_timeout: Duration,
    /// Optional admission hook for handshakes.
    pub allow_request: Option<AllowRequest>,
    /// When senders may write directly to idle WebSockets (default: after
    /// 100 ms without a packet, at most half of the time, in bursts of up to
    /// 250 ms; see [`DirectWrites`]).
    pub direct_writes: DirectWrites,
    /// permessage-deflate (RFC 7692) for WebSocket connections whose client
    /// offers it (default off, like the reference server).
    pub deflate: Option<Deflate>,
    /// The abuse limits: per-address rates, global caps, deadlines
    /// ([`AbuseLimits`]; SPEC.md §2.16).
    pub abuse: AbuseLimits,
}

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("max_payload", &self.max_payload)
            .field("cors", &self.cors)
            .field("deflate", &self.deflate)
            .finish_non_exhaustive()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".to_string(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            transports: Transports {
                polling: true,
                websocket: true,
            },
            cors: None,
            max_queue_packets: 8192,
            max_queue_bytes: 16 << 20,
            overflow: OverflowPolicy::Disconnect,
            upgrade_timeout: Duration::from_secs(10),
            allow_request: None,
            direct_writes: DirectWrites::default(),
            deflate: None,
            abuse: AbuseLimits::default(),
        }
    }
}

impl EngineConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder(EngineConfig::default())
    }
}

/// Builder for [`EngineConfig`].
///
/// ```
/// use std::time::Duration;
/// let config = rollcall::engine::EngineConfig::builder()
///     .path("/socket.io/")
///     .ping_interval(Duration::from_millis(300))
///     .ping_timeout(Duration::from_millis(200))
///     .build();
/// assert_eq!(config.max_payload, 1_000_000);
/// ```
#[derive(Debug, Clone)]
pub struct EngineConfigBuilder(EngineConfig);

impl EngineConfigBuilder {
    /// Sets the path prefix; a trailing `/` is added when missing.
    pub fn path(mut self, path: &str) -> Self {
        let mut p = path.to_string();
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        if !p.ends_with('/') {
            p.push('/');
        }
        self.0.path = p;
        self
    }
    /// Sets the ping interval.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.0.ping_interval = d;
        self
    }
    /// Sets the ping timeout.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.0.ping_timeout = d;
        self
    }
    /// Sets the largest message / POST body in bytes.
    pub fn max_payload(mut self, n: usize) -> Self {
        self.0.max_payload = n;
        self
    }
    /// Allows or forbids upgrades from polling.
    pub fn allow_upgrades(mut self, yes: bool) -> Self {
        self.0.allow_upgrades = yes;
        self
    }
    /// Sets the accepted transports.
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.0.transports = Transports { polling, websocket };
        self
    }
    /// Enables CORS.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.0.cors = Some(cors);
        self
    }
    /// Bounds each connection's outbound queue.
    pub fn queue_limits(mut self, packets: usize, bytes: usize) -> Self {
        self.0.max_queue_packets = packets.max(1);
        self.0.max_queue_bytes = bytes.max(1);
        self
    }
    /// Sets the overflow policy.
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.0.overflow = policy;
        self
    }
    /// Sets the upgrade timeout.
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.0.upgrade_timeout = d;
        self
    }
    /// Installs an admission hook for handshakes.
    pub fn allow_request(
        mut self,
        f: impl Fn(&http::request::Parts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.0.allow_request = Some(Arc::new(f));
        self
    }
    /// Sets when senders may write directly to idle WebSockets
    /// (`share` 0 turns direct writes off: every packet then goes through
    /// the connection's task).
    pub fn direct_writes(mut self, direct: DirectWrites) -> Self {
        self.0.direct_writes = direct;
        self
    }
    /// Turns permessage-deflate on (`Some`) or off (`None`, the default):
    /// WebSocket clients that offer it get packets of at least
    /// [`Deflate::threshold`] bytes compressed, each shared frame compressed
    /// once for all of them ([`super::deflate`]).
    pub fn per_message_deflate(mut self, deflate: Option<Deflate>) -> Self {
        self.0.deflate = deflate;
        self
    }
    /// Sets the abuse limits (default [`AbuseLimits::default`]).
    pub fn abuse(mut self, limits: AbuseLimits) -> Self {
        self.0.abuse = limits;
        self
    }
    /// Finishes the configuration.
    pub fn build(self) -> EngineConfig {
        self.0
    }
}
