//! Connection state recovery: recent packets and the sessions of sockets
//! that dropped, so that a client reconnecting in time gets its id, rooms and
//! data back and receives what it missed.
//!
//! Design: one `RecoveryStore` per namespace, owned by the local adapter
//! (see [`super::adapter`]), always answers from memory: a packet log in
//! broadcast order and a session map, both bounded by age
//! ([`RecoveryConfig::max_disconnection`]) and the log by size
//! ([`RecoveryConfig::max_packets`], [`RecoveryConfig::max_bytes`]; oldest
//! dropped). With a durable [`RecoveryLog`] configured, the store also
//! writes through to that namespace's journal in the log (one queued record
//! per broadcast, not per recipient; one per saved or restored session;
//! sled sees them in batches on the log's thread) and
//! starts from what the journal kept, so offsets, packets and sessions
//! survive a restart. Keeping the in-memory log as the read side means a
//! restore never reads disk, and the durable variant changes nothing on
//! the broadcast path but the one append; the flushes happen on the log's
//! own thread.
//!
//! Offsets are `<tag>-<seq>`: the tag distinguishes this log's offsets from
//! any other's (a random tag per process without a durable log; the log's
//! persisted tag with one), the sequence number orders packets.
//!
//! Locks: the packet log and the session map each have one mutex; neither
//! is held while the other is taken, except that `restore` reads the log
//! after the session map's lock is released. Journal writes happen with
//! neither held (sled has its own concurrency).

mod log;
mod record;

pub use log::{RecoveryError, RecoveryLog, RecoveryLogOptions};

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use serde_json::Value;

use super::adapter::{Restored, Session};
use super::rooms::Room;
use super::socket::Extensions;
use crate::engine::Frame;
use log::{now_ms, Journal};

/// Recovery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long after a disconnection a session can still be recovered (default 2 min).
    pub max_disconnection: Duration,
    /// Whether a recovered socket skips the namespace's middlewares (default true).
    pub skip_middlewares: bool,
    /// Most packets kept per namespace (default 100,000); the oldest go first.
    pub max_packets: usize,
    /// Most bytes of kept packets per namespace, counted as their Engine.IO
    /// packets' sizes (default 64 MiB); the oldest go first.
    pub max_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

impl RecoveryConfig {
    fn max_age_ms(&self) -> u64 {
        self.max_disconnection.as_millis() as u64
    }
}

struct StoredPacket {
    seq: u64,
    at: u64,
    bytes: usize,
    rooms: Vec<Room>,
    except: Vec<Room>,
    frames: Vec<Frame>,
}

/// The packet log and its running size.
#[derive(Default)]
struct PacketLog {
    q: VecDeque<StoredPacket>,
    bytes: usize,
}

/// A disconnected socket's state and when it was saved (Unix ms).
struct SavedSession {
    session: Session,
    at: u64,
}

/// Per-namespace store of recent packets and recoverable sessions.
pub(crate) struct RecoveryStore {
    config: RecoveryConfig,
    /// Distinguishes this log's offsets from any other's.
    tag: String,
    counter: Arc<AtomicU64>,
    packets: Mutex<PacketLog>,
    /// Highest sequence number dropped from `packets` (0: none yet).
    pruned: AtomicU64,
    /// Offset ranges (inclusive) that were lost to a crash: never recovered.
    holes: Vec<(u64, u64)>,
    sessions: Mutex<HashMap<Arc<str>, SavedSession>>,
    journal: Option<Arc<Journal>>,
    /// Held shared by a broadcast from its store to its last delivery, and
    /// exclusively while a recovered socket joins its rooms and catches up
    /// (see [`RecoveryStore::resume`]).
    gate: RwLock<()>,
}

/// The socket data that persists: the `serde_json::Value` in its
/// [`Extensions`], if any.
fn extensions_with(data: Option<Value>) -> Arc<Extensions> {
    let ext = Extensions::default();
    if let Some(v) = data {
        ext.insert(v);
    }
    Arc::new(ext)
}

impl RecoveryStore {
    /// An in-memory store (a fresh offset tag for this process).
    pub fn new(config: RecoveryConfig) -> RecoveryStore {
        RecoveryStore {
            config,
            tag: crate::util::random_id(6),
            counter: Arc::new(AtomicU64::new(1)),
            packets: Mutex::new(PacketLog::default()),
            pruned: AtomicU64::new(0),
            holes: Vec::new(),
            sessions: Mutex::new(HashMap::new()),
            journal: None,
            gate: RwLock::new(()),
        }
    }

