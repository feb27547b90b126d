//! The attendance store, on sled. It knows nothing of sockets.
//!
//! Records are JSON values in sled trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `users` | user id | [`User`] |
//! | `users_by_email` | lower-case email | user id |
//! | `courses` | course id | [`Course`] |
//! | `sessions` | session id | [`Session`] |
//! | `records` | session id `\0` student id | [`Record`] |
//! | `active_by_course` | course id `\0` session id | empty |
//! | `notif_user`, `notif_role`, `notif_read`, `attendance_tally` | see `notifications` | notifications, read marks, tallies |
//! | `meta` | `schema_version` | version number |
//! | `messages`, `message_ids`, `inbox` | see `messages` | [`Message`] |
//! | `revoked_tokens` | token id | expiry (see `revoked`) |
//!
//! Every change is written atomically under the store's write lock (a sled
//! transaction, a batch or a single insert); a change is durable once
//! [`Store::durable`] has returned for its ticket. Durability is group
//! commit: one flusher thread loops "take the highest ticket written so far,
//! flush sled, `fdatasync` the data file, publish that ticket" while anyone
//! waits, so each flush covers every write made while the previous one ran.
//!
//! Marks, the hot path, avoid sled transactions and batches where they can:
//! sled 0.34 seals and writes its I/O buffer when each of them begins (a
//! `pwrite` and a `sync_file_range` apiece), while a plain insert only
//! appends to the buffer that the next group flush writes.
//!
//! # Layout
//!
//! [`Store`] (here) is the API: it takes the write lock, lets the part that
//! owns the state make the change, and hands out the ticket. The parts:
//! - `model`: the stored types, plain serde (no sled);
//! - `error`, `time`: [`StoreError`]; the timestamp helpers;
//! - `flusher`: the write lock, [`Ticket`]s and the group-commit thread;
//! - `codec`: the JSON encoding, keys and `Table`, typed access to a tree;
//! - `cache`: decoded values by key, generation-checked;
//! - `users`, `courses`, `sessions`, `records`: each owns its trees and
//!   caches; `activity`: sessions' last activity, in memory;
//! - `messages`: direct messages and inboxes; `revoked`: revoked token ids
//!   (each adds its `impl Store` methods in its own file).
//!
//! # Locks
//!
//! The write lock (in `flusher`) is taken first and held by a write from its
//! change to its ticket. Every other lock (the session and course caches,
//! the user names, the activity map, the flusher's request lock) is a leaf:
//! held for one lookup or update, never while taking another lock, so it
//! may be taken with or without the write lock. Methods of the parts that
//! must run under the write lock take its guard (`flusher::Writing`).

mod activity;
mod admin_reads;
mod cache;
mod codec;
mod courses;
mod error;
mod flusher;
mod messages;
mod model;
mod notifications;
mod records;
mod revoked;
mod sessions;
mod stats;
#[cfg(test)]
mod test_support;
mod time;
mod users;

use std::path::Path;
use std::sync::Arc;

pub use error::{FlushError, StoreError};
pub use flusher::Ticket;
pub use messages::Message;
pub use model::{
    CheckinSettings, Course, Geofence, Location, Mark, Record, Role, Session, SessionStatus, Stats,
    Status, User,
};
pub use notifications::{
    NewNotification, Notification, NotificationBody, NotificationPage, NotificationTarget, Tally,
    TallyChange, UNREAD_SCAN,
};
pub use stats::StoreStats;
pub use time::{format_rfc3339, now_ms, now_rfc3339, parse_rfc3339};

use activity::Activity;
use codec::{dec, enc};
use courses::Courses;
use flusher::Flusher;
use records::Records;
use sessions::Sessions;
use users::Users;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u64 = 1;

