//! The counters every receiver adds to and the scenarios read: one slot per
//! scenario tag, sampled latencies, closed connections and pings answered.
//!
//! One `Shared` is owned by the run and shared (in an `Arc`) by the tasks of
//! both runtimes. The counters are atomics; `lat` is the only lock, taken
//! once per read that carried sampled latencies (by a probe receiver) and
//! once per scenario (to take them), never while holding anything else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Scenario tags carried in the payloads (`{"s":S,"t":T}`), one digit.
pub(crate) const MAX_SCEN: usize = 10;
/// The tag of the unmeasured warm-up broadcasts.
pub(crate) const SCEN_WARMUP: usize = 0;
/// The tag of the throughput burst.
pub(crate) const SCEN_THROUGHPUT: usize = 1;
/// The tag of the first latency scenario (the next ones follow).
pub(crate) const SCEN_LATENCY0: usize = 2;

#[derive(Default)]
struct ScenStat {
    count: AtomicU64,
    target: AtomicU64,
    /// When the count reached the target (0: not yet).
    done_ns: AtomicU64,
    /// When the latest delivery arrived.
    last_ns: AtomicU64,
}

/// The run's counters (see the module docs for who touches what).
#[derive(Default)]
pub(crate) struct Shared {
    scen: [ScenStat; MAX_SCEN],
    /// Sampled latencies: (scenario, ns).
    lat: Mutex<Vec<(u8, u64)>>,
    /// Connections the server closed (or that failed) after setup.
    closed: AtomicU64,
    /// Engine.IO pings answered.
    pings: AtomicU64,
    /// The scenario armed last: compressed broadcasts that bulk receivers
    /// count without inflating them are its deliveries.
    armed: AtomicU64,
    /// Bytes the receivers read off their sockets.
    bytes_read: AtomicU64,
}

impl Shared {
    /// Resets scenario `s` to expect `target` deliveries.
    pub(crate) fn arm(&self, s: usize, target: u64) {
        let st = &self.scen[s];
        st.count.store(0, Ordering::SeqCst);
        st.done_ns.store(0, Ordering::SeqCst);
        st.last_ns.store(0, Ordering::SeqCst);
        st.target.store(target, Ordering::SeqCst);
        self.armed.store(s as u64, Ordering::SeqCst);
    }

    /// The scenario armed last.
    #[inline]
    pub(crate) fn armed(&self) -> usize {
        self.armed.load(Ordering::Relaxed) as usize
    }

    /// Counts `n` bytes read by a receiver.
    #[inline]
    pub(crate) fn add_bytes(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes the receivers read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Counts `k` deliveries of scenario `s` that arrived at `now`.
    #[inline]
    pub(crate) fn add(&self, s: usize, k: u64, now: u64) {
        let st = &self.scen[s];
        let old = st.count.fetch_add(k, Ordering::AcqRel);
        st.last_ns.fetch_max(now, Ordering::AcqRel);
        let target = st.target.load(Ordering::Acquire);
        if old < target && old + k >= target {
            st.done_ns.store(now, Ordering::Release);
        }
    }

    /// Adds sampled latencies (emptying `lat`).
    pub(crate) fn add_latencies(&self, lat: &mut Vec<(u8, u64)>) {
        self.lat.lock().unwrap().append(lat);
    }

    /// Deliveries of scenario `s` so far.
    pub(crate) fn count(&self, s: usize) -> u64 {
        self.scen[s].count.load(Ordering::Acquire)
    }

    /// When scenario `s` ended: when it reached its target, else its latest delivery.
    pub(crate) fn end_ns(&self, s: usize) -> u64 {
        let st = &self.scen[s];
        let done = st.done_ns.load(Ordering::Acquire);
        if done != 0 {
            done
        } else {
            st.last_ns.load(Ordering::Acquire)
        }
    }

    /// Notes a connection that closed or failed after setup.
    #[inline]
    pub(crate) fn note_closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed so far.
    pub(crate) fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Notes a ping answered.
    #[inline]
    pub(crate) fn note_ping(&self) {
        self.pings.fetch_add(1, Ordering::Relaxed);
    }

    /// Pings answered so far.
    pub(crate) fn pings(&self) -> u64 {
        self.pings.load(Ordering::Relaxed)
    }

    /// Waits for scenario `s` to complete, stall (no progress for `stall`) or hit `until`.
    pub(crate) async fn wait(&self, s: usize, until: Instant, stall: Duration) {
        let st = &self.scen[s];
        let mut last = st.count.load(Ordering::Acquire);
        let mut last_change = Instant::now();
        loop {
            if st.done_ns.load(Ordering::Acquire) != 0 || Instant::now() >= until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            let c = st.count.load(Ordering::Acquire);
            if c != last {
                last = c;
                last_change = Instant::now();
            } else if last_change.elapsed() >= stall {
                return;
            }
        }
    }

    /// The sampled latencies of scenario `s`, sorted.
    pub(crate) fn latencies(&self, s: usize) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .lat
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k as usize == s)
            .map(|(_, l)| *l)
            .collect();
        v.sort_unstable();
        v
    }
}

/// The `p` quantile (0..=1) of `sorted` (nearest rank; 0 when empty).
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}
