//! The last activity of sessions, in memory. A mark does not rewrite its
//! session (that would make every mark a transaction over two trees): it
//! only notes the time here. The idle task stores these times now and then
//! ([`Store::persist_activity`](super::Store::persist_activity)), ending a
//! session stores its own, and after a restart they are rebuilt from the
//! records' `marked_at`.
//!
//! Lock: `map` is a leaf lock, held only for one lookup or update.

use std::collections::HashMap;

use super::model::Session;

/// Last activity (Unix ms) of sessions marked since their stored
/// `last_activity_ms`.
pub(super) struct Activity {
    map: parking_lot::Mutex<HashMap<String, u64>>,
}

impl Activity {
    /// No activity yet.
    pub(super) fn new() -> Activity {
        Activity {
            map: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Notes activity in a session at `at_ms` (kept if later).
    pub(super) fn touch(&self, session_id: &str, at_ms: u64) {
        let mut a = self.map.lock();
        match a.get_mut(session_id) {
            Some(t) => *t = (*t).max(at_ms),
            None => {
                a.insert(session_id.to_string(), at_ms);
            }
        }
    }

    /// The noted activity of a session.
    pub(super) fn get(&self, session_id: &str) -> Option<u64> {
        self.map.lock().get(session_id).copied()
    }

    /// The later of the stored and the noted activity of `session`.
    pub(super) fn last(&self, session: &Session) -> u64 {
        let mem = self.get(&session.id);
        mem.map_or(session.last_activity_ms, |t| {
            t.max(session.last_activity_ms)
        })
    }

    /// Every noted activity.
    pub(super) fn pending(&self) -> Vec<(String, u64)> {
        self.map
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Forgets a session's activity (ended or gone).
    pub(super) fn forget(&self, session_id: &str) {
        self.map.lock().remove(session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{mark, open, setup, TempDir};
    use super::super::{parse_rfc3339, Status};

    #[tokio::test]
    async fn activity_is_kept_in_memory_persisted_and_recovered() {
        let dir = TempDir::new("activity");
        let started;
        let marked;
        {
            let store = open(&dir);
            setup(&store, &["a", "b"]);
            let s = store.session("s1").unwrap().unwrap();
            started = s.last_activity_ms;
            assert_eq!(store.last_activity(&s), started);
            std::thread::sleep(std::time::Duration::from_millis(5));
            let (recs, t) = store
                .mark("s1", "t1", &[mark("a", Status::Present)])
                .unwrap();
            store.durable(t).await.unwrap();
            marked = parse_rfc3339(recs[0].marked_at.as_deref().unwrap()).unwrap();
            assert!(marked > started);
            // The mark did not rewrite the session; the store knows anyway.
            let s = store.session("s1").unwrap().unwrap();
            assert_eq!(s.last_activity_ms, started);
            assert!(store.last_activity(&s) >= marked);
        }
        {
            // Killed before the activity was persisted: rebuilt from the records.
            let store = open(&dir);
            let s = store.session("s1").unwrap().unwrap();
            assert_eq!(s.last_activity_ms, started);
            assert_eq!(store.last_activity(&s), marked);
            // The idle task stores it.
            let t = store.persist_activity().unwrap().expect("a write");
            store.durable(t).await.unwrap();
            let s = store.session("s1").unwrap().unwrap();
            assert_eq!(s.last_activity_ms, marked);
            assert!(store.persist_activity().unwrap().is_none());
            // Ending the session stores it too.
            let (_, t) = store
                .mark("s1", "t1", &[mark("b", Status::Present)])
                .unwrap();
            store.durable(t).await.unwrap();
            let (ended, _) = store.end_session("s1").unwrap();
            assert!(ended.last_activity_ms >= marked);
            assert_eq!(store.last_activity(&ended), ended.last_activity_ms);
        }
    }
}