    /// A store writing through to namespace `ns` of `log`, starting from
    /// what it kept. If the journal cannot be opened, the error is logged
    /// and the namespace recovers from memory only.
    pub fn durable(config: RecoveryConfig, log: &RecoveryLog, ns: &str) -> RecoveryStore {
        let (journal, loaded) = match log.journal(ns, &config) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(ns, error = %e, "recovery log unavailable: in memory only");
                return RecoveryStore::new(config);
            }
        };
        let mut packets = PacketLog::default();
        for (seq, p) in loaded.packets {
            let bytes = p.frames.iter().map(Frame::len).sum();
            packets.bytes += bytes;
            packets.q.push_back(StoredPacket {
                seq,
                at: p.at,
                bytes,
                rooms: p.rooms,
                except: p.except,
                frames: p.frames,
            });
        }
        let sessions = loaded
            .sessions
            .into_iter()
            .map(|(pid, s)| {
                let session = Session {
                    pid: pid.clone(),
                    sid: s.sid,
                    rooms: s.rooms,
                    data: extensions_with(s.data),
                };
                (pid, SavedSession { session, at: s.at })
            })
            .collect();
        let counter = journal.counter().clone();
        counter.store(loaded.next, Ordering::Relaxed);
        RecoveryStore {
            config,
            tag: journal.tag().to_string(),
            counter,
            packets: Mutex::new(packets),
            pruned: AtomicU64::new(loaded.pruned),
            holes: loaded.holes,
            sessions: Mutex::new(sessions),
            journal: Some(journal),
            gate: RwLock::new(()),
        }
    }

    /// A new packet offset: its sequence number and its wire form.
    pub fn next_offset(&self) -> (u64, String) {
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        (seq, format!("{}-{}", self.tag, seq))
    }

    fn parse_offset(&self, offset: &str) -> Option<u64> {
        let (tag, seq) = offset.rsplit_once('-')?;
        let seq: u64 = (tag == self.tag).then(|| seq.parse().ok()).flatten()?;
        let known = seq < self.counter.load(Ordering::Relaxed);
        let lost = self.holes.iter().any(|&(a, b)| (a..=b).contains(&seq));
        (known && !lost).then_some(seq)
    }

    /// Keeps a broadcast packet (and appends it to the journal).
    pub fn store(&self, seq: u64, rooms: Vec<Room>, except: Vec<Room>, frames: Vec<Frame>) {
        let now = now_ms();
        if let Some(j) = &self.journal {
            j.append(seq, now, &rooms, &except, &frames);
        }
        let bytes = frames.iter().map(Frame::len).sum();
        let horizon = now.saturating_sub(self.config.max_age_ms());
        let mut log = self.packets.lock();
        log.bytes += bytes;
        log.q.push_back(StoredPacket {
            seq,
            at: now,
            bytes,
            rooms,
            except,
            frames,
        });
        let mut pruned = 0;
        while log.q.front().is_some_and(|p| {
            p.at < horizon
                || log.q.len() > self.config.max_packets
                || log.bytes > self.config.max_bytes
        }) {
            if let Some(p) = log.q.pop_front() {
                log.bytes -= p.bytes;
                pruned = pruned.max(p.seq);
            }
        }
        drop(log);
        if pruned > 0 {
            self.pruned.fetch_max(pruned, Ordering::Relaxed);
            if let Some(j) = &self.journal {
                j.prune_upto(pruned);
            }
        }
    }

    /// Keeps the session of a socket that dropped (or of a connected one at
    /// shutdown), replacing any under the same pid.
    pub fn save_session(&self, session: Session) {
        let now = now_ms();
        let horizon = now.saturating_sub(self.config.max_age_ms());
        if let Some(j) = &self.journal {
            let data = session.data.get::<Value>();
            let rec = record::encode_session(now, &session.sid, &session.rooms, data.as_ref());
            j.save_session(&session.pid, rec);
        }
        let mut expired = Vec::new();
        {
            let mut s = self.sessions.lock();
            s.retain(|pid, v| {
                let keep = v.at >= horizon;
                if !keep {
                    expired.push(pid.clone());
                }
                keep
            });
            s.insert(session.pid.clone(), SavedSession { session, at: now });
        }
        if let Some(j) = &self.journal {
            expired.iter().for_each(|pid| j.remove_session(pid));
        }
    }

    /// Takes the session `pid` if it is still recoverable, with the frames of
    /// every packet after `offset` that would have reached it.
    pub fn restore(&self, pid: &str, offset: &str) -> Option<Restored> {
        let seq = self.parse_offset(offset)?;
        let saved = self.sessions.lock().remove(pid)?;
        if let Some(j) = &self.journal {
            j.remove_session(pid);
        }
        if seq < self.pruned.load(Ordering::Relaxed) {
            // Packets after the client's offset are gone: it cannot catch up.
            return None;
        }
        if now_ms().saturating_sub(saved.at) > self.config.max_age_ms() {
            return None;
        }
        let session = saved.session;
        let (missed, upto) = self.frames_after(seq, &session.rooms);
        Some(Restored {
            session,
            missed,
            upto,
        })
    }

    /// The frames of every kept packet after `seq` that would have reached
    /// a socket in `rooms`, and the highest sequence number looked at.
    fn frames_after(&self, seq: u64, rooms: &[Room]) -> (Vec<Frame>, u64) {
        let in_rooms = |targets: &[Room]| targets.iter().any(|r| rooms.contains(r));
        let mut frames = Vec::new();
        let mut upto = seq;
        for p in self.packets.lock().q.iter().filter(|p| p.seq > seq) {
            upto = upto.max(p.seq);
            let targeted = p.rooms.is_empty() || in_rooms(&p.rooms);
            // A broadcast "from" a socket excludes its own room, which the
            // session's rooms include.
            let excluded = in_rooms(&p.except);
            if targeted && !excluded {
                frames.extend(p.frames.iter().cloned());
            }
        }
        (frames, upto)
    }

    /// Held by a broadcast across its store and its deliveries.
    pub fn broadcasting(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    /// Runs `join` (the recovered socket joins its rooms) with no broadcast
    /// in progress, then returns `missed` followed by what was broadcast to
    /// `rooms` after `upto` meanwhile, and calls `send` with it before any
    /// later broadcast can reach the socket: each missed packet is
    /// delivered once, in order, whether it was broadcast before the
    /// restore, between the restore and the join, or after.
    pub fn resume(
        &self,
        rooms: &[Room],
        mut missed: Vec<Frame>,
        upto: u64,
        join: impl FnOnce(),
        send: impl FnOnce(Vec<Frame>),
    ) {
        let _gate = self.gate.write();
        join();
        missed.extend(self.frames_after(upto, rooms).0);
        send(missed);
    }
}

#[cfg(test)]
mod tests;
