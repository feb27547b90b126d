//! The server side of the `@socket.io/admin-ui` protocol: a namespace
//! (default `/admin`) that the admin UI's browser client connects to, with
//! optional basic auth, `config`, `server_stats` every 2 s, in development
//! mode every socket and each socket, room and event change, and the
//! actions `emit`, `join`, `leave` and `_disconnect` (SPEC.md §3.12).
//!
//! Why a module of its own above [`crate::socketio`] rather than inside it:
//! it is a user of the Socket.IO server's public API (a namespace with a
//! middleware and handlers, broadcasts, `fetch_sockets`, joins and
//! disconnects of selections) plus the layer's optional [`Observer`]
//! hooks, and knows nothing of the attendance application. Keeping it out
//! of `socketio` leaves the protocol layer free of an operator feature; any
//! server built on `socketio` (the `rollcall` binary, the `conformance`
//! example) adds it with [`socket_io`].
//!
//! Cluster-wide by construction: every action and every broadcast to the
//! admin namespace goes through the namespaces' [`Adapter`](crate::socketio::Adapter)
//! (`broadcast`, `add_sockets`, `del_sockets`, `disconnect_sockets`,
//! `fetch_sockets`), so with a cluster adapter an admin client on any node
//! sees every node's `server_stats` and sockets and acts on every node's
//! sockets. Session ids are stateless (see `auth`), so they work on any
//! node configured alike.
//!
//! Cost when off: nothing is installed (no observer: each hook of the
//! Socket.IO layer is one branch on `None`).

mod actions;
mod auth;
mod config;
mod serialize;
mod tracker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use config::{Access, AdminUiArgs, AdminUiConfig, AdminUiConfigError, Mode};

use crate::socketio::{
    Cors, Namespace, NamespaceSetup, Observer, Payload, Socket, SocketIo, SocketIoConfigBuilder,
};
use auth::Gate;
use tracker::{Notice, Tracker};

/// How often `server_stats` is sent.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// The admin UI of one server: build it, give its observer to the
/// Socket.IO configuration, then [`AdminUi::attach`] it to the server.
#[derive(Clone)]
pub struct AdminUi {
    inner: Arc<Inner>,
}

struct Inner {
    config: AdminUiConfig,
    gate: Gate,
    tracker: Arc<Tracker>,
    notices: Mutex<Option<mpsc::Receiver<Notice>>>,
    started: Instant,
    hostname: String,
}

