//! Write ordering and durability: the store's write lock, the tickets it
//! hands out, and the group-commit flusher thread that makes them durable.
//!
//! A write takes the write lock ([`Flusher::write`]), changes sled, and takes
//! its [`Ticket`] from the guard before letting go, so a ticket (or a
//! [`Flusher::barrier`]) always covers every write visible before it. One
//! thread loops "take the highest ticket written so far, flush sled,
//! `fdatasync` the data file, publish that ticket" while anyone waits, so
//! each flush covers every write made while the previous one ran.
//!
//! Locks here:
//! - the write lock (`write_lock`) serialises writes from their change to
//!   their ticket. While holding it a write may take the store's leaf locks
//!   (caches, names, activity); nothing takes it while holding one of those.
//! - `FlushShared::request` guards what waiters want and what the thread
//!   covered. It is taken alone (by [`Flusher::durable`], and by the thread
//!   only while it picks its target, never across a flush).
//! - The published [`FlushStatus`] is a `watch` channel (its own lock).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::error::{FlushError, StoreError};
use super::stats::StoreStats;

/// Proof that a write happened; pass it to [`Store::durable`](super::Store::durable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a write is durable only after Store::durable(ticket)"]
pub struct Ticket(u64);

/// What the flusher has done so far, published to waiting committers.
#[derive(Debug, Clone, Default)]
struct FlushStatus {
    /// Every ticket up to this one is durable.
    flushed: u64,
    /// The flush meant to cover tickets up to this one failed (when above `flushed`).
    failed_upto: u64,
    /// The error of that failed flush.
    error: Option<Arc<FlushError>>,
}

impl FlushStatus {
    /// The outcome for `ticket`, once there is one.
    fn outcome(&self, ticket: u64) -> Option<Result<(), StoreError>> {
        if self.flushed >= ticket {
            Some(Ok(()))
        } else if self.failed_upto >= ticket {
            let e = self
                .error
                .clone()
                .map_or(StoreError::Closed, StoreError::Flush);
            Some(Err(e))
        } else {
            None
        }
    }
}

/// Requests to the flusher thread.
#[derive(Debug, Default)]
struct FlushRequest {
    /// The highest ticket someone waits for.
    wanted: u64,
    /// The highest ticket a flush has been attempted for.
    covered: u64,
    /// The store is being dropped: the thread exits.
    shutdown: bool,
}

/// State shared between the store and its flusher thread.
struct FlushShared {
    db: sled::Db,
    /// sled's data file (`DIR/db`), for `fdatasync` after each flush: sled
    /// 0.34 syncs its log with `sync_file_range`, which neither flushes the
    /// drive's volatile cache nor the file's size.
    data_file: std::fs::File,
    /// Tickets handed out to writes.
    written: AtomicU64,
    request: parking_lot::Mutex<FlushRequest>,
    wake: parking_lot::Condvar,
    status: tokio::sync::watch::Sender<FlushStatus>,
    /// Commits and their latency (counted here, by the flusher thread).
    stats: StoreStats,
}

impl FlushShared {
    /// sled flush plus `fdatasync` of the data file.
    fn flush_and_sync(&self) -> Result<(), FlushError> {
        self.db.flush().map_err(FlushError::Sled)?;
        self.data_file.sync_data().map_err(FlushError::Sync)
    }

    /// The flusher thread: one flush at a time, each covering every write
    /// ticketed before it began, for as long as someone waits.
    fn run(&self) {
        loop {
            let target = {
                let mut req = self.request.lock();
                while req.wanted <= req.covered && !req.shutdown {
                    self.wake.wait(&mut req);
                }
                if req.shutdown {
                    return;
                }
                // Every write with a ticket up to here is in sled already.
                let target = self.written.load(Ordering::Acquire);
                req.covered = target;
                target
            };
            let started = std::time::Instant::now();
            let result = self.flush_and_sync();
            let took = started.elapsed().as_micros() as u64;
            self.stats.commit_latency_us.observe(took);
            match &result {
                Ok(()) => self.stats.commits.inc(),
                Err(_) => self.stats.commit_failures.inc(),
            }
            self.status.send_modify(|s| match result {
                Ok(()) => s.flushed = s.flushed.max(target),
                Err(e) => {
                    tracing::error!(error = %e, "group flush failed");
                    s.failed_upto = s.failed_upto.max(target);
                    s.error = Some(Arc::new(e));
                }
            });
        }
    }
}

/// The write lock, the ticket counter and the flusher thread of one store.
/// Dropping it stops the thread.
pub(super) struct Flusher {
    shared: Arc<FlushShared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Held by each write from its change to its ticket (see the module docs).
    write_lock: parking_lot::Mutex<()>,
}

