//! Per-address token buckets and the per-account login backoff.
//!
//! Addresses: an IPv4 address counts as itself, an IPv6 address by its /64
//! (one host usually holds a whole /64), an IPv4-mapped IPv6 address as its
//! IPv4 address. Both maps are bounded ([`super::MAX_TRACKED`] entries):
//! entries that no longer hold anything back are dropped when the map is
//! full, and when it is still full a new address is refused (and a new
//! account is not tracked), so memory never grows with the number of
//! attackers.
//!
//! The account backoff must not let an attacker lock the account's owner
//! out: it holds back only the addresses that have failed on that account
//! (up to 16 of them); an address that has not failed on it is let through
//! to the password check. Only when more than 16 addresses have failed on
//! one account (a distributed attack) does the backoff apply to every
//! address, and then for at most the configured cap (30 s by default). A
//! success clears the account's failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::MAX_TRACKED;

/// How long a limiter refuses: the `Retry-After` of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Whole seconds to wait (at least 1).
    pub retry_after_secs: u64,
}

impl Refusal {
    fn after(d: Duration) -> Refusal {
        Refusal {
            retry_after_secs: d.as_secs_f64().ceil().max(1.0) as u64,
        }
    }
}

/// The key of a client address (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddrKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl AddrKey {
    pub(crate) fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&o[..8]);
                    AddrKey::V6(p)
                }
            },
        }
    }
}

/// A token bucket per client address: `rate` tokens per second up to
/// `burst`, each attempt takes one.
pub struct AddressLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<AddrKey, (f64, Instant)>>,
}

impl AddressLimiter {
    /// Buckets of `burst` tokens refilled at `rate` per second.
    pub fn new(rate: f64, burst: f64) -> AddressLimiter {
        AddressLimiter {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`, or says how long to wait for one.
    pub fn take(&self, ip: IpAddr) -> Result<(), Refusal> {
        let key = AddrKey::of(ip);
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        let mut map = self.buckets.lock();
        if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
            // Buckets that have refilled hold nothing back.
            map.retain(|_, b| b.0 + now.duration_since(b.1).as_secs_f64() * rate < burst);
            if map.len() >= MAX_TRACKED {
                return Err(Refusal::after(Duration::from_secs(1)));
            }
        }
        let b = map.entry(key).or_insert((burst, now));
        if crate::app::take_token(b, rate, burst) {
            Ok(())
        } else if rate > 0.0 {
            Err(Refusal::after(Duration::from_secs_f64(
                ((1.0 - b.0) / rate).min(86_400.0),
            )))
        } else {
            Err(Refusal::after(Duration::from_secs(86_400)))
        }
    }
}

/// Most addresses remembered as failing on one account.
const FAILING_ADDRS: usize = 16;
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
struct Account {
    failures: u32,
    last: Instant,
    until: Instant,
    failing: Vec<AddrKey>,
    /// More than [`FAILING_ADDRS`] addresses failed: the backoff applies
    /// to all.
    everyone: bool,
}

/// The per-account login backoff (see the module docs): after `after`
/// failures, 1 s, then doubling up to `max`, for the addresses that failed.
pub struct AccountBackoff {
    after: u32,
    max: Duration,
    accounts: Mutex<HashMap<String, Account>>,
}

impl AccountBackoff {
    /// A backoff that starts after `after` failures and is capped at `max`.
    pub fn new(after: u32, max: Duration) -> AccountBackoff {
        AccountBackoff {
            after,
            max,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an attempt on `account` (a lower-cased email) from `ip` may
    /// check the password now.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Refusal> {
        let key = AddrKey::of(ip);
        let now = Instant::now();
        let map = self.accounts.lock();
        match map.get(account) {
            Some(a) if now < a.until && (a.everyone || a.failing.contains(&key)) => {
                Err(Refusal::after(a.until - now))
            }
            _ => Ok(()),
        }
    }

    /// A failed attempt on `account` from `ip`.
    pub fn failed(&self, account: &str, ip: IpAddr) {
        let key = AddrKey::of(ip);
        let now = Instant::now();
        let mut map = self.accounts.lock();
        if !map.contains_key(account) && map.len() >= MAX_TRACKED {
            map.retain(|_, a| now.duration_since(a.last) < FORGET_AFTER && now < a.until);
            if map.len() >= MAX_TRACKED {
                return;
            }
        }
        let a = map.entry(account.to_string()).or_insert_with(|| Account {
            failures: 0,
            last: now,
            until: now,
            failing: Vec::new(),
            everyone: false,
        });
        if now.duration_since(a.last) >= FORGET_AFTER {
            a.failures = 0;
            a.failing.clear();
            a.everyone = false;
        }
        a.failures = a.failures.saturating_add(1);
        a.last = now;
        if !a.failing.contains(&key) {
            if a.failing.len() < FAILING_ADDRS {
                a.failing.push(key);
            } else {
                a.everyone = true;
            }
        }
        if a.failures >= self.after {
            let exp = (a.failures - self.after).min(20);
            let delay = Duration::from_secs(1u64 << exp).min(self.max);
            a.until = now + delay;
        }
    }

    /// A successful login: the account's failures are forgotten.
    pub fn succeeded(&self, account: &str) {
        self.accounts.lock().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_bucket_refuses_with_a_retry_after() {
        let l = AddressLimiter::new(0.5, 3.0);
        for _ in 0..3 {
            assert!(l.take(ip("10.0.0.1")).is_ok());
        }
        let r = l.take(ip("10.0.0.1")).unwrap_err();
        assert_eq!(r.retry_after_secs, 2);
        // Another address has its own bucket; a /64 is one address.
        assert!(l.take(ip("10.0.0.2")).is_ok());
        let l = AddressLimiter::new(0.0, 1.0);
        assert!(l.take(ip("2001:db8::1")).is_ok());
        assert!(l.take(ip("2001:db8::2")).is_err());
        assert!(l.take(ip("2001:db8:0:1::1")).is_ok());
        assert!(l.take(ip("::ffff:10.0.0.9")).is_ok());
        assert!(l.take(ip("10.0.0.9")).is_err());
    }

    #[test]
    fn backoff_holds_back_only_the_failing_addresses_and_resets_on_success() {
        let b = AccountBackoff::new(2, Duration::from_secs(30));
        let (bad, good) = (ip("10.0.0.1"), ip("10.0.0.2"));
        b.failed("a@x", bad);
        assert!(b.check("a@x", bad).is_ok());
        b.failed("a@x", bad);
        assert_eq!(b.check("a@x", bad).unwrap_err().retry_after_secs, 1);
        for _ in 0..10 {
            b.failed("a@x", bad);
        }
        // Capped at 30 s.
        assert_eq!(b.check("a@x", bad).unwrap_err().retry_after_secs, 30);
        // The owner, from an address that has not failed, gets through.
        assert!(b.check("a@x", good).is_ok());
        // Other accounts are not affected.
        assert!(b.check("b@x", bad).is_ok());
        b.succeeded("a@x");
        assert!(b.check("a@x", bad).is_ok());
    }

    #[test]
    fn many_failing_addresses_hold_back_everyone_for_at_most_the_cap() {
        let b = AccountBackoff::new(1, Duration::from_secs(30));
        for i in 0..=FAILING_ADDRS {
            b.failed("a@x", ip(&format!("10.0.1.{i}")));
        }
        let r = b.check("a@x", ip("10.9.9.9")).unwrap_err();
        assert!(r.retry_after_secs <= 30);
    }
}
