//! Connection state recovery: recent packets and the sessions of sockets
//! that dropped, so that a client reconnecting in time gets its id, rooms and
//! data back and receives what it missed. The [`RecoveryStore`] is the
//! local adapter's (see [`super::adapter`]): the seam's
//! `persist_session` / `restore_session` are the two calls a durable log
//! would implement instead.
//!
//! Locks: the packet log and the session map each have one mutex; neither
//! is held while the other is taken, except that `restore` reads the log
//! after the session map's lock is released.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::adapter::{Restored, Session};
use super::rooms::Room;
use crate::engine::Frame;

/// Recovery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long after a disconnection a session can still be recovered (default 2 min).
    pub max_disconnection: Duration,
    /// Whether a recovered socket skips the namespace's middlewares (default true).
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection: Duration::from_secs(120),
            skip_middlewares: true,
        }
    }
}

struct StoredPacket {
    seq: u64,
    at: Instant,
    rooms: Vec<Room>,
    except: Vec<Room>,
    frames: Vec<Frame>,
}

/// A disconnected socket's state and when it was saved.
struct SavedSession {
    session: Session,
    at: Instant,
}

/// Per-namespace store of recent packets and recoverable sessions.
pub(crate) struct RecoveryStore {
    config: RecoveryConfig,
    /// Distinguishes this process's offsets from an earlier one's.
    tag: String,
    counter: AtomicU64,
    packets: Mutex<VecDeque<StoredPacket>>,
    /// Highest sequence number dropped from `packets` (0: none yet).
    pruned: AtomicU64,
    sessions: Mutex<HashMap<Arc<str>, SavedSession>>,
}

impl RecoveryStore {
    pub fn new(config: RecoveryConfig) -> RecoveryStore {
        RecoveryStore {
            config,
            tag: crate::util::random_id(6),
            counter: AtomicU64::new(1),
            packets: Mutex::new(VecDeque::new()),
            pruned: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// A new packet offset: its sequence number and its wire form.
    pub fn next_offset(&self) -> (u64, String) {
        let seq = self.counter.fetch_add(1, Ordering::Relaxed);
        (seq, format!("{}-{}", self.tag, seq))
    }

    fn parse_offset(&self, offset: &str) -> Option<u64> {
        let (tag, seq) = offset.rsplit_once('-')?;
        (tag == self.tag).then(|| seq.parse().ok()).flatten()
    }

    pub fn store(&self, seq: u64, rooms: Vec<Room>, except: Vec<Room>, frames: Vec<Frame>) {
        let now = Instant::now();
        let mut q = self.packets.lock();
        while q
            .front()
            .is_some_and(|p| now.duration_since(p.at) > self.config.max_disconnection)
        {
            if let Some(p) = q.pop_front() {
                self.pruned.fetch_max(p.seq, Ordering::Relaxed);
            }
        }
        q.push_back(StoredPacket {
            seq,
            at: now,
            rooms,
            except,
            frames,
        });
    }

    pub fn save_session(&self, session: Session) {
        let now = Instant::now();
        let mut s = self.sessions.lock();
        s.retain(|_, v| now.duration_since(v.at) <= self.config.max_disconnection);
        s.insert(session.pid.clone(), SavedSession { session, at: now });
    }

    /// Takes the session `pid` if it is still recoverable, with the frames of
    /// every packet after `offset` that would have reached it.
    pub fn restore(&self, pid: &str, offset: &str) -> Option<Restored> {
        let seq = self.parse_offset(offset)?;
        let saved = self.sessions.lock().remove(pid)?;
        if seq < self.pruned.load(Ordering::Relaxed) {
            // Packets after the client's offset are gone: it cannot catch up.
            return None;
        }
        if saved.at.elapsed() > self.config.max_disconnection {
            return None;
        }
        let session = saved.session;
        let in_rooms = |rooms: &[Room]| rooms.iter().any(|r| session.rooms.contains(r));
        let mut frames = Vec::new();
        for p in self.packets.lock().iter().filter(|p| p.seq > seq) {
            let targeted = p.rooms.is_empty() || in_rooms(&p.rooms);
            // A broadcast "from" a socket excludes its own room, which the
            // session's rooms include.
            let excluded = in_rooms(&p.except);
            if targeted && !excluded {
                frames.extend(p.frames.iter().cloned());
            }
        }
        Some(Restored {
            session,
            missed: frames,
        })
    }
}
