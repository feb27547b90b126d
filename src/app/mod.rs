//! The attendance application: authentication, the events of SPEC.md §4.7,
//! course tracking and self check-in, on top of [`crate::socketio`] and
//! [`crate::store`].
//!
//! Structure (each piece has one owner):
//! - this file: the [`App`] and the per-socket request pipeline;
//! - `events`: the one table of request events (name, error event, who may
//!   send it, handler) and the handlers, split by area;
//! - `outcome`: what a handled request makes visible, and the one function
//!   that makes it visible;
//! - `error`: [`ErrorCode`] and [`AppError`];
//! - `presence`: who joined which session, and who is online (in memory);
//! - [`platform`]: notifications, topics, online presence, the monitor
//!   status, graceful shutdown, the Socket.IO path and recovery (SPEC.md
//!   §4.15–§4.21);
//! - `tasks`: check-in code rotation and idle expiry;
//! - `checkin`: check-in code and geofence maths; [`auth`]: passwords and
//!   tokens; [`api`]: the HTTP routes; `config`: settings ([`AppConfig`]);
//! - [`abuse`]: login and registration limits, the password hashing pool,
//!   the per-user socket cap (SPEC.md §4.24);
//! - `stats`: the application's counters ([`AppStats`]); [`metrics`]: the
//!   `/metrics` collector over every layer's counters; `ready`: `/api/ready`;
//!   [`logging`]: the log format and the rate-limited refusal lines;
//! - `platform_b`, `devices`, `after_connect`, `messenger`: device sessions,
//!   forced logout and token push, authenticate-after-connect, and the
//!   `/messenger` namespace (SPEC.md §4.22).
//!
//! Each socket's requests are handled in arrival order by a small per-socket
//! pipeline: a worker applies each request to the store (in memory, fast) and
//! hands its outcome to a committer that waits until the write is durable and
//! only then applies the effects. Writes from many sockets share flushes, so
//! a socket can have many requests in flight while nothing unconfirmed is
//! ever shown.
//!
//! Lock rules: the application's own mutexes (the socket's token bucket,
//! `presence`, the rotation set in `tasks`) are leaves: each is taken inside
//! one small method, never held across a store call, a socket operation or
//! another lock.

pub mod abuse;
mod after_connect;
pub mod api;
pub mod auth;
mod checkin;
pub mod cli_token;
mod config;
mod devices;
mod error;
mod events;
pub mod first_run;
pub mod logging;
mod messenger;
pub mod metrics;
mod outcome;
pub mod platform;
mod platform_b;
mod presence;
mod ready;
mod stats;
mod tasks;

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::socketio::{
    AckSender, AdapterFactory, ConnectError, Namespace, NamespaceSetup, Payload, Socket, SocketIo,
    SocketIoConfig,
};
use crate::store::{Store, Ticket, User};
use auth::TokenKeys;
pub use config::AppConfig;
pub use error::{AppError, ErrorCode};
use events::{Ctx, EventSpec};
use outcome::{error_event_json, error_json, ok_json, Outcome};
pub use platform_b::PlatformBConfig;
use presence::Presence;
pub use stats::AppStats;
use tasks::Rotations;

/// Per-socket state of the application: the rate limiter's token bucket
/// (tokens, last refill), a leaf lock. The user is the socket's
/// `Arc<User>` in [`Socket::data`], read per request, so that an admin's
/// change of the user applies to the sockets already connected.
struct SocketCtx {
    bucket: Mutex<(f64, Instant)>,
    /// The application's counters (refusals are counted).
    stats: Arc<AppStats>,
}

/// A request waiting for the worker.
struct Job {
    spec: &'static EventSpec,
    payload: Payload,
    ack: Option<AckSender>,
}

/// A handled request waiting for the committer.
struct Commit {
    spec: &'static EventSpec,
    result: Result<Outcome, AppError>,
    /// Covers every write visible when the request was handled.
    barrier: Ticket,
    ack: Option<AckSender>,
}

/// The application state shared by all sockets.
pub struct App {
    store: Store,
    keys: TokenKeys,
    config: AppConfig,
    ns: Arc<Namespace>,
    presence: Presence,
    rotations: Rotations,
    platform_b: platform_b::PlatformB,
    platform: platform::Platform,
    abuse: abuse::Abuse,
    stats: Arc<AppStats>,
}

