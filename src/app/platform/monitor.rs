//! The monitor API's status and actions (SPEC.md §4.19, seed 004's
//! `/api/socket-test`): connections by transport and namespace, rooms,
//! online users, outbound queue depths, uptime; and the manual actions
//! `sendToUser`, `broadcast`, `emitOnlineUsers`.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::app::{App, AppError};
use crate::engine::TransportKind;
use crate::socketio::{Payload, SocketIo};

/// The event the `sendToUser` and `broadcast` actions send.
pub(crate) const TEST_EVENT: &str = "testMessage";
/// The event the `emitOnlineUsers` action (and `getOnlineUsers`) send.
pub(crate) const ONLINE_EVENT: &str = "getOnlineUsers";

impl App {
    /// Seed 003's connected-client count: Engine.IO connections.
    pub fn connected_clients_count(&self, io: &SocketIo) -> usize {
        io.client_count()
    }

    /// The server's status for `GET /api/socket-test`.
    pub fn monitor_status(&self, io: &SocketIo) -> Value {
        let mut seen = HashSet::new();
        let (mut polling, mut websocket) = (0usize, 0usize);
        let (mut q_packets, mut q_bytes, mut max_packets, mut max_bytes) = (0, 0, 0, 0);
        let mut by_ns = Map::new();
        let mut rooms = Map::new();
        for ns in self.notification_namespaces() {
            let sockets = ns.sockets();
            by_ns.insert(ns.name().into(), json!(sockets.len()));
            rooms.insert(ns.name().into(), json!(ns.rooms().room_count()));
            for s in sockets {
                if !seen.insert(s.conn().id().to_string()) {
                    continue;
                }
                match s.conn().transport() {
                    TransportKind::Polling => polling += 1,
                    TransportKind::WebSocket => websocket += 1,
                }
                let (p, b) = s.conn().queued();
                q_packets += p;
                q_bytes += b;
                max_packets = max_packets.max(p);
                max_bytes = max_bytes.max(b);
            }
        }
        let topics: Vec<Value> = self
            .config()
            .platform
            .topics
            .iter()
            .map(|t| {
                let n = self.ns().rooms().len(&super::topics::topic_room(&t.name));
                json!({"name": t.name, "event": t.event, "subscribers": n})
            })
            .collect();
        json!({
            "ok": true,
            "uptimeSecs": self.platform().uptime().as_secs(),
            "clients": self.connected_clients_count(io),
            "connections": {"total": seen.len(),
                            "byTransport": {"polling": polling, "websocket": websocket},
                            "byNamespace": by_ns},
            "rooms": rooms,
            "onlineUsers": self.online_users_json(),
            "queues": {"packets": q_packets, "bytes": q_bytes,
                       "maxPackets": max_packets, "maxBytes": max_bytes},
            "topics": topics,
        })
    }

    /// Runs a monitor action; returns the sockets reached.
    pub fn monitor_action(&self, body: &Value, by: &str) -> Result<usize, AppError> {
        let action = body.get("action").and_then(Value::as_str).unwrap_or("");
        let message = body.get("message").cloned().unwrap_or(Value::Null);
        let test = || {
            Payload::one(json!({"action": action, "message": message, "from": by,
                                "timestamp": crate::store::now_rfc3339()}))
        };
        match action {
            "sendToUser" => {
                let target = body
                    .get("targetUserId")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| AppError::invalid("targetUserId is required for sendToUser"))?;
                Ok(self
                    .ns()
                    .to(&format!("user:{target}"))
                    .emit(TEST_EVENT, &test()))
            }
            "broadcast" => Ok(self.ns().broadcast().emit(TEST_EVENT, &test())),
            "emitOnlineUsers" => Ok(self
                .ns()
                .to("role:admin")
                .emit(ONLINE_EVENT, &Payload::one(self.online_users_json()))),
            _ => Err(AppError::invalid(
                "action must be sendToUser, broadcast or emitOnlineUsers",
            )),
        }
    }
}
