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
//! | `meta` | `schema_version` | version number |
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

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

mod error;
mod model;
mod time;

pub use error::{FlushError, StoreError};
pub use model::{
    CheckinSettings, Course, Geofence, Location, Mark, Record, Role, Session, SessionStatus, Stats,
    Status, User,
};
pub use time::{format_rfc3339, now_ms, now_rfc3339, parse_rfc3339};

/// The schema version this code writes.
pub const SCHEMA_VERSION: u64 = 1;

fn rec_key(session_id: &str, student_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(session_id.len() + 1 + student_id.len());
    k.extend_from_slice(session_id.as_bytes());
    k.push(0);
    k.extend_from_slice(student_id.as_bytes());
    k
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(b)?)
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// What the flusher has done so far, published to waiting committers.
#[derive(Debug, Clone, Default)]
struct FlushStatus {
    /// Every ticket up to this one is durable.
    flushed: u64,
    /// The flush meant to cover tickets up to this one failed (when above `flushed`).
    failed_upto: u64,
    /// The error of that failed flush.
    error: Option<Arc<FlushError>>,
}

impl FlushStatus {
    /// The outcome for `ticket`, once there is one.
    fn outcome(&self, ticket: u64) -> Option<Result<(), StoreError>> {
        if self.flushed >= ticket {
            Some(Ok(()))
        } else if self.failed_upto >= ticket {
            let e = self
                .error
                .clone()
                .map_or(StoreError::Closed, StoreError::Flush);
            Some(Err(e))
        } else {
            None
        }
    }
}

/// Requests to the flusher thread.
#[derive(Debug, Default)]
struct FlushRequest {
    /// The highest ticket someone waits for.
    wanted: u64,
    /// The highest ticket a flush has been attempted for.
    covered: u64,
    /// The store is being dropped: the thread exits.
    shutdown: bool,
}

/// State shared between the store and its flusher thread.
struct FlushShared {
    db: sled::Db,
    /// sled's data file (`DIR/db`), for `fdatasync` after each flush: sled
    /// 0.34 syncs its log with `sync_file_range`, which neither flushes the
    /// drive's volatile cache nor the file's size.
    data_file: std::fs::File,
    /// Tickets handed out to writes.
    written: AtomicU64,
    request: parking_lot::Mutex<FlushRequest>,
    wake: parking_lot::Condvar,
    status: tokio::sync::watch::Sender<FlushStatus>,
}

impl FlushShared {
    /// sled flush plus `fdatasync` of the data file.
    fn flush_and_sync(&self) -> Result<(), FlushError> {
        self.db.flush().map_err(FlushError::Sled)?;
        self.data_file.sync_data().map_err(FlushError::Sync)
    }

    /// The flusher thread: one flush at a time, each covering every write
    /// ticketed before it began, for as long as someone waits.
    fn run(&self) {
        loop {
            let target = {
                let mut req = self.request.lock();
                while req.wanted <= req.covered && !req.shutdown {
                    self.wake.wait(&mut req);
                }
                if req.shutdown {
                    return;
                }
                // Every write with a ticket up to here is in sled already.
                let target = self.written.load(Ordering::Acquire);
                req.covered = target;
                target
            };
            let result = self.flush_and_sync();
            self.status.send_modify(|s| match result {
                Ok(()) => s.flushed = s.flushed.max(target),
                Err(e) => {
                    tracing::error!(error = %e, "group flush failed");
                    s.failed_upto = s.failed_upto.max(target);
                    s.error = Some(Arc::new(e));
                }
            });
        }
    }
}

/// Decoded values of one tree by key, filled on read and dropped when the
/// key is written. A generation number, bumped by every invalidation, keeps
/// a reader from caching a value that a write replaced while it was reading.
struct Cache<T> {
    map: parking_lot::RwLock<(u64, HashMap<String, Arc<T>>)>,
}

impl<T: for<'de> Deserialize<'de>> Cache<T> {
    fn new() -> Cache<T> {
        Cache {
            map: parking_lot::RwLock::new((0, HashMap::new())),
        }
    }

