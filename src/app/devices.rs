//! Device sessions, forced logout and token push (SPEC.md §4.22).
//!
//! A *device* is the token a client authenticated with: every token this
//! server issues carries an id (`jti`), and each socket keeps the id of its
//! token next to its user in [`Socket::data`] ([`Device`]). Logging out one
//! device revokes that id; logging out every device bumps the user's token
//! version. Either way the sockets concerned get `force_logout` and are
//! disconnected, in every namespace of the application.
//!
//! When an admin changes a user, each device's sockets get a fresh token
//! (`tokenUpdated`) and the socket's `Arc<User>` is replaced in place: the
//! request pipeline reads it per request, so the new rights apply on the
//! same socket without reconnecting.
//!
//! Lock: [`Device`]'s token id is a leaf lock, held to read or swap it.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::api::user_json;
use super::auth::Claims;
use super::App;
use crate::socketio::{Payload, Socket};
use crate::store::User;

/// Longest user agent kept per device, in bytes.
const MAX_USER_AGENT: usize = 256;

/// The device behind a socket: its token's id, and when it connected.
pub(crate) struct Device {
    jti: Mutex<Option<String>>,
    connected_at: String,
}

/// Records an authenticated socket's user and device.
pub(crate) fn attach(socket: &Arc<Socket>, user: User, claims: &Claims) {
    socket.data().insert(Arc::new(user));
    socket.data().insert(Arc::new(Device {
        jti: Mutex::new(claims.jti.clone()),
        connected_at: crate::store::now_rfc3339(),
    }));
}

/// The token id `socket` authenticated with (its device id).
pub(crate) fn device_id(socket: &Socket) -> Option<String> {
    socket
        .data()
        .get::<Arc<Device>>()
        .and_then(|d| d.jti.lock().clone())
}

/// The personal room of a user (every namespace of the application).
pub(crate) fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn bounded(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One socket as the device lists show it.
fn device_json(s: &Socket, current: Option<&str>) -> Value {
    let hs = s.handshake();
    let agent = hs
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| bounded(v, MAX_USER_AGENT));
    let device = s.data().get::<Arc<Device>>();
    let jti = device.as_ref().and_then(|d| d.jti.lock().clone());
    let transport = s.transport();
    json!({
        "socketId": s.id(),
        "namespace": s.ns().name(),
        "deviceId": jti,
        "ip": hs.remote_addr.ip().to_string(),
        "userAgent": agent,
        "transport": transport,
        "connectedAt": device.as_ref().map(|d| d.connected_at.clone()),
        "current": current.is_some() && jti.as_deref() == current,
    })
}

impl App {
    /// Every socket of user `user_id` on this node, in `/` and `/messenger`.
    pub(crate) fn user_sockets(&self, user_id: &str) -> Vec<Arc<Socket>> {
        let room = user_room(user_id);
        let mut out = self.ns.to(&room).sockets();
        out.extend(self.platform_b.messenger.to(&room).sockets());
        out
    }

    /// The device list of `user_id` (`current`: the caller's device id).
    pub(crate) fn devices_json(&self, user_id: &str, current: Option<&str>) -> Value {
        Value::Array(
            self.user_sockets(user_id)
                .iter()
                .map(|s| device_json(s, current))
                .collect(),
        )
    }

    /// Sends `force_logout {reason}` to the sockets of `user_id` (only those
    /// of device `device` when given) and disconnects them; how many.
    pub(crate) fn force_logout(&self, user_id: &str, device: Option<&str>, reason: &str) -> usize {
        let payload = Payload::one(json!({"reason": reason}));
        let mut n = 0;
        for s in self.user_sockets(user_id) {
            if device.is_some() && device_id(&s).as_deref() != device {
                continue;
            }
            let _ = s.emit("force_logout", &payload);
            s.disconnect();
            n += 1;
        }
        n
    }

    /// Pushes the changed user `new` (was `old`) to each of their sockets:
    /// the socket's user is replaced, its role room follows the role, and
    /// it gets `tokenUpdated {token, user}` with a fresh token (one per
    /// device, shared by that device's sockets); how many sockets.
    pub(crate) fn push_user_update(&self, old: &User, new: &User) -> usize {
        let shared = Arc::new(new.clone());
        let mut tokens: HashMap<Option<String>, (String, String)> = HashMap::new();
        let sockets = self.user_sockets(&new.id);
        for s in &sockets {
            let device = s.data().get::<Arc<Device>>();
            let old_jti = device.as_ref().and_then(|d| d.jti.lock().clone());
            let (token, jti) = tokens
                .entry(old_jti)
                .or_insert_with(|| self.keys.issue_device(new))
                .clone();
            s.data().insert(shared.clone());
            if s.data().get::<Value>().is_some() {
                s.data().insert(super::socket_json(new));
            }
            if let Some(d) = device {
                *d.jti.lock() = Some(jti);
            }
            if old.role != new.role && Arc::ptr_eq(s.ns(), &self.ns) {
                s.leave(&format!("role:{}", old.role.as_str()));
                s.join(&format!("role:{}", new.role.as_str()));
            }
            let _ = s.emit(
                "tokenUpdated",
                &Payload::one(json!({"token": token, "user": user_json(new)})),
            );
        }
        sockets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn user_agents_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("abc", 2), "ab");
        assert_eq!(bounded("aé", 2), "a");
        assert_eq!(bounded("short", 256), "short");
    }
}
