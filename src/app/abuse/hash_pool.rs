//! A fixed pool of threads for password hashing. argon2id with the crate's
//! default parameters (m = 19,456 KiB, t = 2, p = 1) allocates 19 MiB per
//! hash: running hashes on tokio's blocking pool (up to 512 threads) let
//! memory grow with the number of concurrent logins (gigabytes at 128).
//! Here at most `workers` hashes run at once, on threads of their own, and
//! at most `queue` wait; a request beyond that is refused at once
//! ([`HashBusy`], HTTP 429), so memory is bounded by `workers × 19 MiB`.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue was full (or the pool is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is busy")]
pub struct HashBusy;

/// Threads that run password hashes, with a bounded queue.
pub struct HashPool {
    tx: SyncSender<Job>,
    workers: usize,
}

impl HashPool {
    /// Starts `workers` threads (at least one) with room for `queue`
    /// waiting jobs.
    pub fn new(workers: usize, queue: usize) -> HashPool {
        let workers = workers.max(1);
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rollcall-hash-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a hash worker");
            }
        }
        HashPool { tx, workers }
    }

    /// How many hashes run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `f` on a worker and waits for its result; [`HashBusy`] at once
    /// when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashBusy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        match self.tx.try_send(job) {
            Ok(()) => result.await.map_err(|_| HashBusy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(HashBusy),
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = rx.lock().recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn runs_at_most_workers_at_once_and_refuses_beyond_the_queue() {
        let pool = Arc::new(HashPool::new(2, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(HashBusy) => busy += 1,
            }
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        // 2 running + 3 queued at most when all 12 arrive together.
        assert!((2..=5).contains(&ok), "ok = {ok}");
        assert_eq!(ok + busy, 12);
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