impl App {
    /// Builds the Socket.IO server with the application's namespace, and
    /// starts the background tasks (check-in codes of active sessions, idle
    /// session expiry).
    pub fn start(config: AppConfig, store: Store, secret: Vec<u8>) -> (Arc<App>, SocketIo) {
        App::start_with_adapter(config, store, secret, AdapterFactory::local())
    }

    /// [`App::start`] with the namespaces' adapter built by `adapter` (a
    /// cluster adapter, e.g. Redis: SPEC.md §3.13 "Cluster mode").
    pub fn start_with_adapter(
        config: AppConfig,
        store: Store,
        secret: Vec<u8>,
        adapter: AdapterFactory,
    ) -> (Arc<App>, SocketIo) {
        let gate = platform::Gate::default();
        let builder = config
            .server
            .apply(SocketIoConfig::builder().adapter(adapter), &gate);
        let builder = builder
            .engine(|e| e.abuse(config.engine_abuse.clone()))
            .event_limits(config.event_limits);
        let io = crate::admin_ui::socket_io(&config.admin_ui, &secret, builder, config.cors());
        let keys = TokenKeys::new(&secret, config.token_ttl_secs);
        let app_cell: Arc<std::sync::OnceLock<Arc<App>>> = Arc::new(std::sync::OnceLock::new());
        let abuse = abuse::Abuse::new(&config.abuse);
        let (mw_store, mw_keys) = (store.clone(), keys.clone());
        let cap = abuse.sockets.clone();
        // `/` lets a tokenless CONNECT in when authenticate-after-connect is
        // on; `/notifications` always needs the token.
        let anonymous = config.platform_b.auth_after_connect;
        let stats = Arc::new(AppStats::default());
        let (nf_store, nf_keys, nf_stats) = (store.clone(), keys.clone(), stats.clone());
        let mw_stats = stats.clone();
        let auth = move |socket: Arc<Socket>| {
            let result = authenticate(&nf_store, &nf_keys, &nf_stats, &socket, false);
            async move { result }
        };
        let cell = app_cell.clone();
        let setup = NamespaceSetup::new(move |socket| {
            if let Some(app) = cell.get() {
                app.on_connection(socket);
            }
        })
        .middleware(move |socket| {
            let result = authenticate(&mw_store, &mw_keys, &mw_stats, &socket, anonymous)
                .and_then(|()| abuse::admit_socket(&cap, &socket));
            async move { result }
        });
        let ns = io.ns_with("/", setup);
        let platform_b = platform_b::PlatformB::new(&io, app_cell.clone(), &store, &keys, &stats);
        let platform = platform::Platform::register(&io, app_cell.clone(), auth, gate);
        let app = Arc::new(App {
            store,
            keys,
            config,
            ns,
            presence: Presence::default(),
            rotations: Rotations::default(),
            platform_b,
            platform,
            abuse,
            stats,
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
        tokio::spawn(tasks::idle_expiry(Arc::downgrade(&app)));
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

    /// The application's counters.
    pub fn stats(&self) -> &AppStats {
        &self.stats
    }

    /// The settings the application runs with.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The application's namespace (`/`).
    pub(crate) fn ns(&self) -> &Arc<Namespace> {
        &self.ns
    }

    /// Login, registration and hashing limits (SPEC.md §4.24).
    pub fn abuse(&self) -> &abuse::Abuse {
        &self.abuse
    }

    /// Who joined which active session.
    pub(crate) fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The platform features' state.
    pub(crate) fn platform(&self) -> &platform::Platform {
        &self.platform
    }

    /// The sessions whose code rotation runs.
    fn rotations(&self) -> &Rotations {
        &self.rotations
    }

    fn on_connection(self: &Arc<Self>, socket: Arc<Socket>) {
        let Some(user) = socket.data().get::<Arc<User>>() else {
            if self.config.platform_b.auth_after_connect {
                after_connect::await_authentication(self, socket);
            } else {
                socket.disconnect();
            }
            return;
        };
        self.setup_socket(socket, &user);
    }

    /// Sets up an authenticated socket of `/`: its rooms, its request
    /// pipeline, its disconnect handler.
    fn setup_socket(self: &Arc<Self>, socket: Arc<Socket>, user: &User) {
        socket.data().insert(socket_json(user));
        platform::join_user_rooms(&socket, user);
        after_connect::register_authenticate(self, &socket);
        let (ctx, job_tx) = self.attach_pipeline(&socket, events::EVENTS);
        let limits = (self.config.rate_per_sec, self.config.rate_burst);
        events::topics::register_aliases(&socket, &ctx, &job_tx, limits);
        let app = self.clone();
        socket.on_disconnect(move |s, _reason| {
            drop(s.data().remove::<abuse::SocketSlot>());
            if let Some(user) = s.data().get::<Arc<User>>() {
                app.presence.disconnect(&user.id, s.id());
            }
        });
        if let Some(shared) = socket.data().get::<Arc<User>>() {
            self.platform_connected(&socket, &shared);
        }
    }

    /// Registers the events of `table` with `socket`, handled by one
    /// per-socket pipeline (rate limit, in-order handling, commit); the
    /// pipeline's context and queue, for events routed to it otherwise.
    fn attach_pipeline(
        self: &Arc<Self>,
        socket: &Arc<Socket>,
        table: &'static [EventSpec],
    ) -> (Arc<SocketCtx>, mpsc::Sender<Job>) {
        let ctx = Arc::new(SocketCtx {
            bucket: Mutex::new((self.config.rate_burst, Instant::now())),
            stats: self.stats.clone(),
        });
        let (job_tx, job_rx) = mpsc::channel::<Job>(self.config.queue_per_socket);
        let (commit_tx, commit_rx) = mpsc::unbounded_channel::<Commit>();
        // Every line logged for this socket carries its id and its user's.
        let user = socket.data().get::<Arc<User>>();
        let user_id = user.as_ref().map_or("", |u| u.id.as_str());
        let span = tracing::info_span!("socket", sid = %socket.id(), user = %user_id);
        let work = worker(self.clone(), socket.clone(), job_rx, commit_tx);
        tokio::spawn(work.instrument(span.clone()));
        let commit = committer(self.clone(), socket.clone(), commit_rx);
        tokio::spawn(commit.instrument(span));
        let (rate, burst) = (self.config.rate_per_sec, self.config.rate_burst);
        for spec in table {
            let tx = job_tx.clone();
            let ctx = ctx.clone();
            socket.on(spec.name, move |s, payload, ack| {
                ctx.enqueue(&tx, (rate, burst), s, Job { spec, payload, ack });
            });
        }
        (ctx, job_tx)
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
    /// Queues a request for the worker, or refuses it at once (rate limit,
    /// in-flight limit).
    fn enqueue(
        &self,
        tx: &mpsc::Sender<Job>,
        (rate, burst): (f64, f64),
        s: &Arc<Socket>,
        job: Job,
    ) {
        if !self.take_token(rate, burst) {
            let e = AppError::new(ErrorCode::RateLimited, "Too many requests");
            refuse(s, job.spec, job.ack, &e, &self.stats);
            return;
        }
        if let Err(e) = tx.try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            let e = AppError::new(ErrorCode::RateLimited, "Too many requests in flight");
            refuse(s, job.spec, job.ack, &e, &self.stats);
        }
    }

    /// Token bucket: `rate` per second, up to `burst`.
    fn take_token(&self, rate: f64, burst: f64) -> bool {
        take_token(&mut self.bucket.lock(), rate, burst)
    }
}

/// Takes one token from bucket `b` (tokens, last refill) refilled at `rate`
/// per second up to `burst`; false when it is empty.
pub(crate) fn take_token(b: &mut (f64, Instant), rate: f64, burst: f64) -> bool {
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

/// Answers a refused request: the error event, then the failed ack (logged
/// and counted).
fn refuse(
    socket: &Arc<Socket>,
    spec: &EventSpec,
    ack: Option<AckSender>,
    e: &AppError,
    stats: &AppStats,
) {
    logging::refused_request(spec.name, e.code.code());
    stats.request(spec.name, Err(e.code));
    refuse_event(socket, spec.error_event, ack, e);
}

/// Sends a refusal: `error_event`, then the failed ack.
fn refuse_event(socket: &Arc<Socket>, error_event: &str, ack: Option<AckSender>, e: &AppError) {
    let _ = socket.emit(error_event, &Payload::one(error_event_json(e)));
    if let Some(ack) = ack {
        let _ = ack.send(Payload::one(error_json(e)));
    }
}

/// A socket's JSON data: what the admin UI and `fetch_sockets` show of it.
pub(crate) fn socket_json(user: &User) -> Value {
    json!({"userId": user.id, "name": user.name, "role": user.role.as_str()})
}

/// The authentication middleware: the JWT from `auth.token` or an
/// `Authorization: Bearer` header. With `anonymous` (authenticate after
/// connect), a CONNECT without a token is let in unauthenticated.
fn authenticate(
    store: &Store,
    keys: &TokenKeys,
    stats: &AppStats,
    socket: &Arc<Socket>,
    anonymous: bool,
) -> Result<(), ConnectError> {
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
    match keys.authenticate_claims(store, from_auth.or(from_header).as_deref()) {
        Ok((user, claims)) => {
            devices::attach(socket, user, &claims);
            Ok(())
        }
        Err(auth::AuthError::MissingToken) if anonymous => Ok(()),
        Err(e) => {
            logging::refused_connect(e.code());
            stats.auth_refused(e);
            Err(ConnectError::with_data(
                "Authentication error",
                json!({"code": e.code(), "message": e.to_string()}),
            ))
        }
    }
}

/// Handles the socket's requests one at a time, in arrival order.
async fn worker(
    app: Arc<App>,
    socket: Arc<Socket>,
    mut jobs: mpsc::Receiver<Job>,
    commits: mpsc::UnboundedSender<Commit>,
) {
    static NULL: Value = Value::Null;
    while let Some(job) = jobs.recv().await {
        if !socket.connected() {
            break;
        }
        // Only the first argument is read; a missing one counts as null.
        let arg = job.payload.args.first().unwrap_or(&NULL);
        let Some(user) = socket.data().get::<Arc<User>>() else {
            break;
        };
        let request = Ctx {
            app: &app,
            socket: &socket,
            user: &user,
        };
        let mut result = (job.spec.handler)(&request, arg);
        // A read (or a refusal) may reflect writes of other sockets that are
        // not yet durable: answer it only once they are.
        let barrier = app.store.barrier();
        if let Ok(o) = &mut result {
            o.or_barrier(barrier);
        }
        let commit = Commit {
            spec: job.spec,
            result,
            barrier,
            ack: job.ack,
        };
        if commits.send(commit).is_err() {
            break;
        }
    }
}

/// Makes each handled request visible, in order, once its write is durable.
async fn committer(
    app: Arc<App>,
    socket: Arc<Socket>,
    mut commits: mpsc::UnboundedReceiver<Commit>,
) {
    while let Some(c) = commits.recv().await {
        let span = tracing::debug_span!("request", event = c.spec.name);
        commit_one(&app, &socket, c).instrument(span).await;
    }
}

/// Makes one handled request visible (see [`committer`]).
async fn commit_one(app: &Arc<App>, socket: &Arc<Socket>, c: Commit) {
    let outcome = match c.result {
        Ok(o) => o,
        Err(e) => {
            if app.store.durable(c.barrier).await.is_err() {
                tracing::error!("flush failed");
            }
            refuse(socket, c.spec, c.ack, &e, &app.stats);
            return;
        }
    };
    if let Some(t) = outcome.waits_for() {
        if let Err(e) = app.store.durable(t).await {
            tracing::error!(error = %e, "flush failed");
            let e = AppError::new(ErrorCode::Internal, "storage failure");
            refuse(socket, c.spec, c.ack, &e, &app.stats);
            return;
        }
    }
    app.stats.request(c.spec.name, Ok(()));
    let reply = outcome.apply(socket.ns(), Some(socket));
    if let Some(ack) = c.ack {
        let _ = ack.send(Payload::one(ok_json(reply)));
    }
}

/// In-process test setup shared by the application's tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::{App, AppConfig};
    use crate::socketio::SocketIo;
    use crate::store::{Role, Store, User};

    /// An application on a fresh store (in a temporary directory named with
    /// `label`, returned for clean-up) holding one active student `u1`,
    /// started with `secret`.
    pub(crate) fn app_with_student(
        label: &str,
        secret: &[u8],
    ) -> (Arc<App>, SocketIo, User, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "rollcall-{label}-{}-{}",
            std::process::id(),
            crate::util::random_id(8)
        ));
        let store = Store::open(&dir, 8 << 20).expect("store");
        let user = User {
            id: "u1".into(),
            email: "u1@example.org".into(),
            name: "U1".into(),
            role: Role::Student,
            password_hash: None,
            active: true,
            token_version: 0,
            created_at: crate::store::now_rfc3339(),
        };
        let _written = store.create_user(&user).expect("user");
        let (app, io) = App::start(AppConfig::default(), store, secret.to_vec());
        (app, io, user, dir)
    }
}