/// The parts of one store, shared by its clones; each owns its state.
struct Inner {
    /// First, so that dropping the store stops the flusher thread first.
    flusher: Flusher,
    users: Users,
    courses: Courses,
    sessions: Sessions,
    records: Records,
    activity: Activity,
    messages: messages::Messages,
    revoked: revoked::Revoked,
    notifications: notifications::Notifications,
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, with a sled cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(1000))
            .open()?;
        let meta = db.open_tree("meta")?;
        match meta.get("schema_version")? {
            Some(v) => {
                let n: u64 = dec(&v)?;
                if n > SCHEMA_VERSION {
                    return Err(StoreError::Schema(n));
                }
            }
            None => {
                meta.insert("schema_version", enc(&SCHEMA_VERSION))?;
                db.flush()?;
            }
        }
        let store = Store {
            inner: Arc::new(Inner {
                flusher: Flusher::start(&db, dir)?,
                users: Users::open(&db)?,
                courses: Courses::open(&db)?,
                sessions: Sessions::open(&db)?,
                records: Records::open(&db)?,
                activity: Activity::new(),
                messages: messages::Messages::open(&db)?,
                revoked: revoked::Revoked::open(&db)?,
                notifications: notifications::Notifications::open(&db)?,
            }),
        };
        store.recover_activity()?;
        Ok(store)
    }

    /// A ticket covering every write made so far: waiting on it makes sure
    /// that what a read has seen is durable before the reader is answered.
    pub fn barrier(&self) -> Ticket {
        self.inner.flusher.barrier()
    }

    /// Waits until the write behind `ticket` is on disk (sled flushed and
    /// the data file `fdatasync`ed). Callers share flushes: whoever arrives
    /// while a flush runs is covered by the next one, which starts as soon
    /// as the running one ends and covers everything written until then.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.flusher.durable(ticket).await
    }

    /// Flushes everything now, with an `fdatasync` of the data file
    /// (blocking; for command-line tools and shutdown).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.inner.flusher.flush_blocking()
    }

    // ---- users ----

    /// Creates a user.
    pub fn create_user(&self, user: &User) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let ((), t) = i.flusher.write(|w| i.users.create(w, user))?;
        Ok(t)
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.inner.users.get(id)
    }

    /// A user's display name (cached; `None` for an unknown user).
    pub fn user_name(&self, id: &str) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(n) = self.inner.users.cached_name(id) {
            return Ok(n);
        }
        // Under the write lock, so that no change of the user slips between
        // the read and the cache insert.
        let w = self.inner.flusher.lock();
        self.inner.users.load_name(&w, id)
    }

    /// A user by email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.inner.users.by_email(email)
    }

    /// All users.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.inner.users.all()
    }

    /// Changes a user in place.
    pub fn update_user(
        &self,
        id: &str,
        f: impl Fn(&mut User),
    ) -> Result<(User, Ticket), StoreError> {
        let i = &self.inner;
        i.flusher.write(|w| i.users.update(w, id, f))
    }

    // ---- courses ----

    /// Creates a course.
    pub fn create_course(&self, course: &Course) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let ((), t) = i.flusher.write(|w| i.courses.create(w, course))?;
        Ok(t)
    }

    /// A course by id (shared: decoded once, until the course changes).
    pub fn course(&self, id: &str) -> Result<Option<Arc<Course>>, StoreError> {
        self.inner.courses.get(id)
    }

    /// All courses.
    pub fn courses(&self) -> Result<Vec<Course>, StoreError> {
        self.inner.courses.all()
    }

    /// All courses, shared from the cache (decoded once until they change;
    /// presence looks up a user's courses with it, SPEC.md §4.18).
    pub fn courses_shared(&self) -> Result<Vec<Arc<Course>>, StoreError> {
        self.inner.courses.all_cached()
    }

    /// Changes a course in place.
    pub fn update_course(
        &self,
        id: &str,
        f: impl Fn(&mut Course),
    ) -> Result<(Course, Ticket), StoreError> {
        let i = &self.inner;
        i.flusher.write(|w| i.courses.update(w, id, f))
    }

    // ---- sessions ----

    /// Creates an active session with an absent record for every student.
    pub fn start_session(
        &self,
        session: &Session,
        students: &[String],
    ) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let ((), t) = i
            .flusher
            .write(|w| i.sessions.start(w, session, students, &i.records))?;
        Ok(t)
    }

    /// A session by id (shared: decoded once, until the session changes).
    pub fn session(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        self.inner.sessions.get(id)
    }

    /// Every active session (for resuming after a restart).
    pub fn active_sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions.all_active()
    }

    /// The active sessions of a course.
    pub fn active_sessions_of(&self, course_id: &str) -> Result<Vec<Session>, StoreError> {
        self.inner.sessions.active_of(course_id)
    }

    /// Ends an active session.
    pub fn end_session(&self, session_id: &str) -> Result<(Session, Ticket), StoreError> {
        let i = &self.inner;
        i.flusher.write(|w| {
            let activity = i.activity.get(session_id).unwrap_or(0);
            let s = i.sessions.end(w, session_id, activity)?;
            i.activity.forget(session_id);
            Ok(s)
        })
    }

    // ---- records ----

    /// Applies status changes to an active session, all or none.
    ///
    /// A student enrolled in the course after the session started has no
    /// record yet: one is created by this same write. Any other student
    /// without a record is refused (`NotFound`). One record is one sled
    /// insert; several are one sled batch (atomic within the records tree).
    /// The session itself is not rewritten: its activity time is kept in
    /// memory (see [`Store::last_activity`]).
    pub fn mark(
        &self,
        session_id: &str,
        by: &str,
        marks: &[Mark],
    ) -> Result<(Vec<Record>, Ticket), StoreError> {
        let i = &self.inner;
        i.flusher.write(|w| {
            let session = i.sessions.active(w, session_id)?;
            let (out, at_ms) = i.records.mark(w, &session, by, marks, &i.courses)?;
            i.activity.touch(session_id, at_ms);
            Ok(out)
        })
    }

    /// Makes sure an enrolled student has a record in an active session:
    /// creates the initial absent record of a student enrolled after the
    /// session started. `None` when the record existed already.
    pub fn ensure_record(
        &self,
        session_id: &str,
        student_id: &str,
    ) -> Result<Option<(Record, Ticket)>, StoreError> {
        let i = &self.inner;
        if i.records.exists(session_id, student_id)? {
            return Ok(None);
        }
        let w = i.flusher.lock();
        let session = i.sessions.active(&w, session_id)?;
        let created = i
            .records
            .ensure_initial(&w, &session, student_id, &i.courses)?;
        Ok(created.map(|r| (r, w.ticket())))
    }

    /// The records of a session, ordered by student id.
    pub fn records(&self, session_id: &str) -> Result<Vec<Record>, StoreError> {
        self.inner.records.of_session(session_id)
    }

    /// One record.
    pub fn record(&self, session_id: &str, student_id: &str) -> Result<Option<Record>, StoreError> {
        self.inner.records.get(session_id, student_id)
    }

    /// Counts of a session's records.
    pub fn stats(&self, session_id: &str) -> Result<Stats, StoreError> {
        self.inner.records.stats(session_id)
    }

    // ---- activity ----

    /// When the session last changed (Unix ms), for the idle timeout: the
    /// latest of the stored `last_activity_ms` and the marks made since it
    /// was stored (kept in memory; after a restart, rebuilt from the
    /// records' `marked_at`).
    pub fn last_activity(&self, session: &Session) -> u64 {
        self.inner.activity.last(session)
    }

    /// Writes the in-memory activity times of active sessions into their
    /// stored sessions, where newer (for the idle task; the change is made
    /// durable by the next flush).
    pub fn persist_activity(&self) -> Result<Option<Ticket>, StoreError> {
        let i = &self.inner;
        let pending = i.activity.pending();
        let w = i.flusher.lock();
        let mut wrote = false;
        for (sid, at_ms) in pending {
            match i.sessions.get(&sid)? {
                Some(s) if s.status == SessionStatus::Active => {
                    if s.last_activity_ms < at_ms {
                        i.sessions.set_activity(&w, &s, at_ms)?;
                        wrote = true;
                    }
                }
                _ => i.activity.forget(&sid),
            }
        }
        Ok(wrote.then(|| w.ticket()))
    }

    /// Rebuilds the in-memory activity of active sessions from their
    /// records (the latest `marked_at`), after opening.
    fn recover_activity(&self) -> Result<(), StoreError> {
        let i = &self.inner;
        for s in i.sessions.all_active()? {
            if let Some(t) = i.records.latest_mark(&s.id)? {
                i.activity.touch(&s.id, t);
            }
        }
        Ok(())
    }
}
