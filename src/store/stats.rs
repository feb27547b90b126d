//! The store's counters and its readiness probe.
//!
//! Counters: group commits (flushes) made and failed, their latency, and
//! the number of writes ticketed, all counted by the flusher thread (one
//! add per flush, nothing per write). The probe is a real write (a key in
//! the `meta` tree) made durable through the same group commit as every
//! other write, so it fails when the store cannot commit.

use std::sync::atomic::Ordering;

use super::codec::enc;
use super::{Store, StoreError};
use crate::util::counter::{Counter, Histogram};

/// What the store counts ([`Store::commit_stats`]).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Group commits (sled flush plus `fdatasync`) that succeeded.
    pub commits: Counter,
    /// Group commits that failed.
    pub commit_failures: Counter,
    /// Duration of each group commit, in microseconds.
    pub commit_latency_us: Histogram,
}

/// The key the readiness probe writes in the `meta` tree.
const PROBE_KEY: &str = "ready_probe";

impl Store {
    /// The store's counters.
    pub fn commit_stats(&self) -> &StoreStats {
        self.inner.flusher.stats()
    }

    /// Number of writes made since the store was opened (each change is one).
    pub fn writes(&self) -> u64 {
        self.inner.flusher.written().load(Ordering::Relaxed)
    }

    /// Proves the store can take a write now: writes the current time under
    /// `meta/ready_probe` and waits until it is durable (the group commit
    /// every write goes through). The caller bounds the wait.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let meta = self.inner.flusher.db().open_tree("meta")?;
        let now = super::time::now_ms();
        let ((), ticket) = self.inner.flusher.write(|_| {
            meta.insert(PROBE_KEY, enc(&now))?;
            Ok(())
        })?;
        self.durable(ticket).await
    }
}
