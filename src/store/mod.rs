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
//! Every change is written in one sled transaction; a change is durable once
//! [`Store::durable`] has returned for its ticket. Durability is group
//! commit: one flusher thread
//! loops "take the highest ticket written so far, flush sled, `fdatasync` the
//! data file, publish that ticket" while anyone waits, so each flush covers
//! every write made while the previous one ran.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

/// The schema version this code writes.
pub const SCHEMA_VERSION: u64 = 1;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing exists already.
    #[error("{0} already exists")]
    Exists(&'static str),
    /// The change does not fit the current state (e.g. session not active).
    #[error("{0}")]
    Conflict(&'static str),
    /// The session has ended.
    #[error("session is not active")]
    SessionNotActive,
    /// The data directory was written by a newer version.
    #[error("unsupported schema version {0}")]
    Schema(u64),
    /// The flush that was to make a write durable failed.
    #[error("flush failed: {0}")]
    Flush(Arc<FlushError>),
    /// The store's flusher has stopped (the store is being closed).
    #[error("store closed")]
    Closed,
}

/// Why a group flush failed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// sled could not write its log.
    #[error("sled flush: {0}")]
    Sled(sled::Error),
    /// `fdatasync` of the data file failed.
    #[error("fdatasync: {0}")]
    Sync(std::io::Error),
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Runs the sessions of their courses.
    Teacher,
    /// Joins sessions and checks in.
    Student,
}

impl Role {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "teacher" => Ok(Role::Teacher),
            "student" => Ok(Role::Student),
            _ => Err(format!("unknown role {s:?} (admin, teacher or student)")),
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: String,
    /// Email (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2 PHC string; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
    /// Disabled users cannot connect.
    pub active: bool,
    /// Tokens carrying an older version are refused.
    pub token_version: u64,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// A course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Teacher user ids.
    pub teachers: Vec<String>,
    /// Enrolled student user ids.
    pub students: Vec<String>,
}

/// A circular area a self check-in must come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lng: f64,
    /// Radius in metres.
    pub radius_m: f64,
}

/// How students may check themselves in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckinSettings {
    /// Whether a rotating check-in code is required.
    pub code_required: bool,
    /// Secret the codes are derived from.
    pub code_secret: String,
    /// Code lifetime in seconds.
    pub code_period_secs: u64,
    /// Optional geofence.
    pub geofence: Option<Geofence>,
}

/// Status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Running.
    Active,
    /// Over.
    Ended,
}

/// An attendance session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Course.
    pub course_id: String,
    /// Teacher who started it.
    pub teacher_id: String,
    /// Status.
    pub status: SessionStatus,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// End time (RFC 3339).
    pub ended_at: Option<String>,
    /// Last change (Unix ms), for the idle timeout.
    pub last_activity_ms: u64,
    /// Self check-in settings.
    pub checkin: CheckinSettings,
}

/// Present or absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present.
    Present,
    /// Absent.
    Absent,
}

impl Status {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Absent => "absent",
        }
    }
}

/// A location reported by a client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lng: f64,
}

/// One student's attendance in one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Session.
    pub session_id: String,
    /// Student.
    pub student_id: String,
    /// Status.
    pub status: Status,
    /// Who set the status (user id; `None` for the initial absent record).
    pub marked_by: Option<String>,
    /// When (RFC 3339).
    pub marked_at: Option<String>,
    /// How: `initial`, `teacher`, `bulk`, `self`.
    pub method: String,
    /// Where (self check-in).
    pub location: Option<Location>,
}

/// Counts of a session's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    /// Present.
    pub present: usize,
    /// Absent.
    pub absent: usize,
    /// All records.
    pub total: usize,
}

/// A status change to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Student.
    pub student_id: String,
    /// New status.
    pub status: Status,
    /// How (`teacher`, `bulk`, `self`).
    pub method: &'static str,
    /// Where, for self check-in.
    pub location: Option<Location>,
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    format_rfc3339(now_ms())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

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
            }),
        };
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
        Ok(self.ticket())
    }

    /// A user by id.
    pub fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.inner.users.get(id)?.map(|v| dec(&v)).transpose()
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
        Ok(self.ticket())
    }

    /// A course by id.
    pub fn course(&self, id: &str) -> Result<Option<Course>, StoreError> {
        self.inner.courses.get(id)?.map(|v| dec(&v)).transpose()
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
                    let r = Record {
                        session_id: session.id.clone(),
                        student_id: s.clone(),
                        status: Status::Absent,
                        marked_by: None,
                        marked_at: None,
                        method: "initial".into(),
                        location: None,
                    };
                    records.insert(rec_key(&session.id, s), enc(&r))?;
                }
                active.insert(rec_key(&session.course_id, &session.id), &[])?;
                Ok(())
            })
            .map_err(tx_err)?;
        Ok(self.ticket())
    }

    /// A session by id.
    pub fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.inner.sessions.get(id)?.map(|v| dec(&v)).transpose()
    }

    /// Every active session (for resuming after a restart).
    pub fn active_sessions(&self) -> Result<Vec<Session>, StoreError> {
        let mut out = Vec::new();
        for kv in self.inner.active.iter() {
            let (k, _) = kv?;
            if let Some(pos) = k.iter().position(|&b| b == 0) {
                if let Some(s) = self.session(&String::from_utf8_lossy(&k[pos + 1..]))? {
                    out.push(s);
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
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Applies status changes to an active session, all or none. Every
    /// student must already have a record in the session.
    pub fn mark(
        &self,
        session_id: &str,
        by: &str,
        marks: &[Mark],
    ) -> Result<(Vec<Record>, Ticket), StoreError> {
        let _w = self.inner.write_lock.lock();
        let i = &self.inner;
        let at_ms = now_ms();
        let at = format_rfc3339(at_ms);
        let out = (&i.sessions, &i.records)
            .transaction(|(sessions, records)| {
                let Some(v) = sessions.get(session_id.as_bytes())? else {
                    return abort(StoreError::NotFound("session"));
                };
                let mut s: Session = dec(&v).or_else(abort)?;
                if s.status != SessionStatus::Active {
                    return abort(StoreError::SessionNotActive);
                }
                let mut out = Vec::with_capacity(marks.len());
                for m in marks {
                    let key = rec_key(session_id, &m.student_id);
                    let Some(old) = records.get(&key)? else {
                        return abort(StoreError::NotFound("student in session"));
                    };
                    let mut r: Record = dec(&old).or_else(abort)?;
                    r.status = m.status;
                    r.marked_by = Some(by.to_string());
                    r.marked_at = Some(at.clone());
                    r.method = m.method.to_string();
                    r.location = m.location;
                    records.insert(key, enc(&r))?;
                    out.push(r);
                }
                s.last_activity_ms = at_ms;
                sessions.insert(session_id.as_bytes(), enc(&s))?;
                Ok(out)
            })
            .map_err(tx_err)?;
        Ok((out, self.ticket()))
    }

    /// Ends an active session.
    pub fn end_session(&self, session_id: &str) -> Result<(Session, Ticket), StoreError> {
        let _w = self.inner.write_lock.lock();
        let i = &self.inner;
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
                sessions.insert(session_id.as_bytes(), enc(&s))?;
                active.remove(rec_key(&s.course_id, &s.id))?;
                Ok(s)
            })
            .map_err(tx_err)?;
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

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_705_314_600_123),
            "2024-01-15T10:30:00.123Z"
        );
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
