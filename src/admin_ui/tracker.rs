//! The admin UI's [`Observer`]: counts what `server_stats` reports
//! (connections, polling clients, packets and bytes in and out) and, in
//! development mode, turns every socket, room and event change into a
//! notice for the admin namespace.
//!
//! Notices go through a bounded queue to one task that broadcasts them
//! (see `super::AdminUi::attach`), so a hook never broadcasts itself: it
//! may be called inside a broadcast or a recovery catch-up of another
//! namespace, and the admin broadcast then takes no lock in that call's
//! path. Counters are relaxed atomics; the per-second connection and
//! disconnection counts (a handful per second even under churn) sit behind
//! one small mutex.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::serialize::{local_socket, now_ms};
use crate::engine::{CloseReason, Connection, TransportKind};
use crate::socketio::{DisconnectReason, Observer, Payload, Socket};

/// An event for the admin namespace: its name and arguments.
pub(crate) type Notice = (&'static str, Payload);

/// Counts and per-socket notices for the admin namespace.
pub(crate) struct Tracker {
    /// The admin namespace (its own events are not reported).
    admin_ns: String,
    development: bool,
    notices: mpsc::Sender<Notice>,
    dropped: AtomicU64,
    polling: AtomicI64,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    /// (second in ms, type, sub-type) -> count.
    raw: Mutex<HashMap<(u64, &'static str, String), u64>>,
    /// Development mode: connection id -> its sockets (namespace, id), for
    /// `socket_updated` on upgrade. A socket's `socket_connected` and its
    /// connection's upgrade are each queued under this lock, so the UI
    /// never keeps a stale transport: either the upgrade came first and
    /// `socket_connected` already says `websocket`, or `socket_updated`
    /// follows it.
    by_conn: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("admin_ns", &self.admin_ns)
            .finish_non_exhaustive()
    }
}

impl Tracker {
    pub(crate) fn new(admin_ns: &str, development: bool, notices: mpsc::Sender<Notice>) -> Tracker {
        Tracker {
            admin_ns: admin_ns.to_string(),
            development,
            notices,
            dropped: AtomicU64::new(0),
            polling: AtomicI64::new(0),
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            packets_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            raw: Mutex::new(HashMap::new()),
            by_conn: Mutex::new(HashMap::new()),
        }
    }

    /// Connections currently on long-polling.
    pub(crate) fn polling_clients(&self) -> i64 {
        self.polling.load(Ordering::Relaxed).max(0)
    }

    /// Notices dropped because the queue was full, since the last call.
    pub(crate) fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// The `aggregatedEvents` of `server_stats`: everything counted since
    /// the last call, as `{timestamp, type, subType?, count}` (connections
    /// per second; packets and bytes as one entry for the interval).
    pub(crate) fn take_aggregated(&self) -> Vec<Value> {
        let second = now_ms() / 1000 * 1000;
        let mut out: Vec<Value> = std::mem::take(&mut *self.raw.lock())
            .into_iter()
            .map(|((ts, kind, sub), count)| {
                let mut e = json!({"timestamp": ts, "type": kind, "count": count});
                if !sub.is_empty() {
                    e["subType"] = Value::String(sub);
                }
                e
            })
            .collect();
        out.sort_by_key(|e| e["timestamp"].as_u64());
        let counters = [
            ("packetsIn", &self.packets_in),
            ("bytesIn", &self.bytes_in),
            ("packetsOut", &self.packets_out),
            ("bytesOut", &self.bytes_out),
        ];
        for (kind, counter) in counters {
            let count = counter.swap(0, Ordering::Relaxed);
            if count > 0 {
                out.push(json!({"timestamp": second, "type": kind, "count": count}));
            }
        }
        out
    }

    fn count_raw(&self, kind: &'static str, sub: String) {
        let second = now_ms() / 1000 * 1000;
        *self.raw.lock().entry((second, kind, sub)).or_insert(0) += 1;
    }

    /// Queues a development-mode notice (dropped, and counted, when the
    /// queue is full).
    fn notify(&self, event: &'static str, args: Vec<Value>, attachments: Vec<bytes::Bytes>) {
        let payload = Payload { args, attachments };
        if self.notices.try_send((event, payload)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A `room_joined` / `room_left` notice (development mode).
    fn room_change(&self, event: &'static str, ns: &str, room: &str, id: &str) {
        if self.development {
            let args = vec![json!(ns), json!(room), json!(id), Self::timestamp()];
            self.notify(event, args, Vec::new());
        }
    }

    fn timestamp() -> Value {
        Value::String(crate::util::format_rfc3339(now_ms()))
    }

    /// The args of `event_received` / `event_sent`.
    fn event_args(socket: &Socket, event: &str, payload: &Payload) -> Vec<Value> {
        let mut args = Vec::with_capacity(payload.args.len() + 1);
        args.push(Value::String(event.to_string()));
        args.extend(payload.args.iter().cloned());
        vec![
            json!(socket.ns().name()),
            json!(socket.id()),
            Value::Array(args),
            Self::timestamp(),
        ]
    }
}

impl Observer for Tracker {
    fn connection_opened(&self, conn: &Arc<Connection>) {
        self.count_raw("rawConnection", String::new());
        if conn.transport() == TransportKind::Polling {
            self.polling.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn connection_upgraded(&self, conn: &Arc<Connection>) {
        self.polling.fetch_sub(1, Ordering::Relaxed);
        if !self.development {
            return;
        }
        let by_conn = self.by_conn.lock();
        for (ns, id) in by_conn.get(conn.id()).into_iter().flatten() {
            let update = json!({"id": id, "nsp": ns, "transport": "websocket"});
            self.notify("socket_updated", vec![update], Vec::new());
        }
    }

    fn connection_closed(&self, conn: &Arc<Connection>, reason: &CloseReason) {
        let reason = DisconnectReason::from_close(reason).to_string();
        self.count_raw("rawDisconnection", reason);
        if self.development {
            self.by_conn.lock().remove(conn.id());
        }
        if conn.transport() == TransportKind::Polling {
            self.polling.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn message_received(&self, bytes: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn packets_sent(&self, packets: usize, bytes: usize) {
        self.packets_out
            .fetch_add(packets as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn socket_connected(&self, socket: &Arc<Socket>) {
        if !self.development {
            return;
        }
        let mut by_conn = self.by_conn.lock();
        let entry = (socket.ns().name().to_string(), socket.id().to_string());
        by_conn
            .entry(socket.conn().id().to_string())
            .or_default()
            .push(entry);
        let args = vec![local_socket(socket), Self::timestamp()];
        self.notify("socket_connected", args, Vec::new());
    }

    fn socket_disconnected(
        &self,
        socket: &Arc<Socket>,
        reason: DisconnectReason,
        rooms: &[Arc<str>],
    ) {
        if !self.development {
            return;
        }
        let (ns, id) = (socket.ns().name(), socket.id());
        if let Some(list) = self.by_conn.lock().get_mut(socket.conn().id()) {
            list.retain(|(n, i)| !(n == ns && i == id));
        }
        let args = vec![
            json!(ns),
            json!(id),
            json!(reason.to_string()),
            Self::timestamp(),
        ];
        self.notify("socket_disconnected", args, Vec::new());
        for room in rooms {
            self.room_change("room_left", ns, room, id);
        }
    }

    fn room_joined(&self, socket: &Socket, room: &str) {
        self.room_change("room_joined", socket.ns().name(), room, socket.id());
    }

    fn room_left(&self, socket: &Socket, room: &str) {
        self.room_change("room_left", socket.ns().name(), room, socket.id());
    }

    fn wants_events(&self, ns: &str) -> bool {
        self.development && ns != self.admin_ns
    }

    fn event_received(&self, socket: &Arc<Socket>, event: &str, payload: &Payload) {
        let args = Self::event_args(socket, event, payload);
        self.notify("event_received", args, payload.attachments.clone());
    }

    fn event_sent(&self, socket: &Arc<Socket>, event: &str, payload: &Payload) {
        let args = Self::event_args(socket, event, payload);
        self.notify("event_sent", args, payload.attachments.clone());
    }
}
