//! The attendance application: authentication, the events of the seed
//! documents, course tracking and self check-in, on top of [`crate::socketio`]
//! and [`crate::store`].
//!
//! Each socket's requests are handled in arrival order by a small per-socket
//! pipeline: a worker applies each request to the store (in memory, fast) and
//! hands its effects (replies, broadcasts, room changes) to a committer that
//! waits until the write is durable and only then lets anyone see it. Writes
//! from many sockets share flushes, so a socket can have many requests in
//! flight while nothing unconfirmed is ever shown.

pub mod api;
pub mod auth;
pub mod checkin;
pub mod config;
mod error;
mod events;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::socketio::{
    AckSender, ConnectError, Namespace, NamespaceSetup, Payload, Socket, SocketIo, SocketIoConfig,
};
use crate::store::{Store, Ticket, User};
use auth::TokenKeys;
pub use config::AppConfig;
pub use error::{AppError, ErrorCode};

/// Something a handled request makes visible once it is durable.
pub(crate) enum Effect {
    /// An event to the requesting socket.
    Emit(&'static str, Value),
    /// An event to every socket in a room.
    Room(String, &'static str, Value),
    /// An event to a room, the requesting socket excluded.
    RoomExceptSelf(String, &'static str, Value),
    /// Join a room.
    Join(String),
    /// Leave a room.
    Leave(String),
}

/// The result of a request: the write to wait for, the effects, and the
/// data of the `{"ok":true, ...}` ack.
#[derive(Default)]
pub(crate) struct Outcome {
    pub ticket: Option<Ticket>,
    pub effects: Vec<Effect>,
    pub reply: serde_json::Map<String, Value>,
}

/// Per-socket state of the application.
pub(crate) struct SocketCtx {
    pub user: Arc<User>,
    bucket: Mutex<(f64, Instant)>,
}

struct Job {
    event: &'static str,
    payload: Payload,
    ack: Option<AckSender>,
}

struct Commit {
    event: &'static str,
    result: Result<Outcome, AppError>,
    /// Covers every write visible when the request was handled.
    barrier: Ticket,
    ack: Option<AckSender>,
}

/// The application state shared by all sockets.
pub struct App {
    pub(crate) store: Store,
    pub(crate) keys: TokenKeys,
    pub(crate) config: AppConfig,
    pub(crate) ns: Arc<Namespace>,
    /// Presence: for each active session, the students who joined it and the
    /// sockets through which they did (a student counts while any of those
    /// sockets is connected; rebuilt as they rejoin after a restart).
    pub(crate) joined: Mutex<HashMap<String, HashMap<String, HashSet<String>>>>,
    /// Sessions whose check-in code rotation task runs.
    rotating: Mutex<HashSet<String>>,
}

/// The events a client may send, with the error event used for refusals.
const EVENTS: &[(&str, &str)] = &[
    ("startAttendanceSession", "attendanceError"),
    ("joinAttendanceSession", "attendanceError"),
    ("markStudentPresent", "attendanceError"),
    ("markStudentAbsent", "attendanceError"),
    ("getAttendanceSessionData", "attendanceError"),
    ("bulkUpdateAttendance", "attendanceError"),
    ("endAttendanceSession", "attendanceError"),
    ("getCheckinCode", "attendanceError"),
    ("subscribeToCourse", "activeSessionsError"),
    ("unsubscribeFromCourse", "activeSessionsError"),
    ("checkActiveSessions", "activeSessionsError"),
    ("joinSession", "attendanceError"),
    ("leaveSession", "attendanceError"),
    ("sessionUpdate", "attendanceError"),
    ("getAttendanceStats", "attendanceError"),
    ("markAttendance", "attendanceError"),
];

impl App {
    /// Builds the Socket.IO server with the application's namespace, and
    /// starts the background tasks (check-in codes of active sessions, idle
    /// session expiry).
    pub fn start(config: AppConfig, store: Store, secret: Vec<u8>) -> (Arc<App>, SocketIo) {
        let io_config = SocketIoConfig::builder().cors(config.cors()).build();
        let io = SocketIo::new(io_config);
        let keys = TokenKeys::new(&secret, config.token_ttl_secs);
        let app_cell: Arc<std::sync::OnceLock<Arc<App>>> = Arc::new(std::sync::OnceLock::new());
        let (mw_store, mw_keys) = (store.clone(), keys.clone());
        let cell = app_cell.clone();
        let setup = NamespaceSetup::new(move |socket| {
            if let Some(app) = cell.get() {
                app.on_connection(socket);
            }
        })
        .middleware(move |socket| {
            let result = authenticate(&mw_store, &mw_keys, &socket);
            async move { result }
        });
        let ns = io.ns_with("/", setup);
        let app = Arc::new(App {
            store,
            keys,
            config,
            ns,
            joined: Mutex::new(HashMap::new()),
            rotating: Mutex::new(HashSet::new()),
        });
        let _ = app_cell.set(app.clone());
        match app.store.active_sessions() {
            Ok(sessions) => {
                tracing::info!(count = sessions.len(), "resuming active sessions");
                for s in sessions {
                    app.start_code_rotation(&s.id);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list active sessions"),
        }
        tokio::spawn(idle_expiry(Arc::downgrade(&app)));
        (app, io)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The token keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The settings the application runs with.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    fn on_connection(self: &Arc<Self>, socket: Arc<Socket>) {
        let Some(user) = socket.data().get::<Arc<User>>() else {
            socket.disconnect();
            return;
        };
        socket.join(&format!("user:{}", user.id));
        socket.join(&format!("role:{}", user.role.as_str()));
        let ctx = Arc::new(SocketCtx {
            user,
            bucket: Mutex::new((self.config.rate_burst, Instant::now())),
        });
        let (job_tx, job_rx) = mpsc::channel::<Job>(self.config.queue_per_socket);
        let (commit_tx, commit_rx) = mpsc::unbounded_channel::<Commit>();
        tokio::spawn(worker(
            self.clone(),
            socket.clone(),
            ctx.clone(),
            job_rx,
            commit_tx,
        ));
        tokio::spawn(committer(self.clone(), socket.clone(), commit_rx));
        for (event, error_event) in EVENTS {
            let tx = job_tx.clone();
            let ctx = ctx.clone();
            let rate = self.config.rate_per_sec;
            let burst = self.config.rate_burst;
            socket.on(event, move |s, payload, ack| {
                if !ctx.take_token(rate, burst) {
                    refuse(
                        s,
                        error_event,
                        ack,
                        &AppError::new(ErrorCode::RateLimited, "Too many requests"),
                    );
                    return;
                }
                let job = Job {
                    event,
                    payload,
                    ack,
                };
                if let Err(e) = tx.try_send(job) {
                    let job = match e {
                        mpsc::error::TrySendError::Full(j)
                        | mpsc::error::TrySendError::Closed(j) => j,
                    };
                    refuse(
                        s,
                        error_event,
                        job.ack,
                        &AppError::new(ErrorCode::RateLimited, "Too many requests in flight"),
                    );
                }
            });
        }
        let app = self.clone();
        socket.on_disconnect(move |s, _reason| {
            if let Some(user) = s.data().get::<Arc<User>>() {
                let mut joined = app.joined.lock();
                for students in joined.values_mut() {
                    if let Some(sockets) = students.get_mut(&user.id) {
                        sockets.remove(s.id());
                        if sockets.is_empty() {
                            students.remove(&user.id);
                        }
                    }
                }
            }
        });
    }

    /// Emits to a room.
    pub(crate) fn to_room(&self, room: &str, event: &str, data: Value) {
        self.ns.to(room).emit(event, &Payload::one(data));
    }

    /// Starts the task that sends each new check-in code to the session's staff.
    pub(crate) fn start_code_rotation(self: &Arc<Self>, session_id: &str) {
        if !self.rotating.lock().insert(session_id.to_string()) {
            return;
        }
        let app = Arc::downgrade(self);
        let sid = session_id.to_string();
        tokio::spawn(async move {
            loop {
                let Some(a) = app.upgrade() else { return };
                let session = match a.store.session(&sid) {
                    Ok(Some(s)) if s.status == crate::store::SessionStatus::Active => s,
                    _ => {
                        a.rotating.lock().remove(&sid);
                        return;
                    }
                };
                if !session.checkin.code_required {
                    a.rotating.lock().remove(&sid);
                    return;
                }
                let now = crate::store::now_ms() / 1000;
                let period = session.checkin.code_period_secs;
                a.to_room(
                    &staff_room(&sid),
                    "checkinCode",
                    events::code_json(&session, now),
                );
                let next = checkin::code_expires_at(period, now);
                drop(a);
                tokio::time::sleep(Duration::from_secs(next.saturating_sub(now).max(1))).await;
            }
        });
    }
}

/// The room of a session's participants (seed 002).
pub(crate) fn attendance_room(session_id: &str) -> String {
    format!("attendance_{session_id}")
}

/// The room of a session's teachers and admins.
pub(crate) fn staff_room(session_id: &str) -> String {
    format!("attendance_{session_id}:staff")
}

/// The room of a session in the seed 000 events.
pub(crate) fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// The room of a course's subscribers.
pub(crate) fn course_room(course_id: &str) -> String {
    format!("course_{course_id}")
}

impl SocketCtx {
    /// Token bucket: `rate` per second, up to `burst`.
    fn take_token(&self, rate: f64, burst: f64) -> bool {
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let refill = now.duration_since(b.1).as_secs_f64() * rate;
        b.0 = (b.0 + refill).min(burst);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

fn error_json(e: &AppError) -> Value {
    json!({"ok": false, "error": {"code": e.code.code(), "message": e.message}})
}

fn refuse(socket: &Arc<Socket>, error_event: &str, ack: Option<AckSender>, e: &AppError) {
    let _ = socket.emit(
        error_event,
        &Payload::one(json!({"message": e.message, "code": e.code.code()})),
    );
    if let Some(ack) = ack {
        let _ = ack.send(Payload::one(error_json(e)));
    }
}

/// The authentication middleware: the JWT from `auth.token` or an
/// `Authorization: Bearer` header.
fn authenticate(store: &Store, keys: &TokenKeys, socket: &Arc<Socket>) -> Result<(), ConnectError> {
    let from_auth = socket
        .auth()
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let from_header = socket
        .handshake()
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    match keys.authenticate(store, from_auth.or(from_header).as_deref()) {
        Ok(user) => {
            socket.data().insert(Arc::new(user));
            Ok(())
        }
        Err(e) => Err(ConnectError::with_data(
            "Authentication error",
            json!({"code": e.code(), "message": e.to_string()}),
        )),
    }
}

async fn worker(
    app: Arc<App>,
    socket: Arc<Socket>,
    ctx: Arc<SocketCtx>,
    mut jobs: mpsc::Receiver<Job>,
    commits: mpsc::UnboundedSender<Commit>,
) {
    while let Some(job) = jobs.recv().await {
        if !socket.connected() {
            break;
        }
        let mut result = events::handle(&app, &socket, &ctx, job.event, &job.payload);
        // A read (or a refusal) may reflect writes of other sockets that are
        // not yet durable: answer it only once they are.
        let barrier = app.store.barrier();
        if let Ok(o) = &mut result {
            o.ticket.get_or_insert(barrier);
        }
        if commits
            .send(Commit {
                event: job.event,
                result,
                barrier,
                ack: job.ack,
            })
            .is_err()
        {
            break;
        }
    }
}

async fn committer(
    app: Arc<App>,
    socket: Arc<Socket>,
    mut commits: mpsc::UnboundedReceiver<Commit>,
) {
    while let Some(c) = commits.recv().await {
        let error_event = EVENTS
            .iter()
            .find(|(e, _)| *e == c.event)
            .map_or("attendanceError", |(_, err)| *err);
        let outcome = match c.result {
            Ok(o) => o,
            Err(e) => {
                if app.store.durable(c.barrier).await.is_err() {
                    tracing::error!("flush failed");
                }
                refuse(&socket, error_event, c.ack, &e);
                continue;
            }
        };
        if let Some(t) = outcome.ticket {
            if let Err(e) = app.store.durable(t).await {
                tracing::error!(error = %e, "flush failed");
                refuse(
                    &socket,
                    error_event,
                    c.ack,
                    &AppError::new(ErrorCode::Internal, "storage failure"),
                );
                continue;
            }
        }
        for effect in outcome.effects {
            match effect {
                Effect::Emit(ev, v) => {
                    let _ = socket.emit(ev, &Payload::one(v));
                }
                Effect::Room(room, ev, v) => app.to_room(&room, ev, v),
                Effect::RoomExceptSelf(room, ev, v) => {
                    socket.to(&room).emit(ev, &Payload::one(v));
                }
                Effect::Join(room) => socket.join(&room),
                Effect::Leave(room) => socket.leave(&room),
            }
        }
        if let Some(ack) = c.ack {
            let mut reply = serde_json::Map::new();
            reply.insert("ok".into(), Value::Bool(true));
            reply.extend(outcome.reply);
            let _ = ack.send(Payload::one(Value::Object(reply)));
        }
    }
}

/// Ends sessions idle longer than the configured time, with the usual end events.
async fn idle_expiry(app: std::sync::Weak<App>) {
    loop {
        let interval = match app.upgrade() {
            Some(a) => a.config.idle_check_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(a) = app.upgrade() else { return };
        let now = crate::store::now_ms();
        let idle_ms = a.config.session_idle.as_millis() as u64;
        // Store the in-memory activity times (marks do not rewrite the
        // session); made durable by the next group flush.
        if let Err(e) = a.store.persist_activity() {
            tracing::warn!(error = %e, "cannot store session activity");
        }
        let Ok(sessions) = a.store.active_sessions() else {
            continue;
        };
        for s in sessions {
            if now.saturating_sub(a.store.last_activity(&s)) >= idle_ms {
                match events::end_session(&a, &s.id, None) {
                    Ok(outcome) => {
                        if let Some(t) = outcome.ticket {
                            if a.store.durable(t).await.is_err() {
                                continue;
                            }
                        }
                        for effect in outcome.effects {
                            if let Effect::Room(room, ev, v) = effect {
                                a.to_room(&room, ev, v);
                            }
                        }
                        tracing::info!(session = %s.id, "ended idle session");
                    }
                    Err(e) => tracing::warn!(session = %s.id, error = %e, "idle end failed"),
                }
            }
        }
    }
}
