//! Settings and shared state of the platform features of SPEC.md §4.22:
//! authenticate-after-connect, the `/messenger` namespace and its per-user
//! message rate limit. Kept apart from [`super::AppConfig`]'s own fields so
//! that the switches of one feature live in one place (the binary flattens
//! [`PlatformBConfig`] into its `serve` flags).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::auth::TokenKeys;
use super::messenger::Delivery;
use super::App;
use crate::socketio::{Namespace, SocketIo};
use crate::store::Store;

/// Parses an on/off switch (`on`, `off`, `true`, `false`, `1`, `0`).
fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not on or off")),
    }
}

/// The settings of SPEC.md §4.22.
#[derive(Debug, Clone, clap::Args)]
pub struct PlatformBConfig {
    /// Let a CONNECT without a token in, to send `authenticate {token}`
    /// within the grace time (on/off).
    #[arg(long, env = "AUTH_AFTER_CONNECT", default_value = "off", value_parser = on_off, action = clap::ArgAction::Set)]
    pub auth_after_connect: bool,
    /// Seconds an unauthenticated socket has to authenticate.
    #[arg(long, env = "AUTH_GRACE_SECS", default_value_t = 10)]
    pub auth_grace_secs: u64,
    /// Largest direct message text, in bytes.
    #[arg(long, env = "MESSAGE_MAX_BYTES", default_value_t = 4096)]
    pub message_max_bytes: usize,
    /// Direct messages per second per user, across all their devices.
    #[arg(long, env = "MESSAGE_RATE", default_value_t = 5.0)]
    pub message_rate: f64,
    /// Direct messages per user in a burst.
    #[arg(long, env = "MESSAGE_BURST", default_value_t = 20.0)]
    pub message_burst: f64,
}

impl Default for PlatformBConfig {
    fn default() -> Self {
        PlatformBConfig {
            auth_after_connect: false,
            auth_grace_secs: 10,
            message_max_bytes: 4096,
            message_rate: 5.0,
            message_burst: 20.0,
        }
    }
}

impl PlatformBConfig {
    /// The grace time of an unauthenticated socket.
    pub fn auth_grace(&self) -> Duration {
        Duration::from_secs(self.auth_grace_secs.max(1))
    }
}

/// Users whose message bucket is tracked before full buckets are dropped.
const MAX_TRACKED_SENDERS: usize = 10_000;

/// State shared by the features of §4.22.
pub(crate) struct PlatformB {
    /// The `/messenger` namespace.
    pub messenger: Arc<Namespace>,
    /// Who is being delivered what (see [`Delivery`]).
    pub delivery: Arc<Delivery>,
    /// Per-user message token buckets (tokens, last refill), a leaf lock.
    senders: Mutex<HashMap<String, (f64, Instant)>>,
}

impl PlatformB {
    /// Creates the `/messenger` namespace on `io`; its sockets are handed
    /// to the application in `app` once it exists.
    pub(crate) fn new(
        io: &SocketIo,
        app: Arc<OnceLock<Arc<App>>>,
        store: &Store,
        keys: &TokenKeys,
        stats: &Arc<super::AppStats>,
    ) -> PlatformB {
        match store.prune_revoked_tokens(crate::store::now_ms() / 1000) {
            Ok(n) if n > 0 => tracing::info!(count = n, "forgot expired revoked tokens"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot prune revoked tokens"),
        }
        PlatformB {
            messenger: super::messenger::namespace(io, app, store, keys, stats),
            delivery: Arc::new(Delivery::default()),
            senders: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message token of `user` (`rate` per second up to `burst`,
    /// shared by all the user's devices).
    pub(crate) fn take_message_token(&self, user: &str, rate: f64, burst: f64) -> bool {
        let mut senders = self.senders.lock();
        if senders.len() >= MAX_TRACKED_SENDERS && !senders.contains_key(user) {
            // A bucket refilled to the brim says nothing: forget those.
            let now = Instant::now();
            senders.retain(|_, b| b.0 + now.duration_since(b.1).as_secs_f64() * rate < burst);
        }
        let bucket = senders
            .entry(user.to_string())
            .or_insert((burst, Instant::now()));
        super::take_token(bucket, rate, burst)
    }
}
