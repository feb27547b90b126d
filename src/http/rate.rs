//! Per-address token buckets and global caps: the building blocks of the
//! abuse limits (SPEC.md §1.1, §2.16).
//!
//! Why here: the accept loop ([`super::serve_with`]) and the Engine.IO
//! handshake both refuse one address that opens too much, and both need
//! the same cheap, bounded bookkeeping. A bucket costs one small map entry
//! per active address; entries that have refilled are forgotten (they are
//! indistinguishable from a new address), so idle addresses cost nothing.
//!
//! Addresses are keyed by IPv4 address, and by /64 prefix for IPv6 (one
//! subscriber usually holds a whole /64: keying by full address would let
//! it rotate addresses freely). IPv4-mapped IPv6 addresses count as IPv4.
//!
//! Locks: one mutex per shard (64), held for one map operation (a sweep of
//! that shard at most once a second); no other lock is taken under it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A token-bucket rate: `per_sec` tokens are added per second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained rate, tokens per second (must be > 0).
    pub per_sec: f64,
    /// Bucket size: how many may be taken at once after a quiet period.
    pub burst: f64,
}

impl Rate {
    /// A rate of `per_sec` per second with bursts of `burst`.
    pub fn new(per_sec: f64, burst: f64) -> Rate {
        Rate {
            per_sec: per_sec.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
        }
    }

    /// How long an empty bucket needs to refill completely.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64((self.burst / self.per_sec).min(86_400.0))
    }
}

/// One token bucket (for one address, or one connection).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(rate: &Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            last: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate.per_sec).min(rate.burst);
        self.last = now;
    }

    /// Takes one token; when the bucket is empty, says how long until the
    /// next one (the `Retry-After` of a refusal).
    pub fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }
}

/// The key an address is counted under: IPv4 address, or IPv6 /64 prefix.
pub fn addr_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)) | (0xffff << 32),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => addr_key(IpAddr::V4(v4)),
            None => u128::from(a) & !((1u128 << 64) - 1),
        },
    }
}

struct Shard {
    map: HashMap<u128, Bucket>,
    last_sweep: Instant,
}

/// Most addresses tracked per shard (64 shards: about 262,000 in all,
/// ~10 MB). Beyond it new addresses are let through untracked rather
/// than refused: the global caps still bound what they can open.
const MAX_PER_SHARD: usize = 4096;
/// A shard is swept of refilled entries once it holds this many.
const SWEEP_AT: usize = 256;

/// Token buckets per address, sharded; see the module docs.
pub struct AddrBuckets {
    rate: Rate,
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl std::fmt::Debug for AddrBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddrBuckets")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl AddrBuckets {
    /// Buckets of `rate` for every address.
    pub fn new(rate: Rate) -> AddrBuckets {
        let now = Instant::now();
        AddrBuckets {
            rate,
            shards: (0..64)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        last_sweep: now,
                    })
                })
                .collect(),
            hasher: Default::default(),
        }
    }

    /// Takes one token for `ip`; `Err` is how long until it may try again.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = addr_key(ip);
        let idx = self.hasher.hash_one(key) as usize & (self.shards.len() - 1);
        let mut shard = self.shards[idx].lock();
        if shard.map.len() >= SWEEP_AT
            && now.saturating_duration_since(shard.last_sweep) >= Duration::from_secs(1)
        {
            let idle = self.rate.refill_time();
            shard
                .map
                .retain(|_, b| now.saturating_duration_since(b.last) < idle);
            shard.last_sweep = now;
        }
        if let Some(b) = shard.map.get_mut(&key) {
            return b.take(&self.rate, now);
        }
        if shard.map.len() < MAX_PER_SHARD {
            let mut b = Bucket::full(&self.rate, now);
            let taken = b.take(&self.rate, now);
            shard.map.insert(key, b);
            return taken;
        }
        Ok(())
    }

    /// Number of addresses tracked now (sums the shards).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }
}

/// A global cap on open things (connections, sessions): a relaxed atomic
/// counter; each [`Permit`] holds one unit until dropped.
#[derive(Debug)]
pub struct Gauge {
    open: AtomicUsize,
    max: usize,
}

impl Gauge {
    /// A gauge admitting at most `max` at once.
    pub fn new(max: usize) -> Arc<Gauge> {
        Arc::new(Gauge {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// One more, unless `max` are open.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        if before >= self.max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Permit(self.clone()))
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// One unit of a [`Gauge`], given back on drop.
#[derive(Debug)]
pub struct Permit(Arc<Gauge>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_after_burst_and_refills() {
        let b = AddrBuckets::new(Rate::new(10.0, 3.0));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(ip, t0).is_ok());
        }
        let wait = b.take(ip, t0).unwrap_err();
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100));
        assert!(b.take(other, t0).is_ok(), "other addresses unaffected");
        assert!(b.take(ip, t0 + Duration::from_millis(101)).is_ok());
    }

    #[test]
    fn ipv6_is_keyed_by_64_prefix_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(c));
        let m: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(addr_key(m), addr_key("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn refilled_entries_are_swept() {
        let b = AddrBuckets::new(Rate::new(1000.0, 1.0));
        let t0 = Instant::now();
        for i in 0..(SWEEP_AT * 64 * 2) as u32 {
            let _ = b.take(IpAddr::V4(i.into()), t0);
        }
        let later = t0 + Duration::from_secs(2);
        for i in 0..(SWEEP_AT * 64 * 2) as u32 {
            let _ = b.take(IpAddr::V4((i + 1_000_000).into()), later);
        }
        assert!(b.tracked() <= SWEEP_AT * 64 * 2 + 64, "{}", b.tracked());
    }

    #[test]
    fn gauge_caps_and_releases() {
        let g = Gauge::new(2);
        let a = g.try_acquire().unwrap();
        let _b = g.try_acquire().unwrap();
        assert!(g.try_acquire().is_none());
        drop(a);
        assert!(g.try_acquire().is_some());
        assert_eq!(g.open(), 1);
    }
}
