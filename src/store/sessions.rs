//! Sessions: the `sessions` tree, the `active_by_course` index (course id
//! `\0` session id, for resuming after a restart and for a course's running
//! sessions) and a cache of decoded sessions (read on every request).
//!
//! Starting a session writes its initial records in the same transaction
//! ([`Records::write_initial`]); marks are in [`super::records`].
//!
//! Lock: the cache's lock is a leaf lock; writes invalidate under the
//! store's write lock.

use std::sync::Arc;

use sled::transaction::Transactional;

use super::cache::Cache;
use super::codec::{abort, enc, pair_key, pair_prefix, tx_err, tx_existing, Table};
use super::error::StoreError;
use super::flusher::Writing;
use super::model::{Session, SessionStatus};
use super::records::Records;
use super::time::now_rfc3339;

/// The sessions.
pub(super) struct Sessions {
    sessions: Table<Session>,
    /// Course id `\0` session id of every active session; empty values.
    active: sled::Tree,
    cache: Cache<Session>,
}

impl Sessions {
    /// Opens the sessions' trees of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Sessions, StoreError> {
        Ok(Sessions {
            sessions: Table::open(db, "sessions", "session")?,
            active: db.open_tree("active_by_course")?,
            cache: Cache::new(),
        })
    }

    /// Creates an active session with an absent record for every student,
    /// in one transaction over the sessions, records and active trees.
    pub(super) fn start(
        &self,
        _w: &Writing<'_>,
        session: &Session,
        students: &[String],
        records: &Records,
    ) -> Result<(), StoreError> {
        (self.sessions.tree(), records.tree(), &self.active)
            .transaction(|(sessions, records, active)| {
                if sessions.get(session.id.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("session"));
                }
                sessions.insert(session.id.as_bytes(), enc(session))?;
                Records::write_initial(records, &session.id, students)?;
                active.insert(pair_key(&session.course_id, &session.id), &[])?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.cache.invalidate(&session.id);
        Ok(())
    }

    /// A session by id (shared: decoded once, until the session changes).
    pub(super) fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        self.cache.get(id, || self.sessions.get(id))
    }

    /// The session, if it is active.
    pub(super) fn active(&self, _w: &Writing<'_>, id: &str) -> Result<Arc<Session>, StoreError> {
        let s = self.get(id)?.ok_or(StoreError::NotFound("session"))?;
        if s.status != SessionStatus::Active {
            return Err(StoreError::SessionNotActive);
        }
        Ok(s)
    }

    /// Every session, in id order (the admin listings and reports scan
    /// them: there is no per-course index of ended sessions).
    pub(super) fn all(&self) -> Result<Vec<Session>, StoreError> {
        self.sessions.all()
    }

    /// Every active session.
    pub(super) fn all_active(&self) -> Result<Vec<Session>, StoreError> {
        let mut out = Vec::new();
        for kv in self.active.iter() {
            let (k, _) = kv?;
            if let Some(pos) = k.iter().position(|&b| b == 0) {
                if let Some(s) = self.get(&String::from_utf8_lossy(&k[pos + 1..]))? {
                    out.push(Session::clone(&s));
                }
            }
        }
        Ok(out)
    }

    /// The active sessions of a course.
    pub(super) fn active_of(&self, course_id: &str) -> Result<Vec<Session>, StoreError> {
        let prefix = pair_prefix(course_id);
        let mut out = Vec::new();
        for kv in self.active.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(s) = self.get(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                out.push(Session::clone(&s));
            }
        }
        Ok(out)
    }

    /// Stores a later activity time of a session (a plain insert).
    pub(super) fn set_activity(
        &self,
        _w: &Writing<'_>,
        session: &Session,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let mut s = Session::clone(session);
        s.last_activity_ms = at_ms;
        self.sessions.insert(s.id.as_bytes(), &s)?;
        self.cache.invalidate(&s.id);
        Ok(())
    }

    /// Ends an active session, storing `activity_ms` as its last activity
    /// where later than the stored one.
    pub(super) fn end(
        &self,
        _w: &Writing<'_>,
        id: &str,
        activity_ms: u64,
    ) -> Result<Session, StoreError> {
        let s = (self.sessions.tree(), &self.active)
            .transaction(|(sessions, active)| {
                let mut s: Session = tx_existing(sessions, id.as_bytes(), "session")?;
                if s.status != SessionStatus::Active {
                    return abort(StoreError::SessionNotActive);
                }
                s.status = SessionStatus::Ended;
                s.ended_at = Some(now_rfc3339());
                s.last_activity_ms = s.last_activity_ms.max(activity_ms);
                sessions.insert(id.as_bytes(), enc(&s))?;
                active.remove(pair_key(&s.course_id, &s.id))?;
                Ok(s)
            })
            .map_err(tx_err)?;
        self.cache.invalidate(id);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::{enroll, open, setup, TempDir};
    use super::SessionStatus;

    #[test]
    fn cached_sessions_and_courses_follow_writes() {
        let dir = TempDir::new("cache");
        let store = open(&dir);
        setup(&store, &["a"]);
        let s = store.session("s1").unwrap().unwrap();
        assert_eq!(s.status, SessionStatus::Active);
        // Served from the cache: the same decoded value.
        assert!(Arc::ptr_eq(&s, &store.session("s1").unwrap().unwrap()));
        let c = store.course("c1").unwrap().unwrap();
        assert_eq!(c.students, vec!["a".to_string()]);
        enroll(&store, "b");
        assert_eq!(store.course("c1").unwrap().unwrap().students.len(), 2);
        let _ = store.end_session("s1").unwrap();
        assert_eq!(
            store.session("s1").unwrap().unwrap().status,
            SessionStatus::Ended
        );
        assert!(store.session("nope").unwrap().is_none());
        assert!(store.course("nope").unwrap().is_none());
    }
}