/// The write lock, held. Tickets come only from here.
pub(super) struct Writing<'a> {
    _guard: parking_lot::MutexGuard<'a, ()>,
    written: &'a AtomicU64,
}

impl Writing<'_> {
    /// A ticket for the write just made under this lock.
    pub(super) fn ticket(&self) -> Ticket {
        Ticket(self.written.fetch_add(1, Ordering::AcqRel) + 1)
    }
}

impl Flusher {
    /// Starts the flusher thread of `db`, stored in `dir`.
    pub(super) fn start(db: &sled::Db, dir: &Path) -> Result<Flusher, StoreError> {
        let shared = Arc::new(FlushShared {
            db: db.clone(),
            data_file: std::fs::File::open(dir.join("db"))
                .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?,
            written: AtomicU64::new(0),
            request: parking_lot::Mutex::new(FlushRequest::default()),
            wake: parking_lot::Condvar::new(),
            status: tokio::sync::watch::Sender::new(FlushStatus::default()),
            stats: StoreStats::default(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("store-flusher".into())
                .spawn(move || shared.run())
                .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?
        };
        Ok(Flusher {
            shared,
            thread: Some(thread),
            write_lock: parking_lot::Mutex::new(()),
        })
    }

    /// The commit counters.
    pub(super) fn stats(&self) -> &StoreStats {
        &self.shared.stats
    }

    /// The ticket counter (writes made so far).
    pub(super) fn written(&self) -> &AtomicU64 {
        &self.shared.written
    }

    /// The database.
    pub(super) fn db(&self) -> &sled::Db {
        &self.shared.db
    }

    /// Takes the write lock.
    pub(super) fn lock(&self) -> Writing<'_> {
        Writing {
            _guard: self.write_lock.lock(),
            written: &self.shared.written,
        }
    }

    /// Makes one write: `change` runs under the write lock, and its ticket
    /// is taken before the lock is let go.
    pub(super) fn write<R>(
        &self,
        change: impl FnOnce(&Writing<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Ticket), StoreError> {
        let w = self.lock();
        let r = change(&w)?;
        Ok((r, w.ticket()))
    }

    /// A ticket covering every write made so far.
    pub(super) fn barrier(&self) -> Ticket {
        let _w = self.write_lock.lock();
        Ticket(self.shared.written.load(Ordering::Acquire))
    }

    /// Waits until the write behind `ticket` is on disk.
    pub(super) async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let f = &self.shared;
        let mut rx = f.status.subscribe();
        if let Some(r) = rx.borrow().outcome(ticket.0) {
            return r;
        }
        {
            let mut req = f.request.lock();
            if req.wanted < ticket.0 {
                req.wanted = ticket.0;
                f.wake.notify_one();
            }
        }
        let status = rx
            .wait_for(|s| s.outcome(ticket.0).is_some())
            .await
            .map_err(|_| StoreError::Closed)?;
        status.outcome(ticket.0).unwrap_or(Err(StoreError::Closed))
    }

    /// Flushes everything now, with an `fdatasync` of the data file (blocking).
    pub(super) fn flush_blocking(&self) -> Result<(), StoreError> {
        self.shared
            .flush_and_sync()
            .map_err(|e| StoreError::Flush(Arc::new(e)))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.request.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mark, open, setup, TempDir};
    use super::super::Status;

    #[tokio::test]
    async fn durable_marks_survive_reopening() {
        let dir = TempDir::new("reopen");
        {
            let store = open(&dir);
            setup(&store, &["a", "b"]);
            let (recs, t1) = store
                .mark("s1", "t1", &[mark("a", Status::Present)])
                .unwrap();
            assert_eq!(recs.len(), 1);
            assert_eq!(recs[0].marked_by.as_deref(), Some("t1"));
            let (_, t2) = store
                .mark("s1", "t1", &[mark("b", Status::Present)])
                .unwrap();
            // Waiting on the later ticket first covers the earlier one too.
            store.durable(t2).await.unwrap();
            store.durable(t1).await.unwrap();
            store.durable(store.barrier()).await.unwrap();
        }
        // Dropping the store stopped its flusher and released sled's lock.
        let store = open(&dir);
        let st = store.stats("s1").unwrap();
        assert_eq!((st.present, st.absent, st.total), (2, 0, 2));
    }

    #[tokio::test]
    async fn concurrent_waiters_share_flushes() {
        let dir = TempDir::new("group");
        let store = open(&dir);
        let students: Vec<String> = (0..200).map(|i| format!("s{i:03}")).collect();
        let refs: Vec<&str> = students.iter().map(String::as_str).collect();
        setup(&store, &refs);
        let mut tasks = Vec::new();
        for s in students {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (_, t) = store
                    .mark("s1", "t1", &[mark(&s, Status::Present)])
                    .unwrap();
                store.durable(t).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.stats("s1").unwrap().present, 200);
    }
}
