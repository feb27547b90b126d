//! Attendance records: the `records` tree (session id `\0` student id),
//! marks, and the counts derived from them.
//!
//! Marks are the hot path and avoid sled transactions and batches where
//! they can: sled 0.34 seals and writes its I/O buffer when each of them
//! begins (a `pwrite` and a `sync_file_range` apiece), while a plain insert
//! only appends to the buffer that the next group flush writes. So one mark
//! is one insert and only a bulk mark is a batch (atomic within the tree).

use std::sync::Arc;

use sled::transaction::TransactionalTree;

use super::codec::{enc, pair_key, pair_prefix, Table, TxResult};
use super::courses::Courses;
use super::error::StoreError;
use super::flusher::Writing;
use super::model::{Course, Mark, Record, Session, Stats, Status};
use super::time::{format_rfc3339, now_ms, parse_rfc3339};

/// The records of every session.
pub(super) struct Records {
    records: Table<Record>,
}

impl Records {
    /// Opens the records' tree of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Records, StoreError> {
        Ok(Records {
            records: Table::open(db, "records", "record")?,
        })
    }

    /// The tree, for the transaction that starts a session.
    pub(super) fn tree(&self) -> &sled::Tree {
        self.records.tree()
    }

    /// Inside the transaction that starts a session: the initial absent
    /// record of every student.
    pub(super) fn write_initial(
        records: &TransactionalTree,
        session_id: &str,
        students: &[String],
    ) -> TxResult<()> {
        for s in students {
            let r = Record::initial(session_id, s);
            records.insert(pair_key(session_id, s), enc(&r))?;
        }
        Ok(())
    }

    /// Applies status changes to an active session, all or none (see
    /// [`Store::mark`](super::Store::mark)); returns the new records and
    /// the time of the marks (Unix ms).
    pub(super) fn mark(
        &self,
        _w: &Writing<'_>,
        session: &Session,
        by: &str,
        marks: &[Mark],
        courses: &Courses,
    ) -> Result<(Vec<Record>, u64), StoreError> {
        let at_ms = now_ms();
        let at = format_rfc3339(at_ms);
        let mut course: Option<Arc<Course>> = None;
        let mut out = Vec::with_capacity(marks.len());
        let mut writes = Vec::with_capacity(marks.len());
        for m in marks {
            let key = pair_key(&session.id, &m.student_id);
            if !self.records.contains(&key)? {
                courses.require_enrolled(&session.course_id, &m.student_id, &mut course)?;
            }
            let r = Record {
                session_id: session.id.clone(),
                student_id: m.student_id.clone(),
                status: m.status,
                marked_by: Some(by.to_string()),
                marked_at: Some(at.clone()),
                method: m.method.to_string(),
                location: m.location,
            };
            writes.push((key, enc(&r)));
            out.push(r);
        }
        let tree = self.records.tree();
        match writes.len() {
            0 => {}
            1 => {
                let (k, v) = writes.swap_remove(0);
                tree.insert(k, v)?;
            }
            _ => {
                let mut batch = sled::Batch::default();
                for (k, v) in writes {
                    batch.insert(k, v);
                }
                tree.apply_batch(batch)?;
            }
        }
        Ok((out, at_ms))
    }

    /// Whether the student has a record in the session.
    pub(super) fn exists(&self, session_id: &str, student_id: &str) -> Result<bool, StoreError> {
        self.records.contains(pair_key(session_id, student_id))
    }

    /// Creates the initial absent record of an enrolled student of an
    /// active session; `None` when the record exists already.
    pub(super) fn ensure_initial(
        &self,
        _w: &Writing<'_>,
        session: &Session,
        student_id: &str,
        courses: &Courses,
    ) -> Result<Option<Record>, StoreError> {
        let key = pair_key(&session.id, student_id);
        if self.records.contains(&key)? {
            return Ok(None);
        }
        courses.require_enrolled(&session.course_id, student_id, &mut None)?;
        let r = Record::initial(&session.id, student_id);
        self.records.insert(key, &r)?;
        Ok(Some(r))
    }

    /// The records of a session, ordered by student id.
    pub(super) fn of_session(&self, session_id: &str) -> Result<Vec<Record>, StoreError> {
        self.records.with_prefix(pair_prefix(session_id))
    }

    /// One record.
    pub(super) fn get(
        &self,
        session_id: &str,
        student_id: &str,
    ) -> Result<Option<Record>, StoreError> {
        self.records.get(pair_key(session_id, student_id))
    }

    /// Counts of a session's records.
    pub(super) fn stats(&self, session_id: &str) -> Result<Stats, StoreError> {
        let mut st = Stats::default();
        for r in self.of_session(session_id)? {
            st.total += 1;
            match r.status {
                Status::Present => st.present += 1,
                Status::Absent => st.absent += 1,
            }
        }
        Ok(st)
    }

    /// The time of the latest mark in a session (Unix ms), if any.
    pub(super) fn latest_mark(&self, session_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .of_session(session_id)?
            .iter()
            .filter_map(|r| r.marked_at.as_deref().and_then(parse_rfc3339))
            .max())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{enroll, mark, open, setup, TempDir};
    use super::super::{Status, StoreError};

    #[test]
    fn bulk_marks_are_all_or_none() {
        let dir = TempDir::new("bulk");
        let store = open(&dir);
        setup(&store, &["a", "b", "c"]);
        let err = store
            .mark(
                "s1",
                "t1",
                &[mark("a", Status::Present), mark("zz", Status::Present)],
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert_eq!(
            store.record("s1", "a").unwrap().unwrap().status,
            Status::Absent
        );
        let (recs, _) = store
            .mark(
                "s1",
                "t1",
                &[
                    mark("a", Status::Present),
                    mark("b", Status::Present),
                    mark("a", Status::Absent),
                ],
            )
            .unwrap();
        assert_eq!(recs.len(), 3);
        // The last change of a student wins.
        assert_eq!(
            store.record("s1", "a").unwrap().unwrap().status,
            Status::Absent
        );
        assert_eq!(
            store.record("s1", "b").unwrap().unwrap().status,
            Status::Present
        );
        assert_eq!(store.stats("s1").unwrap().total, 3);
    }

    #[test]
    fn marks_need_an_active_session() {
        let dir = TempDir::new("ended");
        let store = open(&dir);
        setup(&store, &["a"]);
        let err = store
            .mark("nope", "t1", &[mark("a", Status::Present)])
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("session")), "{err:?}");
        let _ = store.end_session("s1").unwrap();
        let err = store
            .mark("s1", "t1", &[mark("a", Status::Present)])
            .unwrap_err();
        assert!(matches!(err, StoreError::SessionNotActive), "{err:?}");
        let err = store.ensure_record("s1", "late").unwrap_err();
        assert!(matches!(err, StoreError::SessionNotActive), "{err:?}");
    }

    #[test]
    fn late_enrolled_students_get_a_record() {
        let dir = TempDir::new("late");
        let store = open(&dir);
        setup(&store, &["a"]);
        // Not enrolled: refused, nothing written.
        let err = store
            .mark("s1", "t1", &[mark("late", Status::Present)])
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(matches!(
            store.ensure_record("s1", "late"),
            Err(StoreError::NotFound(_))
        ));
        assert!(store.record("s1", "late").unwrap().is_none());

        // Enrolled after the start: the first mark creates the record.
        enroll(&store, "late");
        let (recs, _) = store
            .mark("s1", "t1", &[mark("late", Status::Present)])
            .unwrap();
        assert_eq!(recs[0].status, Status::Present);
        assert_eq!(store.record("s1", "late").unwrap(), Some(recs[0].clone()));
        let st = store.stats("s1").unwrap();
        assert_eq!((st.present, st.absent, st.total), (1, 1, 2));

        // Joining creates the initial absent record, once.
        enroll(&store, "late2");
        let (r, _) = store.ensure_record("s1", "late2").unwrap().unwrap();
        assert_eq!((r.status, r.method.as_str()), (Status::Absent, "initial"));
        assert_eq!(r.marked_by, None);
        assert!(store.ensure_record("s1", "late2").unwrap().is_none());
        assert!(store.ensure_record("s1", "a").unwrap().is_none());
        assert_eq!(store.stats("s1").unwrap().total, 3);

        // A bulk mark may mix both kinds.
        enroll(&store, "late3");
        let (recs, _) = store
            .mark(
                "s1",
                "t1",
                &[mark("a", Status::Present), mark("late3", Status::Present)],
            )
            .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(store.stats("s1").unwrap().present, 3);
    }
}
