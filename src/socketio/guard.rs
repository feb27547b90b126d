//! The Socket.IO layer's abuse limits (SPEC.md §3.14): what one connection
//! may make the server parse and hold, checked before any JSON is parsed.
//!
//! Why before parsing: parsing is the expensive step (a 100,000-element
//! array costs far more memory and time than its bytes), so the cheap
//! checks come first: a per-connection token bucket on Engine.IO messages,
//! the size of a text packet, and for a binary packet its whole size
//! (JSON plus attachments) against `maxPayload`, with a deadline for its
//! attachments to arrive. Every refusal closes the connection through the
//! protocol-violation path (§3.2) or, for the rate, as an upper-layer
//! refusal; each is counted ([`refusals`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::http::Rate;

/// The Socket.IO abuse limits; set with
/// [`SocketIoConfigBuilder::event_limits`](super::SocketIoConfigBuilder::event_limits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventLimits {
    /// Largest text packet (an event's JSON) in bytes, checked before it is
    /// parsed (default 1 MiB; the engine's `maxPayload` also bounds it).
    /// Over it: parse error, the connection closes.
    pub max_event_bytes: usize,
    /// Most time between a binary packet's text part and its last
    /// attachment (default 10 s). Over it: parse error, the connection closes.
    pub binary_deadline: Duration,
    /// Engine.IO messages (packets and attachments) per connection (default
    /// 1,000/s, burst 2,000; `None`: unlimited). A connection that empties
    /// its bucket is closed (reason "packet rate limit").
    pub packet_rate: Option<Rate>,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_event_bytes: 1 << 20,
            binary_deadline: Duration::from_secs(10),
            packet_rate: Some(Rate::new(1000.0, 2000.0)),
        }
    }
}

/// What a connection was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over the packet rate.
    Rate,
    /// A text packet over `max_event_bytes`, or a binary packet whose whole
    /// size is over `maxPayload`.
    Size,
    /// Attachments not complete within `binary_deadline`.
    Deadline,
}

static RATE: AtomicU64 = AtomicU64::new(0);
static SIZE: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(0);

impl Refusal {
    /// Counts one refusal.
    pub(crate) fn count(self) {
        let c = match self {
            Refusal::Rate => &RATE,
            Refusal::Size => &SIZE,
            Refusal::Deadline => &DEADLINE,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Connections closed so far by this process for (packet rate, size,
/// binary deadline).
pub fn refusals() -> (u64, u64, u64) {
    (
        RATE.load(Ordering::Relaxed),
        SIZE.load(Ordering::Relaxed),
        DEADLINE.load(Ordering::Relaxed),
    )
}
