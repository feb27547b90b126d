//! Broadcasts: one packet, encoded once, queued on every selected socket.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::namespace::Namespace;
use super::packet::{encode_event, Payload};
use super::rooms::Room;
use super::socket::{AckError, Socket};

/// Selects sockets of a namespace (by rooms, minus excluded rooms) and acts on
/// them: emit, emit with acks, fetch, join, leave, disconnect.
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    rooms: Vec<Room>,
    except: Vec<Room>,
    except_sid: Option<Arc<str>>,
    volatile: bool,
    timeout: Duration,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>, rooms: Vec<Room>) -> BroadcastOperator {
        BroadcastOperator {
            ns,
            rooms,
            except: Vec::new(),
            except_sid: None,
            volatile: false,
            timeout: Duration::from_secs(10),
        }
    }

    /// Adds a target room.
    pub fn to(mut self, room: &str) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Excludes the sockets in `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.except.push(room.into());
        self
    }

    pub(crate) fn except_socket(mut self, id: Arc<str>) -> Self {
        self.except_sid = Some(id);
        self
    }

    /// Drops the packet for any socket that cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Sets the timeout of [`BroadcastOperator::emit_with_ack`] (default 10 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Calls `f` for every selected socket, reading room membership from
    /// snapshots so that no registry lock is held while `f` runs.
    fn for_each(&self, mut f: impl FnMut(&Arc<Socket>)) {
        let excluded: HashSet<Arc<str>> = self
            .except
            .iter()
            .filter_map(|r| self.ns.rooms().members(r))
            .flat_map(|m| m.iter().map(|s| s.id_arc().clone()).collect::<Vec<_>>())
            .collect();
        let skip = |s: &Arc<Socket>| {
            self.except_sid.as_deref() == Some(s.id()) || excluded.contains(s.id())
        };
        match self.rooms.len() {
            0 => self
                .ns
                .sockets()
                .iter()
                .filter(|s| !skip(s))
                .for_each(&mut f),
            1 => {
                if let Some(m) = self.ns.rooms().members(&self.rooms[0]) {
                    m.iter().filter(|s| !skip(s)).for_each(&mut f)
                }
            }
            _ => {
                let mut seen: HashMap<Arc<str>, Arc<Socket>> = HashMap::new();
                for r in &self.rooms {
                    if let Some(m) = self.ns.rooms().members(r) {
                        for s in m.iter() {
                            seen.entry(s.id_arc().clone()).or_insert_with(|| s.clone());
                        }
                    }
                }
                seen.values().filter(|s| !skip(s)).for_each(&mut f)
            }
        }
    }

    /// Emits `event` to the selected sockets; returns how many were selected.
    pub fn emit(&self, event: &str, payload: &Payload) -> usize {
        let offset = match (self.volatile, self.ns.recovery()) {
            (false, Some(rec)) => Some(rec.next_offset()),
            _ => None,
        };
        let enc = encode_event(
            self.ns.name(),
            event,
            payload,
            None,
            offset.as_ref().map(|(_, s)| s.as_str()),
        );
        if let (Some((seq, _)), Some(rec)) = (offset, self.ns.recovery()) {
            rec.store(
                seq,
                self.rooms.clone(),
                self.except.clone(),
                self.except_sid.clone(),
                enc.frames.clone(),
            );
        }
        let frames = &enc.frames;
        let mut n = 0;
        self.for_each(|s| {
            n += 1;
            if self.volatile {
                s.conn.send_volatile(frames);
            } else {
                let _ = s.conn.send_many(frames);
            }
        });
        n
    }

    /// Emits `event` with an ack request to every selected socket and waits
    /// for all replies (one per socket, in no particular order), or fails
    /// with [`AckError::Timeout`] when any is missing at the timeout.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: &Payload,
    ) -> Result<Vec<crate::socketio::Payload>, AckError> {
        let id = self.ns.next_ack_id();
        let enc = encode_event(self.ns.name(), event, payload, Some(id), None);
        let mut waiting = Vec::new();
        self.for_each(|s| {
            let (tx, rx) = oneshot::channel();
            s.acks.lock().insert(id, tx);
            if s.conn.send_many(&enc.frames).is_ok() {
                waiting.push((s.clone(), rx));
            } else {
                s.acks.lock().remove(&id);
            }
        });
        let sockets: Vec<Arc<Socket>> = waiting.iter().map(|(s, _)| s.clone()).collect();
        let all = futures_util::future::join_all(waiting.into_iter().map(|(_, rx)| rx));
        match tokio::time::timeout(self.timeout, all).await {
            Ok(results) => results
                .into_iter()
                .map(|r| r.map_err(|_| AckError::Disconnected))
                .collect(),
            Err(_) => {
                for s in sockets {
                    s.acks.lock().remove(&id);
                }
                Err(AckError::Timeout)
            }
        }
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        let mut v = Vec::new();
        self.for_each(|s| v.push(s.clone()));
        v
    }

    /// Makes every selected socket join `room`.
    pub fn join(&self, room: &str) {
        self.sockets().iter().for_each(|s| s.join(room));
    }

    /// Makes every selected socket leave `room`.
    pub fn leave(&self, room: &str) {
        self.sockets().iter().for_each(|s| s.leave(room));
    }

    /// Disconnects every selected socket from the namespace.
    pub fn disconnect(&self) {
        self.sockets().iter().for_each(|s| s.disconnect());
    }
}