impl std::fmt::Debug for AdminUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminUi")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`,
/// else `localhost`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl AdminUi {
    /// The admin UI for `config`, or `None` when it is off. `session_key`
    /// signs the session ids handed out after a password login: give every
    /// node of a cluster the same one (the `rollcall` binary uses its token
    /// secret).
    pub fn new(config: AdminUiConfig, session_key: &[u8]) -> Option<AdminUi> {
        if !config.enabled() {
            return None;
        }
        let (tx, rx) = mpsc::channel(config.event_queue.max(1));
        let development = config.mode == Mode::Development;
        let tracker = Arc::new(Tracker::new(&config.namespace, development, tx));
        Some(AdminUi {
            inner: Arc::new(Inner {
                gate: Gate::new(&config, session_key),
                tracker,
                notices: Mutex::new(Some(rx)),
                started: Instant::now(),
                hostname: hostname(),
                config,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &AdminUiConfig {
        &self.inner.config
    }

    /// The observer to install with [`SocketIoConfigBuilder::observer`].
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.inner.tracker.clone()
    }

    /// `builder` with this admin UI's observer and `cors` extended with the
    /// UI's origins (see [`AdminUiConfig::cors`]).
    pub fn configure(&self, builder: SocketIoConfigBuilder, cors: Cors) -> SocketIoConfigBuilder {
        builder
            .cors(self.inner.config.cors(cors))
            .observer(self.observer())
    }

    /// Registers the admin namespace on `io` and starts its tasks (the
    /// notice sender and the 2 s stats). Call once, inside a Tokio runtime.
    pub fn attach(&self, io: &SocketIo) -> Arc<Namespace> {
        let ui = self.clone();
        let server = io.clone();
        let gate_ui = self.clone();
        let setup = NamespaceSetup::new(move |socket| ui.on_connection(&server, socket))
            .middleware(move |socket: Arc<Socket>| {
                let ui = gate_ui.clone();
                async move { ui.admit(&socket).await }
            });
        let setup = actions::register(setup, io.clone());
        let ns = io.ns_with(&self.inner.config.namespace, setup);
        if let Some(rx) = self.inner.notices.lock().take() {
            tokio::spawn(send_notices(Arc::downgrade(&ns), rx));
        }
        tokio::spawn(send_stats(self.clone(), io.clone(), Arc::downgrade(&ns)));
        tracing::info!(
            namespace = %self.inner.config.namespace,
            mode = ?self.inner.config.mode,
            access = ?self.inner.config.access,
            "admin UI enabled"
        );
        ns
    }

    /// The namespace's middleware: checks the CONNECT payload.
    async fn admit(&self, socket: &Arc<Socket>) -> Result<(), crate::socketio::ConnectError> {
        let addr = socket.handshake().remote_addr;
        match self.inner.gate.check(socket.auth()).await {
            Ok(session) => {
                if let Some(id) = session {
                    socket.data().insert(NewSession(id));
                    tracing::info!(admin = socket.id(), %addr, "admin UI login");
                }
                Ok(())
            }
            Err(refusal) => {
                tracing::warn!(%addr, code = refusal.code(), "admin UI connection refused");
                Err(refusal.to_error())
            }
        }
    }

    /// The `supportedFeatures` of `config`.
    fn features(&self) -> Vec<&'static str> {
        let mut f = vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
            "AGGREGATED_EVENTS",
        ];
        if self.inner.config.mode == Mode::Development {
            f.push("ALL_EVENTS");
        }
        f
    }

    fn on_connection(&self, io: &SocketIo, socket: Arc<Socket>) {
        tracing::info!(admin = socket.id(), addr = %socket.handshake().remote_addr, "admin UI connected");
        if let Some(NewSession(id)) = socket.data().remove::<NewSession>() {
            let _ = socket.emit("session", &Payload::one(Value::String(id)));
        }
        let config = json!({ "supportedFeatures": self.features() });
        let _ = socket.emit("config", &Payload::one(config));
        // The newcomer gets the current stats at once, not in up to 2 s.
        let _ = socket.emit("server_stats", &Payload::one(self.stats(io, false)));
        if self.inner.config.mode == Mode::Development {
            let io = io.clone();
            tokio::spawn(async move {
                let sockets = all_sockets(&io).await;
                let _ = socket.emit("all_sockets", &Payload::one(Value::Array(sockets)));
            });
        }
    }

    /// This node's `server_stats`; `take` empties the aggregated counters
    /// (only the periodic broadcast does, so every admin sees each count once).
    fn stats(&self, io: &SocketIo, take: bool) -> Value {
        let i = &self.inner;
        let mut namespaces: Vec<Value> = io
            .namespaces()
            .iter()
            .map(|ns| json!({"name": ns.name(), "socketsCount": ns.socket_count()}))
            .collect();
        namespaces.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        let aggregated = if take {
            i.tracker.take_aggregated()
        } else {
            Vec::new()
        };
        json!({
            "serverId": i.config.server_id.clone().unwrap_or_else(|| i.hostname.clone()),
            "hostname": i.hostname,
            "pid": std::process::id(),
            "uptime": i.started.elapsed().as_secs_f64(),
            "clientsCount": io.client_count(),
            "pollingClientsCount": i.tracker.polling_clients(),
            "aggregatedEvents": aggregated,
            "namespaces": namespaces,
        })
    }
}

/// A session id to hand to a socket that just logged in with a password.
#[derive(Clone)]
struct NewSession(String);

/// Every socket of every namespace, on every node (through each
/// namespace's adapter; a namespace whose adapter fails is listed with this
/// node's sockets only, and the failure logged).
async fn all_sockets(io: &SocketIo) -> Vec<Value> {
    let mut out = Vec::new();
    for ns in io.namespaces() {
        let op = ns.broadcast();
        match op.fetch_sockets().await {
            Ok(found) => out.extend(
                found
                    .iter()
                    .map(|f| serialize::fetched_socket(f, ns.name())),
            ),
            Err(e) => {
                tracing::warn!(namespace = ns.name(), error = %e, "admin UI: fetching sockets failed");
                out.extend(op.sockets().iter().map(|s| serialize::local_socket(s)));
            }
        }
    }
    out
}

/// Broadcasts the development-mode notices to the admin namespace, in order.
async fn send_notices(ns: std::sync::Weak<Namespace>, mut rx: mpsc::Receiver<Notice>) {
    while let Some((event, payload)) = rx.recv().await {
        let Some(ns) = ns.upgrade() else { return };
        ns.broadcast().emit(event, &payload);
    }
}

/// Broadcasts this node's `server_stats` every [`STATS_INTERVAL`].
async fn send_stats(ui: AdminUi, io: SocketIo, ns: std::sync::Weak<Namespace>) {
    let mut tick = tokio::time::interval(STATS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(ns) = ns.upgrade() else { return };
        let dropped = ui.inner.tracker.take_dropped();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "admin UI: development-mode events dropped (queue full)"
            );
        }
        ns.broadcast()
            .emit("server_stats", &Payload::one(ui.stats(&io, true)));
    }
}

/// The Socket.IO server of `builder` with CORS `cors`, and the admin UI of
/// `config` attached when it is on (`session_key`: see [`AdminUi::new`]).
pub fn socket_io(
    config: &AdminUiConfig,
    session_key: &[u8],
    builder: SocketIoConfigBuilder,
    cors: Cors,
) -> SocketIo {
    match AdminUi::new(config.clone(), session_key) {
        None => SocketIo::new(builder.cors(cors).build()),
        Some(ui) => {
            let io = SocketIo::new(ui.configure(builder, cors).build());
            ui.attach(&io);
            io
        }
    }
}
