//! The accept loop's admission: a token bucket per address for new TCP
//! connections, and a global cap on open connections (SPEC.md §1.1).
//!
//! Why at accept time: a refused connection must cost almost nothing, not
//! a hyper connection, a task and a log line. The refusal is one
//! non-blocking write of a fixed response (`429` for one address over its
//! rate, `503` over the global cap, both with `Retry-After`) and a close;
//! refusals are counted ([`refused_connections`]) and never logged one by
//! one.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::rate::{AddrBuckets, Gauge, Permit, Rate};

/// Limits of the accept loop and of each HTTP connection; part of the
/// engine's [`AbuseLimits`](crate::engine::AbuseLimits), used by
/// [`super::serve_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConnLimits {
    /// New TCP connections per address (default 100/s, burst 500; `None`:
    /// unlimited). Over it: `429`, `Retry-After`, closed.
    pub per_addr: Option<Rate>,
    /// Open TCP connections in all (default 20,000). Over it: `503`,
    /// `Retry-After: 5`, closed.
    pub max_connections: usize,
    /// Time to receive a request's headers (default 10 s); then the
    /// connection is dropped.
    pub header_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            per_addr: Some(Rate::new(100.0, 500.0)),
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

impl ConnLimits {
    /// No per-address or global limit (header timeout kept): for test and
    /// benchmark servers that open thousands of connections from one address.
    pub fn unlimited() -> ConnLimits {
        ConnLimits {
            per_addr: None,
            max_connections: usize::MAX,
            ..ConnLimits::default()
        }
    }
}

static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Connections refused by any accept loop of this process so far.
pub fn refused_connections() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// The admission state of one accept loop.
pub(crate) struct ConnGuard {
    per_addr: Option<AddrBuckets>,
    open: Arc<Gauge>,
}

impl ConnGuard {
    pub(crate) fn new(limits: &ConnLimits) -> ConnGuard {
        ConnGuard {
            per_addr: limits.per_addr.map(AddrBuckets::new),
            open: Gauge::new(limits.max_connections),
        }
    }

    /// Admits a new connection from `ip` (the permit is held while it is
    /// open), or refuses it: a fixed response written without waiting, and
    /// the stream dropped.
    pub(crate) fn admit(&self, stream: &TcpStream, ip: IpAddr) -> Option<Permit> {
        let refusal: &[u8] = match self.per_addr.as_ref().map(|b| b.take(ip, Instant::now())) {
            Some(Err(_)) => TOO_MANY,
            _ => match self.open.try_acquire() {
                Some(p) => return Some(p),
                None => BUSY,
            },
        };
        REFUSED.fetch_add(1, Ordering::Relaxed);
        // What the client already sent is read and discarded first: closing
        // with unread data would reset the connection and could discard
        // the refusal before the client reads it.
        // At most 16 KiB, so that a refusal stays cheap.
        let mut sink = [0u8; 2048];
        for _ in 0..8 {
            if !matches!(stream.try_read(&mut sink), Ok(n) if n == sink.len()) {
                break;
            }
        }
        let _ = stream.try_write(refusal);
        None
    }
}

const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{\"code\":6,\"message\":\"Too many requests\"}";
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\nContent-Length: 34\r\nConnection: close\r\n\r\n{\"code\":7,\"message\":\"Server busy\"}";

#[cfg(test)]
mod tests {
    use super::*;

    fn body_len(resp: &[u8]) -> usize {
        let s = std::str::from_utf8(resp).unwrap();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        let declared: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(declared, body.len(), "{s}");
        serde_json::from_str::<serde_json::Value>(body).unwrap();
        body.len()
    }

    #[test]
    fn refusals_are_well_formed() {
        assert!(body_len(TOO_MANY) > 0);
        assert!(body_len(BUSY) > 0);
    }
}
