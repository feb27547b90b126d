//! Presence: which students joined each active session, and through which
//! sockets (a student counts while any of those sockets is connected). Kept
//! in memory only; rebuilt as students rejoin after a restart.
//!
//! Lock rule: the one mutex here is a leaf. It is taken only inside these
//! methods, never held across a store call or a socket operation, and
//! nothing else is taken while it is held.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;

/// Session id → student id → ids of the sockets the student joined through.
type Joined = HashMap<String, HashMap<String, HashSet<String>>>;

/// The students present in each active session.
#[derive(Default)]
pub(crate) struct Presence {
    joined: Mutex<Joined>,
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
        p.forget("s");
        assert_eq!(p.student_count("s"), 0);
        assert_eq!(p.student_count("unknown"), 0);
    }
}
