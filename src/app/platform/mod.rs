//! The platform features of seeds 003 and 004 that the attendance product
//! builds on (SPEC.md §4.16–§4.21): stored notifications to a user or a
//! role, topic subscriptions, online presence across devices, the
//! `/notifications` namespace, the monitor API's status, graceful shutdown,
//! and the Socket.IO path and recovery settings of `rollcall serve`.
//!
//! Why here and not in the pipeline: these features hang off the
//! connection's life (connect, disconnect, shutdown) and off the server
//! (HTTP, other code), not off one request; the requests they add
//! (`subscribe`, `getNotifications`, ...) are ordinary table events in
//! `events::{topics, notifications, presence}`.
//!
//! - `config`: [`PlatformConfig`], topics and their role rules;
//! - `notify`: creating, storing and delivering notifications (also the
//!   attendance product's own: session started, marked absent, low
//!   attendance), the replay of missed ones on connect;
//! - `topics`: publishing to a topic;
//! - `online`: presence flips and `userStatusChanged`, online lists;
//! - `monitor`: the status the monitor API shows;
//! - `shutdown`: the graceful shutdown sequence.
//!
//! Lock rules: nothing here holds a lock across a call; the presence
//! counts live in the app's `presence` (leaf locks).

mod config;
pub(crate) mod monitor;
pub(crate) mod notify;
pub(crate) mod online;
mod shutdown;
pub(crate) mod topics;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(crate) use config::valid_topic;
pub use config::{parse_topics, PlatformConfig, TopicRule, DEFAULT_TOPICS};
pub use notify::NotificationInput;
pub use shutdown::{Gate, ShutdownReport};

use super::App;
use crate::socketio::{
    ConnectError, Namespace, NamespaceSetup, RecoveryConfig, RecoveryLog, Socket, SocketIo,
    SocketIoConfigBuilder,
};
use crate::store::User;

/// The namespace seed 004's notification clients connect to.
pub const NOTIFICATIONS_NS: &str = "/notifications";

/// How the Socket.IO server of `rollcall serve` is mounted and recovers.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The Socket.IO path (`SOCKET_PATH`, default `/socket.io/`).
    pub socket_path: String,
    /// Connection state recovery window (`RECOVERY_MS`; `None`: off).
    pub recovery: Option<Duration>,
    /// The durable recovery log (kept in `DATA_DIR/recovery` by the binary).
    pub recovery_log: Option<RecoveryLog>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            socket_path: "/socket.io/".into(),
            recovery: None,
            recovery_log: None,
        }
    }
}

impl ServerSettings {
    /// Applies the path and recovery to a Socket.IO configuration. A
    /// recovered socket runs the authentication middleware again (the user
    /// is not part of the recovered data).
    /// New handshakes are admitted while `gate` is open.
    pub(crate) fn apply(&self, mut b: SocketIoConfigBuilder, gate: &Gate) -> SocketIoConfigBuilder {
        let path = self.socket_path.clone();
        let gate = gate.clone();
        b = b.engine(|e| e.path(&path).allow_request(move |_| gate.open()));
        if let Some(window) = self.recovery {
            b = b.recovery(RecoveryConfig {
                max_disconnection: window,
                skip_middlewares: false,
                ..RecoveryConfig::default()
            });
            if let Some(log) = &self.recovery_log {
                b = b.recovery_log(log.clone());
            }
        }
        b
    }
}

/// The platform state the [`App`] keeps.
pub(crate) struct Platform {
    /// The `/notifications` namespace.
    notifications: Arc<Namespace>,
    /// When the application started (monitor uptime).
    started: Instant,
    /// Closed when shutdown begins.
    gate: Gate,
    /// Who was told of being marked absent, per active session.
    absent_told: notify::AbsentTold,
}

impl Platform {
    /// Registers `/notifications` with the same authentication as `/`.
    pub(crate) fn register<F, Fut>(
        io: &SocketIo,
        app: Arc<OnceLock<Arc<App>>>,
        auth: F,
        gate: Gate,
    ) -> Platform
    where
        F: Fn(Arc<Socket>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let setup = NamespaceSetup::new(move |socket| {
            if let Some(app) = app.get() {
                app.on_notifications_connection(socket);
            }
        })
        .middleware(auth);
        Platform {
            notifications: io.ns_with(NOTIFICATIONS_NS, setup),
            started: Instant::now(),
            gate,
            absent_told: notify::AbsentTold::default(),
        }
    }

    /// Who was told of being marked absent.
    pub(crate) fn absent_told(&self) -> &notify::AbsentTold {
        &self.absent_told
    }

    /// The admission gate.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The `/notifications` namespace.
    pub(crate) fn notifications_ns(&self) -> &Arc<Namespace> {
        &self.notifications
    }

    /// Time since start.
    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A socket joins its user's rooms: `user:<id>` and `role:<role>` (§4.4).
pub(crate) fn join_user_rooms(socket: &Arc<Socket>, user: &User) {
    socket.join(&format!("user:{}", user.id));
    socket.join(&format!("role:{}", user.role.as_str()));
}

impl App {
    /// A socket of `user` connected to `/` or `/notifications`: presence,
    /// then the unread notifications it missed. `/` also gets the
    /// `subscribe:<topic>` aliases (seed 003).
    pub(crate) fn platform_connected(self: &Arc<Self>, socket: &Arc<Socket>, user: &Arc<User>) {
        self.user_online(user);
        let app = self.clone();
        socket.on_disconnect(move |s, _| {
            if let Some(user) = s.data().get::<Arc<User>>() {
                app.user_offline(&user);
            }
        });
        if !socket.recovered() {
            self.replay_missed(socket, user);
        }
    }

    fn on_notifications_connection(self: &Arc<Self>, socket: Arc<Socket>) {
        let Some(user) = socket.data().get::<Arc<User>>() else {
            socket.disconnect();
            return;
        };
        join_user_rooms(&socket, &user);
        self.platform_connected(&socket, &user);
    }
}
