//! The durable recovery log: a sled database of its own (in a directory the
//! server is configured with; never the application's store), one pair of
//! trees per namespace, and a group-flush thread.
//!
//! Layout: tree `packets:<ns>` maps a packet's sequence number (big-endian)
//! to its [record](super::record); tree `sessions:<ns>` maps a pid to a
//! session record; tree `meta` holds the offset tag (`tag`), the clean
//! shutdown marker (`clean`), and per namespace the next sequence number
//! (`next:<ns>`), the highest pruned one (`pruned:<ns>`) and the offset
//! ranges lost to crashes (`holes:<ns>`).
//!
//! Durability: a write (packet, session, session removal) is encoded and
//! queued on its journal, in order; that push is all a broadcast pays. The
//! flusher thread wakes every [`RecoveryLogOptions::flush_interval`] and, if
//! anything was written, hands each journal's queue to sled as one batch
//! per tree (packets first), removes the pruned packets, records the
//! counters, flushes sled and `fdatasync`s its data file (sled 0.34 syncs its log with
//! `sync_file_range` only). A SIGKILL therefore loses at most what was
//! written in the last interval (plus the flush in progress), and sled's
//! log replays a prefix of the writes, so what survives is everything up to
//! some point, in order. A queue that reaches 65,536 writes before the
//! flusher comes is applied by the writer (backpressure instead of growth).
//! [`RecoveryLog::close`] (graceful shutdown) makes
//! everything durable and marks the log clean.
//!
//! Offsets after a crash: sessions that survive a crash were saved before
//! the last flush, so their offsets are at most the last kept sequence
//! number; sequence numbers handed out after that flush are lost. To never
//! reuse one, a start after an unclean stop skips the counter ahead by
//! [`CRASH_GAP`] and records the skipped range as a hole: an offset inside
//! a hole is not recovered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::record::{self, PacketRecord, SessionRecord};
use super::RecoveryConfig;
use crate::socketio::rooms::Room;

/// How far the sequence counter jumps after an unclean stop.
pub(crate) const CRASH_GAP: u64 = 1 << 32;

/// Why the recovery log could not be opened or made durable.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The directory could not be created or its data file opened.
    #[error("recovery log directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// sled failed (open, write or flush).
    #[error("recovery log: {0}")]
    Sled(#[from] sled::Error),
    /// `fdatasync` of the data file failed.
    #[error("recovery log sync: {0}")]
    Sync(std::io::Error),
}

/// Settings of a [`RecoveryLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryLogOptions {
    /// How often written records are flushed to disk (default 50 ms): the
    /// most a SIGKILL or power loss can lose.
    pub flush_interval: Duration,
    /// sled's page cache (default 16 MiB).
    pub cache_bytes: u64,
}

impl Default for RecoveryLogOptions {
    fn default() -> Self {
        RecoveryLogOptions {
            flush_interval: Duration::from_millis(50),
            cache_bytes: 16 << 20,
        }
    }
}

/// State shared by the log's handles, its journals and its flusher thread.
struct Shared {
    db: sled::Db,
    meta: sled::Tree,
    data_file: std::fs::File,
    tag: String,
    /// Whether the previous process closed the log cleanly.
    was_clean: bool,
    /// Written since the last flush.
    dirty: AtomicBool,
    /// Closed: writes are ignored, the flusher has stopped.
    closed: AtomicBool,
    journals: Mutex<Vec<Weak<Journal>>>,
    /// Set to stop the flusher thread, with its wake-up.
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// Removes pruned packets, records counters, flushes, syncs.
    fn flush(&self) -> Result<(), RecoveryError> {
        self.dirty.store(false, Ordering::Relaxed);
        let journals: Vec<Arc<Journal>> = {
            let mut js = self.journals.lock();
            js.retain(|j| j.strong_count() > 0);
            js.iter().filter_map(Weak::upgrade).collect()
        };
        for j in journals {
            j.checkpoint(&self.meta)?;
        }
        self.db.flush()?;
        self.data_file.sync_data().map_err(RecoveryError::Sync)
    }

    /// The flusher thread. It holds the log weakly, so that dropping every
    /// handle without [`RecoveryLog::close`] still releases the database.
    fn run(log: Weak<Shared>, stop: Arc<(Mutex<bool>, Condvar)>, every: Duration) {
        let (lock, wake) = &*stop;
        let mut stopped = lock.lock();
        while !*stopped {
            wake.wait_for(&mut stopped, every);
            if *stopped {
                break;
            }
            let Some(shared) = log.upgrade() else { break };
            if shared.dirty.load(Ordering::Relaxed) {
                drop(stopped);
                if let Err(e) = shared.flush() {
                    tracing::error!(error = %e, "recovery log flush failed");
                    shared.dirty.store(true, Ordering::Relaxed);
                }
                drop(shared);
                stopped = lock.lock();
            }
        }
    }

