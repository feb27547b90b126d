//! Presence: which students joined each active session, and through which
//! sockets (a student counts while any of those sockets is connected); and
//! which users are online at all, with their connection count (a user is
//! online while any socket of theirs is connected, SPEC.md §4.18). Kept in
//! memory only; rebuilt as users reconnect and students rejoin after a
//! restart.
//!
//! Lock rule: the two mutexes here are leaves. Each is taken only inside
//! these methods, never held across a store call or a socket operation,
//! and nothing else is taken while one is held.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;

/// Session id → student id → ids of the sockets the student joined through.
type Joined = HashMap<String, HashMap<String, HashSet<String>>>;

/// One online user: display data and how many sockets they have.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OnlineUser {
    /// Display name.
    pub name: String,
    /// Role name.
    pub role: &'static str,
    /// Connected sockets (all namespaces, all devices).
    pub connections: usize,
    /// When the user came online (RFC 3339).
    pub since: String,
}

/// The students present in each active session, and the online users.
#[derive(Default)]
pub(crate) struct Presence {
    joined: Mutex<Joined>,
    online: Mutex<HashMap<String, OnlineUser>>,
}

impl Presence {
    /// Starts tracking a new session (no one present yet).
    pub(crate) fn open(&self, session_id: &str) {
        self.joined
            .lock()
            .entry(session_id.to_string())
            .or_default();
    }

    /// Records that `student` joined `session_id` through `socket_id`.
    pub(crate) fn join(&self, session_id: &str, student: &str, socket_id: &str) {
        self.joined
            .lock()
            .entry(session_id.to_string())
            .or_default()
            .entry(student.to_string())
            .or_default()
            .insert(socket_id.to_string());
    }

    /// Forgets an ended session.
    pub(crate) fn forget(&self, session_id: &str) {
        self.joined.lock().remove(session_id);
    }

    /// How many students are present in `session_id`.
    pub(crate) fn student_count(&self, session_id: &str) -> usize {
        self.joined.lock().get(session_id).map_or(0, HashMap::len)
    }

    /// A socket of `id` connected: its new connection count (1 means the
    /// user just came online).
    pub(crate) fn user_connected(&self, id: &str, name: &str, role: &'static str) -> usize {
        let mut online = self.online.lock();
        let u = online.entry(id.to_string()).or_insert_with(|| OnlineUser {
            name: name.to_string(),
            role,
            connections: 0,
            since: crate::store::now_rfc3339(),
        });
        u.connections += 1;
        u.connections
    }

    /// A socket of `id` disconnected: the connections left (0 means the
    /// user just went offline).
    pub(crate) fn user_disconnected(&self, id: &str) -> usize {
        let mut online = self.online.lock();
        let left = match online.get_mut(id) {
            Some(u) => {
                u.connections = u.connections.saturating_sub(1);
                u.connections
            }
            None => return 0,
        };
        if left == 0 {
            online.remove(id);
        }
        left
    }

    /// Every online user, by id.
    pub(crate) fn online_users(&self) -> Vec<(String, OnlineUser)> {
        let mut v: Vec<_> = self
            .online
            .lock()
            .iter()
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The online user `id`, if online.
    pub(crate) fn online_user(&self, id: &str) -> Option<OnlineUser> {
        self.online.lock().get(id).cloned()
    }

    /// The students present in `session_id`, with how many of their
    /// sockets joined it, by student id.
    pub(crate) fn session_students(&self, session_id: &str) -> Vec<(String, usize)> {
        let mut v: Vec<_> = self
            .joined
            .lock()
            .get(session_id)
            .map(|m| m.iter().map(|(k, s)| (k.clone(), s.len())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `student`'s socket `socket_id` disconnected: it no longer counts for
    /// any session, and a student with no socket left is not present.
    pub(crate) fn disconnect(&self, student: &str, socket_id: &str) {
        let mut joined = self.joined.lock();
        for students in joined.values_mut() {
            if let Some(sockets) = students.get_mut(student) {
                sockets.remove(socket_id);
                if sockets.is_empty() {
                    students.remove(student);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_student_counts_while_one_socket_remains() {
        let p = Presence::default();
        p.open("s");
        assert_eq!(p.student_count("s"), 0);
        p.join("s", "u1", "a");
        p.join("s", "u1", "b");
        p.join("s", "u2", "c");
        assert_eq!(p.student_count("s"), 2);
        p.disconnect("u1", "a");
        assert_eq!(p.student_count("s"), 2);
        p.disconnect("u1", "b");
        assert_eq!(p.student_count("s"), 1);
        assert_eq!(p.session_students("s"), [("u2".to_string(), 1)]);
        p.forget("s");
        assert_eq!(p.student_count("s"), 0);
        assert_eq!(p.student_count("unknown"), 0);
    }

    #[test]
    fn a_user_is_online_until_the_last_socket_leaves() {
        let p = Presence::default();
        assert_eq!(p.user_connected("u", "U", "student"), 1);
        assert_eq!(p.user_connected("u", "U", "student"), 2);
        assert_eq!(p.online_users().len(), 1);
        assert_eq!(p.user_disconnected("u"), 1);
        assert!(p.online_user("u").is_some());
        assert_eq!(p.user_disconnected("u"), 0);
        assert!(p.online_user("u").is_none());
        assert_eq!(p.user_disconnected("u"), 0);
    }
}
