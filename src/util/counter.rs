//! Counters and histograms cheap enough for the hot path.
//!
//! The layers count into these from many threads at once (every delivery
//! of a broadcast, every write), and a scrape reads them rarely. So a
//! [`Counter`] is split into [`SHARDS`] cache-line-padded atomics and each
//! thread adds to its own shard (picked once per thread, round robin) with
//! a relaxed `fetch_add`: no lock, no allocation, no cache line bounced
//! between cores. Reading sums the shards; a read racing with adds sees
//! each add or not (it is a sample, not a snapshot).
//!
//! A [`Histogram`] has fixed power-of-two buckets, so an observation is a
//! leading-zeros count, a bucket add and a sum add on the thread's shard.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Number of shards per counter (a power of two).
pub const SHARDS: usize = 16;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard index (assigned on first use).
#[inline]
fn shard() -> usize {
    SHARD.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) & (SHARDS - 1);
        s.set(v);
        v
    })
}

/// One atomic alone on its cache line (128 bytes: adjacent-line prefetch).
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A monotonically increasing count, sharded per thread.
pub struct Counter {
    shards: [Padded; SHARDS],
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            shards: std::array::from_fn(|_| Padded::default()),
        }
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counter({})", self.get())
    }
}

impl Counter {
    /// Adds `n` (relaxed, on this thread's shard).
    #[inline]
    pub fn add(&self, n: u64) {
        self.shards[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The total (sum of the shards).
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// Number of finite buckets of a [`Histogram`]: upper bounds 1, 2, 4, ...,
/// 2^(BUCKETS-1) in the histogram's unit, then +Inf.
pub const BUCKETS: usize = 24;

/// One shard of a histogram: the bucket counts (the last is +Inf) and the sum.
#[repr(align(128))]
struct HistShard {
    buckets: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
}

/// A distribution of integer observations (e.g. microseconds, packets) in
/// power-of-two buckets, sharded per thread like [`Counter`].
pub struct Histogram {
    shards: Box<[HistShard]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            shards: (0..SHARDS)
                .map(|_| HistShard {
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                    sum: AtomicU64::new(0),
                })
                .collect(),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        write!(f, "Histogram(count {}, sum {})", s.count, s.sum)
    }
}

/// What a [`Histogram`] holds, read at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Cumulative counts: `cumulative[i]` observations were at most 2^i
    /// (the last entry, index [`BUCKETS`], is the total count).
    pub cumulative: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations.
    pub sum: u64,
}

impl Histogram {
    /// Records one observation of `v`.
    #[inline]
    pub fn observe(&self, v: u64) {
        // The smallest i with v <= 2^i: 0 for 0 and 1, else bits of (v - 1).
        let i = (u64::BITS - v.saturating_sub(1).leading_zeros()) as usize;
        let s = &self.shards[shard()];
        s.buckets[i.min(BUCKETS)].fetch_add(1, Ordering::Relaxed);
        s.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// The upper bound of finite bucket `i` (2^i).
    pub fn bound(i: usize) -> u64 {
        1u64 << i
    }

    /// The counts, summed over the shards.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut per = [0u64; BUCKETS + 1];
        let mut sum = 0u64;
        for s in self.shards.iter() {
            for (acc, b) in per.iter_mut().zip(&s.buckets) {
                *acc += b.load(Ordering::Relaxed);
            }
            sum = sum.wrapping_add(s.sum.load(Ordering::Relaxed));
        }
        let mut running = 0;
        let cumulative: Vec<u64> = per
            .iter()
            .map(|c| {
                running += c;
                running
            })
            .collect();
        HistogramSnapshot {
            count: running,
            cumulative,
            sum,
        }
    }
}

/// A log rate limiter: at most `per_window` lines per window for one kind
/// of repeated message; the rest are counted, and the next line allowed
/// says how many were held back.
#[derive(Debug)]
pub struct LogLimiter {
    window_ms: u64,
    per_window: u64,
    /// The current window number (elapsed time / window).
    window: AtomicU64,
    in_window: AtomicU64,
    suppressed_since_last: AtomicU64,
    /// Every line held back, ever.
    suppressed: Counter,
    origin: std::time::Instant,
}

impl LogLimiter {
    /// At most `per_window` lines per `window`.
    pub fn new(window: std::time::Duration, per_window: u64) -> LogLimiter {
        LogLimiter {
            window_ms: window.as_millis().max(1) as u64,
            per_window,
            window: AtomicU64::new(0),
            in_window: AtomicU64::new(0),
            suppressed_since_last: AtomicU64::new(0),
            suppressed: Counter::default(),
            origin: std::time::Instant::now(),
        }
    }

    /// Whether to log one more line now: `Some(n)` with the number of lines
    /// held back since the last one logged, or `None` to stay quiet (the
    /// line is counted as suppressed).
    pub fn allow(&self) -> Option<u64> {
        let now = self.origin.elapsed().as_millis() as u64 / self.window_ms;
        if self.window.swap(now, Ordering::Relaxed) != now {
            self.in_window.store(0, Ordering::Relaxed);
        }
        if self.in_window.fetch_add(1, Ordering::Relaxed) < self.per_window {
            Some(self.suppressed_since_last.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed_since_last.fetch_add(1, Ordering::Relaxed);
            self.suppressed.inc();
            None
        }
    }

    /// Lines held back so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_sums_adds_from_many_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.inc()))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        c.add(5);
        assert_eq!(c.get(), 8005);
    }

    #[test]
    fn histogram_buckets_are_powers_of_two() {
        let h = Histogram::default();
        for v in [0, 1, 2, 3, 4, 5, 1000, u64::MAX / 2] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 8);
        // <= 1: 0 and 1; <= 2: +2; <= 4: +3, 4; <= 8: +5; <= 1024: +1000.
        assert_eq!(&s.cumulative[..4], &[2, 3, 5, 6]);
        assert_eq!(s.cumulative[10], 7);
        assert_eq!(
            s.cumulative[BUCKETS - 1],
            7,
            "the huge value is only in +Inf"
        );
        assert_eq!(s.cumulative[BUCKETS], 8);
        assert_eq!(s.sum, 1015u64.wrapping_add(u64::MAX / 2));
    }

    #[test]
    fn log_limiter_holds_back_lines_over_the_limit_and_counts_them() {
        let l = LogLimiter::new(std::time::Duration::from_secs(3600), 2);
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        assert_eq!(l.suppressed(), 2);
        let l = LogLimiter::new(std::time::Duration::from_millis(1), 1);
        assert_eq!(l.allow(), Some(0));
        std::thread::sleep(std::time::Duration::from_millis(3));
        // A new window: allowed again (nothing was held back in between).
        assert_eq!(l.allow(), Some(0));
    }
}