    fn written(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

/// A durable recovery log: its own sled database, flushed and synced by its
/// own thread every [`RecoveryLogOptions::flush_interval`] (see the
/// `recovery` module docs and SPEC.md §3.10); a cheap handle to clone.
/// Open it once per directory and give it to the server with
/// [`SocketIoConfigBuilder::recovery_log`](crate::socketio::SocketIoConfigBuilder::recovery_log);
/// [`SocketIo::shutdown`](crate::socketio::SocketIo::shutdown) closes it.
#[derive(Clone)]
pub struct RecoveryLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RecoveryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryLog")
            .field("tag", &self.shared.tag)
            .field("was_clean", &self.shared.was_clean)
            .finish_non_exhaustive()
    }
}

fn meta_u64(meta: &sled::Tree, key: &str) -> Result<u64, RecoveryError> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl RecoveryLog {
    /// Opens (or creates) the log in `dir` and starts its flusher thread.
    /// Only one process may have a directory open at a time.
    pub fn open(dir: &Path, options: RecoveryLogOptions) -> Result<RecoveryLog, RecoveryError> {
        let dir_err = |source| RecoveryError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            // Our flusher decides when (and fsyncs); sled's own is off.
            .flush_every_ms(None)
            .open()?;
        let data_file = std::fs::File::open(dir.join("db")).map_err(dir_err)?;
        let meta = db.open_tree("meta")?;
        let tag = match meta.get("tag")? {
            Some(t) => String::from_utf8_lossy(&t).into_owned(),
            None => {
                let t = crate::util::random_id(6);
                meta.insert("tag", t.as_bytes())?;
                t
            }
        };
        // A fresh directory counts as clean: there is nothing to lose.
        let was_clean = meta.remove("clean")?.is_some() || db.tree_names().len() <= 2;
        db.flush()?;
        data_file.sync_data().map_err(RecoveryError::Sync)?;
        let shared = Arc::new(Shared {
            db,
            meta,
            data_file,
            tag,
            was_clean,
            dirty: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            journals: Mutex::new(Vec::new()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            thread: Mutex::new(None),
        });
        let (log, stop) = (Arc::downgrade(&shared), shared.stop.clone());
        let handle = std::thread::Builder::new()
            .name("recovery-flush".into())
            .spawn(move || Shared::run(log, stop, options.flush_interval))
            .map_err(dir_err)?;
        *shared.thread.lock() = Some(handle);
        Ok(RecoveryLog { shared })
    }

    /// [`RecoveryLog::open`], retrying for up to `wait` while the directory
    /// is still locked by a handle of this process being let go (sled
    /// releases its lock once its own I/O threads are done): for an
    /// in-process restart.
    pub fn open_within(
        dir: &Path,
        options: RecoveryLogOptions,
        wait: Duration,
    ) -> Result<RecoveryLog, RecoveryError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match RecoveryLog::open(dir, options) {
                Err(RecoveryError::Sled(sled::Error::Io(_)))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Whether the process that last had the log open closed it cleanly.
    pub fn was_clean(&self) -> bool {
        self.shared.was_clean
    }

    /// The offset tag, kept across restarts.
    pub fn tag(&self) -> &str {
        &self.shared.tag
    }

    /// Flushes everything written so far and waits until it is on disk.
    pub fn flush(&self) -> Result<(), RecoveryError> {
        self.shared.flush()
    }

    /// Stops the flusher, makes everything durable and marks the log clean;
    /// later writes are ignored. Idempotent.
    pub fn close(&self) -> Result<(), RecoveryError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.shared.stop.0.lock() = true;
        self.shared.stop.1.notify_all();
        if let Some(h) = self.shared.thread.lock().take() {
            let _ = h.join();
        }
        self.shared.flush()?;
        self.shared.meta.insert("clean", &[1u8])?;
        self.shared.flush()
    }

    /// The journal of namespace `ns` and what it kept, bounded by `config`.
    pub(crate) fn journal(
        &self,
        ns: &str,
        config: &RecoveryConfig,
    ) -> Result<(Arc<Journal>, Loaded), RecoveryError> {
        let (journal, loaded) = Journal::open(&self.shared, ns, config)?;
        self.shared.journals.lock().push(Arc::downgrade(&journal));
        Ok((journal, loaded))
    }
}

/// What a namespace's journal held at start, already bounded by age and size.
pub(crate) struct Loaded {
    /// Kept packets, in sequence order.
    pub packets: Vec<(u64, PacketRecord)>,
    /// Kept sessions.
    pub sessions: Vec<(Arc<str>, SessionRecord)>,
    /// The next sequence number to hand out.
    pub next: u64,
    /// The highest sequence number no longer kept.
    pub pruned: u64,
    /// Offset ranges (inclusive) lost to crashes.
    pub holes: Vec<(u64, u64)>,
}

/// A write waiting for the flusher, in the order it was made.
enum Op {
    /// A packet record under its sequence number.
    Packet(u64, Vec<u8>),
    /// A session record under its pid, or its removal.
    Session(Arc<str>, Option<Vec<u8>>),
}

/// Writes queued beyond this are applied by the writer itself (backpressure
/// when the flusher falls behind).
const MAX_PENDING: usize = 65_536;

/// One namespace's part of the log.
pub(crate) struct Journal {
    shared: Arc<Shared>,
    ns: String,
    packets: sled::Tree,
    sessions: sled::Tree,
    /// Writes not yet handed to sled (a push under a short lock is all a
    /// broadcast pays; the flusher applies them in one batch per tree).
    pending: Mutex<Vec<Op>>,
    /// Serialises applying `pending`, so batches reach sled in order.
    applying: Mutex<()>,
    /// Packets up to here are pruned (in memory)...
    pruned: AtomicU64,
    /// ...and up to here removed from the tree.
    removed: AtomicU64,
    /// The sequence counter of the namespace's store.
    next: Arc<AtomicU64>,
}

impl Journal {
    fn open(
        shared: &Arc<Shared>,
        ns: &str,
        config: &RecoveryConfig,
    ) -> Result<(Arc<Journal>, Loaded), RecoveryError> {
        let packets = shared.db.open_tree(format!("packets:{ns}"))?;
        let sessions = shared.db.open_tree(format!("sessions:{ns}"))?;
        let meta = &shared.meta;
        let now = now_ms();
        let horizon = now.saturating_sub(config.max_disconnection.as_millis() as u64);
        let mut pruned = meta_u64(meta, &format!("pruned:{ns}"))?;
        let mut kept: std::collections::VecDeque<(u64, PacketRecord, usize)> = Default::default();
        let mut last = 0;
        for item in packets.iter() {
            let (k, v) = item?;
            let seq = <[u8; 8]>::try_from(k.as_ref()).map_or(0, u64::from_be_bytes);
            last = last.max(seq);
            match record::decode_packet(&v) {
                Ok(p) if seq > pruned && p.at >= horizon => {
                    let bytes = p.frames.iter().map(|f| f.len()).sum();
                    kept.push_back((seq, p, bytes));
                }
                Ok(_) => pruned = pruned.max(seq),
                Err(e) => {
                    tracing::warn!(ns, seq, error = %e, "recovery log: unreadable packet dropped");
                    pruned = pruned.max(seq);
                }
            }
        }
        let mut bytes: usize = kept.iter().map(|p| p.2).sum();
        while kept.len() > config.max_packets || bytes > config.max_bytes {
            let Some((seq, _, b)) = kept.pop_front() else {
                break;
            };
            bytes -= b;
            pruned = pruned.max(seq);
        }
        // Sequence numbers from `base` on may have been handed out and lost.
        let base = last.max(pruned) + 1;
        let mut next = meta_u64(meta, &format!("next:{ns}"))?.max(base);
        let holes_key = format!("holes:{ns}");
        let mut holes: Vec<(u64, u64, u64)> = meta
            .get(&holes_key)?
            .map(|v| {
                v.chunks_exact(24)
                    .map(|c| {
                        let n = |i: usize| {
                            u64::from_be_bytes(c[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]))
                        };
                        (n(0), n(1), n(2))
                    })
                    .collect()
            })
            .unwrap_or_default();
        holes.retain(|h| h.0 >= horizon);
        if !shared.was_clean {
            holes.push((now, base, next + CRASH_GAP - 1));
            next += CRASH_GAP;
        }
        let encoded: Vec<u8> = holes
            .iter()
            .flat_map(|h| [h.0, h.1, h.2])
            .flat_map(u64::to_be_bytes)
            .collect();
        meta.insert(holes_key, encoded)?;
        meta.insert(format!("next:{ns}"), &next.to_be_bytes())?;
        let mut loaded_sessions = Vec::new();
        for item in sessions.iter() {
            let (k, v) = item?;
            let pid: Arc<str> = Arc::from(String::from_utf8_lossy(&k).as_ref());
            match record::decode_session(&v) {
                Ok(s) if s.at >= horizon => loaded_sessions.push((pid, s)),
                Ok(_) => {
                    sessions.remove(k)?;
                }
                Err(e) => {
                    tracing::warn!(ns, error = %e, "recovery log: unreadable session dropped");
                    sessions.remove(k)?;
                }
            }
        }
        let journal = Arc::new(Journal {
            shared: shared.clone(),
            ns: ns.to_string(),
            packets,
            sessions,
            pending: Mutex::new(Vec::new()),
            applying: Mutex::new(()),
            pruned: AtomicU64::new(pruned),
            removed: AtomicU64::new(0),
            next: Arc::new(AtomicU64::new(next)),
        });
        // The counters (and a new lost range) are on disk before any
        // offset of this process is handed out.
        journal.checkpoint(meta)?;
        shared.db.flush()?;
        shared.data_file.sync_data().map_err(RecoveryError::Sync)?;
        let loaded = Loaded {
            packets: kept.into_iter().map(|(s, p, _)| (s, p)).collect(),
            sessions: loaded_sessions,
            next,
            pruned,
            holes: holes.iter().map(|h| (h.1, h.2)).collect(),
        };
        Ok((journal, loaded))
    }

    /// The counter the store hands sequence numbers out of (the journal
    /// records it at each flush).
    pub fn counter(&self) -> &Arc<AtomicU64> {
        &self.next
    }

    /// The log's offset tag.
    pub fn tag(&self) -> &str {
        &self.shared.tag
    }

    fn live(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
    }

    /// Queues a write for the flusher; past [`MAX_PENDING`], applies the
    /// queue here.
    fn push(&self, op: Op) {
        if !self.live() {
            return;
        }
        let full = {
            let mut q = self.pending.lock();
            q.push(op);
            q.len() >= MAX_PENDING
        };
        if full {
            if let Err(e) = self.apply_pending() {
                tracing::error!(ns = %self.ns, error = %e, "recovery log write failed");
            }
        }
        self.shared.written();
    }

    /// Hands every queued write to sled, in order (one batch per tree).
    fn apply_pending(&self) -> Result<(), sled::Error> {
        let _order = self.applying.lock();
        let ops = std::mem::take(&mut *self.pending.lock());
        if ops.is_empty() {
            return Ok(());
        }
        let (mut packets, mut sessions) = (sled::Batch::default(), sled::Batch::default());
        for op in ops {
            match op {
                Op::Packet(seq, rec) => packets.insert(&seq.to_be_bytes()[..], rec),
                Op::Session(pid, Some(rec)) => sessions.insert(pid.as_bytes(), rec),
                Op::Session(pid, None) => sessions.remove(pid.as_bytes()),
            }
        }
        // Packets first: a session never becomes durable before the
        // packets broadcast ahead of it.
        self.packets.apply_batch(packets)?;
        self.sessions.apply_batch(sessions)
    }

    /// Appends a broadcast packet (queued; one record per broadcast).
    pub fn append(
        &self,
        seq: u64,
        at: u64,
        rooms: &[Room],
        except: &[Room],
        frames: &[crate::engine::Frame],
    ) {
        if self.live() {
            let rec = record::encode_packet(at, rooms, except, frames);
            self.push(Op::Packet(seq, rec));
        }
    }

    /// Notes that packets up to `seq` were pruned (removed at the next flush).
    pub fn prune_upto(&self, seq: u64) {
        self.pruned.fetch_max(seq, Ordering::Relaxed);
    }

    /// Writes a session.
    pub fn save_session(&self, pid: &Arc<str>, rec: Vec<u8>) {
        self.push(Op::Session(pid.clone(), Some(rec)));
    }

    /// Removes a session (restored or expired).
    pub fn remove_session(&self, pid: &str) {
        self.push(Op::Session(Arc::from(pid), None));
    }

    /// Applies the queued writes, removes the pruned packets from the tree
    /// and records the counters.
    fn checkpoint(&self, meta: &sled::Tree) -> Result<(), RecoveryError> {
        // Read first: every packet pruned by now was queued before the
        // queue is taken below.
        let pruned = self.pruned.load(Ordering::Relaxed);
        self.apply_pending()?;
        if pruned > self.removed.load(Ordering::Relaxed) {
            let mut batch = sled::Batch::default();
            for k in self.packets.range(..=pruned.to_be_bytes()).keys() {
                batch.remove(k?);
            }
            self.packets.apply_batch(batch)?;
            meta.insert(format!("pruned:{}", self.ns), &pruned.to_be_bytes())?;
            self.removed.store(pruned, Ordering::Relaxed);
        }
        let next = self.next.load(Ordering::Relaxed);
        meta.insert(format!("next:{}", self.ns), &next.to_be_bytes())?;
        Ok(())
    }
}
