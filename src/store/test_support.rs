//! Fixtures shared by the store's unit tests: a throw-away data directory
//! and a course with an active session.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    format_rfc3339, now_ms, CheckinSettings, Course, Mark, Session, SessionStatus, Status, Store,
};

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "rollcall-store-{tag}-{}-{n}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(super) fn db(&self) -> PathBuf {
        self.0.join("db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn open(dir: &TempDir) -> Store {
    Store::open(&dir.db(), 8 << 20).unwrap()
}

/// A course `c1` with `students`, and an active session `s1` of it
/// started with those students.
pub(super) fn setup(store: &Store, students: &[&str]) {
    let students: Vec<String> = students.iter().map(|s| s.to_string()).collect();
    let _ = store
        .create_course(&Course {
            id: "c1".into(),
            name: "Course".into(),
            teachers: vec!["t1".into()],
            students: students.clone(),
        })
        .unwrap();
    let now = now_ms();
    let session = Session {
        id: "s1".into(),
        course_id: "c1".into(),
        teacher_id: "t1".into(),
        status: SessionStatus::Active,
        started_at: format_rfc3339(now),
        ended_at: None,
        last_activity_ms: now,
        checkin: CheckinSettings::default(),
    };
    let _ = store.start_session(&session, &students).unwrap();
}

pub(super) fn mark(student: &str, status: Status) -> Mark {
    Mark {
        student_id: student.into(),
        status,
        method: "teacher",
        location: None,
    }
}

pub(super) fn enroll(store: &Store, student: &str) {
    let _ = store
        .update_course("c1", |c| c.students.push(student.into()))
        .unwrap();
}