    /// The value of `id` in `tree`, from the cache when there.
    fn get(&self, tree: &sled::Tree, id: &str) -> Result<Option<Arc<T>>, StoreError> {
        let generation = {
            let m = self.map.read();
            if let Some(v) = m.1.get(id) {
                return Ok(Some(v.clone()));
            }
            m.0
        };
        let Some(bytes) = tree.get(id)? else {
            return Ok(None);
        };
        let v = Arc::new(dec::<T>(&bytes)?);
        let mut m = self.map.write();
        if m.0 == generation {
            m.1.insert(id.to_string(), v.clone());
        }
        Ok(Some(v))
    }

    /// Forgets `id`; call after writing it.
    fn invalidate(&self, id: &str) {
        let mut m = self.map.write();
        m.0 += 1;
        m.1.remove(id);
    }
}

struct Inner {
    users: sled::Tree,
    emails: sled::Tree,
    courses: sled::Tree,
    sessions: sled::Tree,
    records: sled::Tree,
    active: sled::Tree,
    flush: Arc<FlushShared>,
    flusher: Option<std::thread::JoinHandle<()>>,
    /// Held by each write from its change to its ticket, so that a ticket
    /// (or a barrier) always covers every write visible before it.
    write_lock: parking_lot::Mutex<()>,
    /// Last activity (Unix ms) of sessions marked since their stored
    /// `last_activity_ms`; kept out of the per-mark write.
    activity: parking_lot::Mutex<HashMap<String, u64>>,
    /// Display names by user id (`None`: no such user), filled on use and
    /// dropped when the user is written.
    names: parking_lot::RwLock<HashMap<String, Option<Arc<str>>>>,
    /// Decoded sessions and courses (read on every request).
    session_cache: Cache<Session>,
    course_cache: Cache<Course>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flush.request.lock().shutdown = true;
        self.flush.wake.notify_all();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
    }
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Proof that a write happened; pass it to [`Store::durable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a write is durable only after Store::durable(ticket)"]
pub struct Ticket(u64);

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
        let flush = Arc::new(FlushShared {
            db: db.clone(),
            data_file: std::fs::File::open(dir.join("db"))
                .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?,
            written: AtomicU64::new(0),
            request: parking_lot::Mutex::new(FlushRequest::default()),
            wake: parking_lot::Condvar::new(),
            status: tokio::sync::watch::Sender::new(FlushStatus::default()),
        });
        let flusher = {
            let flush = flush.clone();
            std::thread::Builder::new()
                .name("store-flusher".into())
                .spawn(move || flush.run())
                .map_err(|e| StoreError::Sled(sled::Error::Io(e)))?
        };
        let store = Store {
            inner: Arc::new(Inner {
                users: db.open_tree("users")?,
                emails: db.open_tree("users_by_email")?,
                courses: db.open_tree("courses")?,
                sessions: db.open_tree("sessions")?,
                records: db.open_tree("records")?,
                active: db.open_tree("active_by_course")?,
                flush,
                flusher: Some(flusher),
                write_lock: parking_lot::Mutex::new(()),
                activity: parking_lot::Mutex::new(HashMap::new()),
                names: parking_lot::RwLock::new(HashMap::new()),
                session_cache: Cache::new(),
                course_cache: Cache::new(),
            }),
        };
        store.recover_activity()?;
        Ok(store)
    }

    fn ticket(&self) -> Ticket {
        Ticket(self.inner.flush.written.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// A ticket covering every write made so far: waiting on it makes sure
    /// that what a read has seen is durable before the reader is answered.
    pub fn barrier(&self) -> Ticket {
        let _w = self.inner.write_lock.lock();
        Ticket(self.inner.flush.written.load(Ordering::Acquire))
    }

    /// Waits until the write behind `ticket` is on disk (sled flushed and
    /// the data file `fdatasync`ed). Callers share flushes: whoever arrives
    /// while a flush runs is covered by the next one, which starts as soon
    /// as the running one ends and covers everything written until then.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let f = &self.inner.flush;
        let mut rx = f.status.subscribe();
        if let Some(r) = rx.borrow().outcome(ticket.0) {
            return r;
        }
        {
            let mut req = f.request.lock();
            if req.wanted < ticket.0 {
                req.wanted = ticket.0;
                f.wake.notify_one();
            }
        }
        let status = rx
            .wait_for(|s| s.outcome(ticket.0).is_some())
            .await
            .map_err(|_| StoreError::Closed)?;
        status.outcome(ticket.0).unwrap_or(Err(StoreError::Closed))
    }

    /// Flushes everything now, with an `fdatasync` of the data file
    /// (blocking; for command-line tools and shutdown).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.inner
            .flush
            .flush_and_sync()
            .map_err(|e| StoreError::Flush(Arc::new(e)))
    }

    // ---- users ----

    /// Creates a user.
    pub fn create_user(&self, user: &User) -> Result<Ticket, StoreError> {
        let _w = self.inner.write_lock.lock();
        let email = user.email.to_lowercase();
        (&self.inner.users, &self.inner.emails)
            .transaction(|(users, emails)| {
                if users.get(user.id.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("user"));
                }
                if emails.get(email.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("email"));
                }
                users.insert(user.id.as_bytes(), enc(user))?;
                emails.insert(email.as_bytes(), user.id.as_bytes())?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.inner.names.write().remove(&user.id);
        Ok(self.ticket())
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.inner.users.get(id)?.map(|v| dec(&v)).transpose()
    }

    /// A user's display name (cached; `None` for an unknown user).
    pub fn user_name(&self, id: &str) -> Result<Option<Arc<str>>, StoreError> {
        if let Some(n) = self.inner.names.read().get(id) {
            return Ok(n.clone());
        }
        // Under the write lock, so that no change of the user slips between
        // the read and the cache insert.
        let _w = self.inner.write_lock.lock();
        let name = self.user(id)?.map(|u| Arc::<str>::from(u.name));
        self.inner
            .names
            .write()
            .insert(id.to_string(), name.clone());
        Ok(name)
    }

    /// A user by email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        match self.inner.emails.get(email.to_lowercase())? {
            Some(id) => self.user(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// All users.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.inner
            .users
            .iter()
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| dec(&v)))
            .collect()
    }

    /// Changes a user in place.
    pub fn update_user(
        &self,
        id: &str,
        f: impl Fn(&mut User),
    ) -> Result<(User, Ticket), StoreError> {
        let _w = self.inner.write_lock.lock();
        let user = self
            .inner
            .users
            .transaction(|users| {
                let Some(v) = users.get(id.as_bytes())? else {
                    return abort(StoreError::NotFound("user"));
                };
                let mut u: User = dec(&v).or_else(abort)?;
                f(&mut u);
                users.insert(id.as_bytes(), enc(&u))?;
                Ok(u)
            })
            .map_err(tx_err)?;
        self.inner.names.write().remove(id);
        Ok((user, self.ticket()))
    }

    // ---- courses ----

    /// Creates a course.
    pub fn create_course(&self, course: &Course) -> Result<Ticket, StoreError> {
        let _w = self.inner.write_lock.lock();
        self.inner
            .courses
            .compare_and_swap(
                course.id.as_bytes(),
                None as Option<&[u8]>,
                Some(enc(course)),
            )?
            .map_err(|_| StoreError::Exists("course"))?;
        self.inner.course_cache.invalidate(&course.id);
        Ok(self.ticket())
    }

    /// A course by id (shared: decoded once, until the course changes).
    pub fn course(&self, id: &str) -> Result<Option<Arc<Course>>, StoreError> {
        self.inner.course_cache.get(&self.inner.courses, id)
    }

    /// All courses.
    pub fn courses(&self) -> Result<Vec<Course>, StoreError> {
        self.inner
            .courses
            .iter()
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| dec(&v)))
            .collect()
    }

    /// Changes a course in place.
    pub fn update_course(
        &self,
        id: &str,
        f: impl Fn(&mut Course),
    ) -> Result<(Course, Ticket), StoreError> {
        let _w = self.inner.write_lock.lock();
        let course = self
            .inner
            .courses
            .transaction(|courses| {
                let Some(v) = courses.get(id.as_bytes())? else {
                    return abort(StoreError::NotFound("course"));
                };
                let mut c: Course = dec(&v).or_else(abort)?;
                f(&mut c);
                courses.insert(id.as_bytes(), enc(&c))?;
                Ok(c)
            })
            .map_err(tx_err)?;
        self.inner.course_cache.invalidate(id);
        Ok((course, self.ticket()))
    }

    // ---- sessions ----

    /// Creates an active session with an absent record for every student.
    pub fn start_session(
        &self,
        session: &Session,
        students: &[String],
    ) -> Result<Ticket, StoreError> {
        let _w = self.inner.write_lock.lock();
        let i = &self.inner;
        (&i.sessions, &i.records, &i.active)
            .transaction(|(sessions, records, active)| {
                if sessions.get(session.id.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("session"));
                }
                sessions.insert(session.id.as_bytes(), enc(session))?;
                for s in students {
                    let r = Record::initial(&session.id, s);
                    records.insert(rec_key(&session.id, s), enc(&r))?;
                }
                active.insert(rec_key(&session.course_id, &session.id), &[])?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.inner.session_cache.invalidate(&session.id);
        Ok(self.ticket())
    }

    /// A session by id (shared: decoded once, until the session changes).
    pub fn session(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        self.inner.session_cache.get(&self.inner.sessions, id)
    }

    /// Every active session (for resuming after a restart).
    pub fn active_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let mut out = Vec::new();
        for kv in self.inner.active.iter() {
            let (k, _) = kv?;
            if let Some(pos) = k.iter().position(|&b| b == 0) {
                if let Some(s) = self.session(&String::from_utf8_lossy(&k[pos + 1..]))? {
                    out.push(Session::clone(&s));
                }
            }
        }
        Ok(out)
    }

    /// The active sessions of a course.
    pub fn active_sessions_of(&self, course_id: &str) -> Result<Vec<Session>, StoreError> {
        let mut prefix = course_id.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for kv in self.inner.active.scan_prefix(&prefix) {
            let (k, _) = kv?;
            if let Some(s) = self.session(&String::from_utf8_lossy(&k[prefix.len()..]))? {
                out.push(Session::clone(&s));
            }
        }
        Ok(out)
    }

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
        let _w = self.inner.write_lock.lock();
        let session = self.active_session(session_id)?;
        let at_ms = now_ms();
        let at = format_rfc3339(at_ms);
        let mut course: Option<Arc<Course>> = None;
        let mut out = Vec::with_capacity(marks.len());
        let mut writes = Vec::with_capacity(marks.len());
        for m in marks {
            let key = rec_key(session_id, &m.student_id);
            if !self.inner.records.contains_key(&key)? {
                self.require_enrolled(&session, &m.student_id, &mut course)?;
            }
            let r = Record {
                session_id: session_id.to_string(),
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
        match writes.len() {
            0 => {}
            1 => {
                let (k, v) = writes.swap_remove(0);
                self.inner.records.insert(k, v)?;
            }
            _ => {
                let mut batch = sled::Batch::default();
                for (k, v) in writes {
                    batch.insert(k, v);
                }
                self.inner.records.apply_batch(batch)?;
            }
        }
        self.touch(session_id, at_ms);
        Ok((out, self.ticket()))
    }

    /// Makes sure an enrolled student has a record in an active session:
    /// creates the initial absent record of a student enrolled after the
    /// session started. `None` when the record existed already.
    pub fn ensure_record(
        &self,
        session_id: &str,
        student_id: &str,
    ) -> Result<Option<(Record, Ticket)>, StoreError> {
        let key = rec_key(session_id, student_id);
        if self.inner.records.contains_key(&key)? {
            return Ok(None);
        }
        let _w = self.inner.write_lock.lock();
        let session = self.active_session(session_id)?;
        if self.inner.records.contains_key(&key)? {
            return Ok(None);
        }
        self.require_enrolled(&session, student_id, &mut None)?;
        let r = Record::initial(session_id, student_id);
        self.inner.records.insert(key, enc(&r))?;
        Ok(Some((r, self.ticket())))
    }

    /// The session, if it is active (call with the write lock held).
    fn active_session(&self, session_id: &str) -> Result<Arc<Session>, StoreError> {
        let s = self
            .session(session_id)?
            .ok_or(StoreError::NotFound("session"))?;
        if s.status != SessionStatus::Active {
            return Err(StoreError::SessionNotActive);
        }
        Ok(s)
    }

    /// Refuses a student not enrolled in the session's course (`course`
    /// caches the course across calls).
    fn require_enrolled(
        &self,
        session: &Session,
        student_id: &str,
        course: &mut Option<Arc<Course>>,
    ) -> Result<(), StoreError> {
        if course.is_none() {
            *course = self.course(&session.course_id)?;
        }
        match course {
            Some(c) if c.students.iter().any(|s| s == student_id) => Ok(()),
            _ => Err(StoreError::NotFound("student in session")),
        }
    }

    /// Records activity in a session (in memory).
    fn touch(&self, session_id: &str, at_ms: u64) {
        let mut a = self.inner.activity.lock();
        match a.get_mut(session_id) {
            Some(t) => *t = (*t).max(at_ms),
            None => {
                a.insert(session_id.to_string(), at_ms);
            }
        }
    }

    /// When the session last changed (Unix ms), for the idle timeout: the
    /// latest of the stored `last_activity_ms` and the marks made since it
    /// was stored (kept in memory; after a restart, rebuilt from the
    /// records' `marked_at`).
    pub fn last_activity(&self, session: &Session) -> u64 {
        let mem = self.inner.activity.lock().get(&session.id).copied();
        mem.map_or(session.last_activity_ms, |t| {
            t.max(session.last_activity_ms)
        })
    }

    /// Writes the in-memory activity times of active sessions into their
    /// stored sessions, where newer (for the idle task; the change is made
    /// durable by the next flush).
    pub fn persist_activity(&self) -> Result<Option<Ticket>, StoreError> {
        let pending: Vec<(String, u64)> = self
            .inner
            .activity
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let _w = self.inner.write_lock.lock();
        let mut wrote = false;
        for (sid, at_ms) in pending {
            match self.session(&sid)? {
                Some(s) if s.status == SessionStatus::Active => {
                    if s.last_activity_ms < at_ms {
                        let mut s = Session::clone(&s);
                        s.last_activity_ms = at_ms;
                        self.inner.sessions.insert(sid.as_bytes(), enc(&s))?;
                        self.inner.session_cache.invalidate(&sid);
                        wrote = true;
                    }
                }
                _ => {
                    self.inner.activity.lock().remove(&sid);
                }
            }
        }
        Ok(wrote.then(|| self.ticket()))
    }

    /// Rebuilds the in-memory activity of active sessions from their
    /// records (the latest `marked_at`), after opening.
    fn recover_activity(&self) -> Result<(), StoreError> {
        for s in self.active_sessions()? {
            let latest = self
                .records(&s.id)?
                .iter()
                .filter_map(|r| r.marked_at.as_deref().and_then(parse_rfc3339))
                .max();
            if let Some(t) = latest {
                self.touch(&s.id, t);
            }
        }
        Ok(())
    }

    /// Ends an active session.
    pub fn end_session(&self, session_id: &str) -> Result<(Session, Ticket), StoreError> {
        let _w = self.inner.write_lock.lock();
        let i = &self.inner;
        let activity = i.activity.lock().get(session_id).copied().unwrap_or(0);
        let s = (&i.sessions, &i.active)
            .transaction(|(sessions, active)| {
                let Some(v) = sessions.get(session_id.as_bytes())? else {
                    return abort(StoreError::NotFound("session"));
                };
                let mut s: Session = dec(&v).or_else(abort)?;
                if s.status != SessionStatus::Active {
                    return abort(StoreError::SessionNotActive);
                }
                s.status = SessionStatus::Ended;
                s.ended_at = Some(now_rfc3339());
                s.last_activity_ms = s.last_activity_ms.max(activity);
                sessions.insert(session_id.as_bytes(), enc(&s))?;
                active.remove(rec_key(&s.course_id, &s.id))?;
                Ok(s)
            })
            .map_err(tx_err)?;
        i.session_cache.invalidate(session_id);
        i.activity.lock().remove(session_id);
        Ok((s, self.ticket()))
    }

    /// The records of a session, ordered by student id.
    pub fn records(&self, session_id: &str) -> Result<Vec<Record>, StoreError> {
        let mut prefix = session_id.as_bytes().to_vec();
        prefix.push(0);
        self.inner
            .records
            .scan_prefix(prefix)
            .map(|r| r.map_err(StoreError::from).and_then(|(_, v)| dec(&v)))
            .collect()
    }

    /// One record.
    pub fn record(&self, session_id: &str, student_id: &str) -> Result<Option<Record>, StoreError> {
        self.inner
            .records
            .get(rec_key(session_id, student_id))?
            .map(|v| dec(&v))
            .transpose()
    }

    /// Counts of a session's records.
    pub fn stats(&self, session_id: &str) -> Result<Stats, StoreError> {
        let mut st = Stats::default();
        for r in self.records(session_id)? {
            st.total += 1;
            match r.status {
                Status::Present => st.present += 1,
                Status::Absent => st.absent += 1,
            }
        }
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
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
        fn db(&self) -> PathBuf {
            self.0.join("db")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(dir: &TempDir) -> Store {
        Store::open(&dir.db(), 8 << 20).unwrap()
    }

    /// A course `c1` with `students`, and an active session `s1` of it
    /// started with those students.
    fn setup(store: &Store, students: &[&str]) {
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

    fn mark(student: &str, status: Status) -> Mark {
        Mark {
            student_id: student.into(),
            status,
            method: "teacher",
            location: None,
        }
    }

    fn enroll(store: &Store, student: &str) {
        let _ = store
            .update_course("c1", |c| c.students.push(student.into()))
            .unwrap();
    }

    #[tokio::test]
    async fn durable_marks_survive_reopening() {
        let dir = TempDir::new("reopen");
        {
            let store = open(&dir);
            setup(&store, &["a", "b"]);
            let (recs, t1) = store
                .mark("s1", "t1", &[mark("a", Status::Present)])
                .unwrap();
            assert_eq!(recs.len(), 1);
            assert_eq!(recs[0].marked_by.as_deref(), Some("t1"));
            let (_, t2) = store
                .mark("s1", "t1", &[mark("b", Status::Present)])
                .unwrap();
            // Waiting on the later ticket first covers the earlier one too.
            store.durable(t2).await.unwrap();
            store.durable(t1).await.unwrap();
            store.durable(store.barrier()).await.unwrap();
        }
        // Dropping the store stopped its flusher and released sled's lock.
        let store = open(&dir);
        let st = store.stats("s1").unwrap();
        assert_eq!((st.present, st.absent, st.total), (2, 0, 2));
    }

    #[tokio::test]
    async fn concurrent_waiters_share_flushes() {
        let dir = TempDir::new("group");
        let store = open(&dir);
        let students: Vec<String> = (0..200).map(|i| format!("s{i:03}")).collect();
        let refs: Vec<&str> = students.iter().map(String::as_str).collect();
        setup(&store, &refs);
        let mut tasks = Vec::new();
        for s in students {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (_, t) = store
                    .mark("s1", "t1", &[mark(&s, Status::Present)])
                    .unwrap();
                store.durable(t).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(store.stats("s1").unwrap().present, 200);
    }

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

    #[test]
    fn user_names_are_cached_and_follow_changes() {
        let dir = TempDir::new("names");
        let store = open(&dir);
        assert_eq!(store.user_name("u1").unwrap(), None);
        let user = User {
            id: "u1".into(),
            email: "u1@example.test".into(),
            name: "First".into(),
            role: Role::Student,
            password_hash: None,
            active: true,
            token_version: 0,
            created_at: now_rfc3339(),
        };
        let _ = store.create_user(&user).unwrap();
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("First"));
        let _ = store
            .update_user("u1", |u| u.name = "Second".into())
            .unwrap();
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("Second"));
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("Second"));
    }
}
