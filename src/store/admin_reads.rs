//! Reads for the administration API and the reports (SPEC.md §4.23): a
//! course's sessions, and a student's records across sessions. They scan
//! the `sessions` tree (there is no per-course index of ended sessions);
//! that is a read per listing, never on the marking path.

use super::error::StoreError;
use super::model::{Record, Session};
use super::Store;

impl Store {
    /// The sessions of `course_id`, newest first (by `started_at`, then id).
    pub fn sessions_of_course(&self, course_id: &str) -> Result<Vec<Session>, StoreError> {
        let mut out: Vec<Session> = self
            .inner
            .sessions
            .all()?
            .into_iter()
            .filter(|s| s.course_id == course_id)
            .collect();
        out.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(out)
    }

    /// Every session with the record of `student_id` in it, newest first,
    /// among the sessions of the courses `course_ids`.
    pub fn student_records(
        &self,
        student_id: &str,
        course_ids: &[String],
    ) -> Result<Vec<(Session, Record)>, StoreError> {
        let mut out = Vec::new();
        for s in self.inner.sessions.all()? {
            if !course_ids.contains(&s.course_id) {
                continue;
            }
            if let Some(r) = self.record(&s.id, student_id)? {
                out.push((s, r));
            }
        }
        out.sort_by(|a, b| {
            b.0.started_at
                .cmp(&a.0.started_at)
                .then_with(|| b.0.id.cmp(&a.0.id))
        });
        Ok(out)
    }
}
