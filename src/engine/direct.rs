//! Direct writes: a packet for an idle WebSocket is written to its socket by
//! the sender, without waking the connection's task.
//!
//! Waking a task costs more than the write itself when a broadcast reaches
//! thousands of idle sockets (the scheduler, the task's poll, the queue
//! drain), so while a connection has nothing queued and no write in progress
//! the sender calls `try_write` on the socket under the connection's lock.
//! Whatever the socket does not take is queued and the task writes it.
//!
//! Direct writes cannot batch: each one is a system call. When packets come
//! faster than the sockets are written one by one, queueing is cheaper,
//! because the tasks then find several packets waiting and send them in one
//! vectored write. So a packet is written directly only to a connection that
//! has been sent nothing for a while ([`DirectWrites::idle`]): the first
//! packet after a quiet spell goes out at once, the ones that follow it
//! closely are queued and coalesce. On top of that, a `WriteBudget` shared
//! by the engine's connections caps the time spent in direct writes to a
//! share of wall-clock time (with a burst).

use std::io::IoSlice;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::packet::Frame;

/// How much time direct writes may take (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectWrites {
    /// A connection takes direct writes only after it has been sent nothing
    /// for this long.
    pub idle: Duration,
    /// Share of wall-clock time direct writes may use in the long run, from
    /// 0 (never write directly) to 1.
    pub share: f64,
    /// Time direct writes may use at once when they have not been used for a
    /// while (a burst, e.g. one broadcast to every connection).
    pub burst: Duration,
}

impl Default for DirectWrites {
    fn default() -> Self {
        DirectWrites {
            idle: Duration::from_millis(100),
            share: 0.5,
            burst: Duration::from_millis(250),
        }
    }
}

/// The engine-wide budget of time for direct writes: a token bucket in
/// nanoseconds, refilled at `share` of wall-clock time up to `burst`.
#[derive(Debug)]
pub(crate) struct WriteBudget {
    /// See [`DirectWrites::idle`].
    pub idle: Duration,
    share: f64,
    burst_ns: f64,
    state: Mutex<(f64, Instant)>,
}

impl WriteBudget {
    pub fn new(cfg: DirectWrites) -> WriteBudget {
        let burst_ns = cfg.burst.as_nanos() as f64;
        WriteBudget {
            idle: cfg.idle,
            share: cfg.share.clamp(0.0, 1.0),
            burst_ns,
            state: Mutex::new((burst_ns, Instant::now())),
        }
    }

    /// Whether a direct write may start now.
    pub fn allows(&self, now: Instant) -> bool {
        if self.share <= 0.0 {
            return false;
        }
        let mut s = self.state.lock();
        let elapsed = now.saturating_duration_since(s.1).as_nanos() as f64;
        s.0 = (s.0 + elapsed * self.share).min(self.burst_ns);
        s.1 = now;
        s.0 > 0.0
    }

    /// Charges the time a direct write took.
    pub fn charge(&self, spent: Duration) {
        self.state.lock().0 -= spent.as_nanos() as f64;
    }
}

/// Writes as much of `frames` as the socket takes now, without waiting, in
/// the form the connection uses ([`Frame::ws_bytes_for`]`(deflate_min)`).
/// Returns the number of bytes written (0 when the socket is full or failed:
/// the caller queues everything and the connection's task meets the error).
pub(crate) fn try_write_frames(stream: &TcpStream, frames: &[Frame], deflate_min: usize) -> usize {
    const MAX_SLICES: usize = 64;
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let n = frames.len().min(MAX_SLICES);
    for (slot, f) in slices.iter_mut().zip(frames) {
        *slot = IoSlice::new(f.ws_bytes_for(deflate_min));
    }
    let res = if n == 1 {
        stream.try_write(frames[0].ws_bytes_for(deflate_min))
    } else {
        stream.try_write_vectored(&slices[..n])
    };
    res.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_at_its_share_and_caps_at_the_burst() {
        let b = WriteBudget::new(DirectWrites {
            idle: Duration::ZERO,
            share: 0.5,
            burst: Duration::from_millis(10),
        });
        let t0 = Instant::now();
        assert!(b.allows(t0));
        b.charge(Duration::from_millis(12));
        assert!(!b.allows(t0), "spent more than the burst");
        // 2 ms later, 1 ms of budget came back: still 1 ms short.
        assert!(!b.allows(t0 + Duration::from_millis(2)));
        // 6 ms later in all: 3 ms back, 1 ms left.
        assert!(b.allows(t0 + Duration::from_millis(6)));
        // A long pause refills only up to the burst.
        assert!(b.allows(t0 + Duration::from_secs(10)));
        b.charge(Duration::from_millis(10));
        assert!(!b.allows(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_zero_share_never_allows() {
        let b = WriteBudget::new(DirectWrites {
            idle: Duration::ZERO,
            share: 0.0,
            burst: Duration::from_millis(10),
        });
        assert!(!b.allows(Instant::now()));
    }
}
