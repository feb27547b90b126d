//! Abuse resistance of the application (SPEC.md §4.24): what one address or
//! one account may cost the server.
//!
//! - `limiter`: per-address token buckets (logins, registrations) and the
//!   per-account login backoff, all in bounded maps;
//! - `hash_pool`: a fixed set of threads for argon2 with a bounded queue, so
//!   that password hashing costs at most `workers × 19 MiB` whatever the
//!   number of concurrent requests;
//! - `sockets`: the per-user socket cap of `/`.
//!
//! The settings are one [`AbuseConfig`] (flattened into `rollcall serve`'s
//! flags); the state is one [`Abuse`] owned by the [`super::App`].

use std::time::Duration;

mod hash_pool;
mod limiter;
mod sockets;

pub use hash_pool::{HashBusy, HashPool};
pub use limiter::{AccountBackoff, AddressLimiter, Refusal};
pub(crate) use sockets::{SocketCap, SocketSlot};

/// The settings of SPEC.md §4.24.
#[derive(Debug, Clone, clap::Args)]
pub struct AbuseConfig {
    /// Login attempts per minute per client address (sustained).
    #[arg(long, env = "LOGIN_RATE_PER_MIN", default_value_t = 30.0)]
    pub login_rate_per_min: f64,
    /// Login attempts per client address in a burst.
    #[arg(long, env = "LOGIN_BURST", default_value_t = 10.0)]
    pub login_burst: f64,
    /// Failed logins of one account before its backoff starts.
    #[arg(long, env = "LOGIN_BACKOFF_AFTER", default_value_t = 3)]
    pub login_backoff_after: u32,
    /// Longest backoff of one account, in seconds.
    #[arg(long, env = "LOGIN_BACKOFF_MAX_SECS", default_value_t = 30)]
    pub login_backoff_max_secs: u64,
    /// Registrations per hour per client address (sustained).
    #[arg(long, env = "REGISTER_RATE_PER_HOUR", default_value_t = 10.0)]
    pub register_rate_per_hour: f64,
    /// Registrations per client address in a burst.
    #[arg(long, env = "REGISTER_BURST", default_value_t = 5.0)]
    pub register_burst: f64,
    /// Password hashes computed at once (0: the number of cores).
    #[arg(long, env = "HASH_WORKERS", default_value_t = 0)]
    pub hash_workers: usize,
    /// Password hashes waiting for a worker; beyond it: 429.
    #[arg(long, env = "HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,
    /// Sockets one user may have connected to `/` (0: no cap).
    #[arg(long, env = "MAX_SOCKETS_PER_USER", default_value_t = 20)]
    pub max_sockets_per_user: usize,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        AbuseConfig {
            login_rate_per_min: 30.0,
            login_burst: 10.0,
            login_backoff_after: 3,
            login_backoff_max_secs: 30,
            register_rate_per_hour: 10.0,
            register_burst: 5.0,
            hash_workers: 0,
            hash_queue: 64,
            max_sockets_per_user: 20,
        }
    }
}

/// Most client addresses (or accounts) tracked by one limiter; see
/// [`AddressLimiter`].
pub const MAX_TRACKED: usize = 65_536;

/// The abuse-resistance state of the application.
pub struct Abuse {
    /// Login attempts per address.
    pub login: AddressLimiter,
    /// Failed logins per account.
    pub accounts: AccountBackoff,
    /// Registrations per address.
    pub register: AddressLimiter,
    /// argon2 work.
    pub hashes: HashPool,
    /// Sockets per user on `/`.
    pub(crate) sockets: SocketCap,
}

impl Abuse {
    /// The state for `c` (starts the hash workers).
    pub fn new(c: &AbuseConfig) -> Abuse {
        let workers = if c.hash_workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            c.hash_workers
        };
        Abuse {
            login: AddressLimiter::new(c.login_rate_per_min / 60.0, c.login_burst.max(1.0)),
            accounts: AccountBackoff::new(
                c.login_backoff_after,
                Duration::from_secs(c.login_backoff_max_secs.max(1)),
            ),
            register: AddressLimiter::new(
                c.register_rate_per_hour / 3600.0,
                c.register_burst.max(1.0),
            ),
            hashes: HashPool::new(workers, c.hash_queue),
            sockets: SocketCap::new(c.max_sockets_per_user),
        }
    }
}

/// The middleware's second step on `/`: an authenticated socket takes a
/// slot of its user, or the CONNECT is refused with `too_many_connections`.
pub(crate) fn admit_socket(
    cap: &SocketCap,
    socket: &std::sync::Arc<crate::socketio::Socket>,
) -> Result<(), crate::socketio::ConnectError> {
    let Some(user) = socket.data().get::<std::sync::Arc<crate::store::User>>() else {
        return Ok(());
    };
    match cap.take(&user.id) {
        Some(slot) => {
            socket.data().insert(slot);
            Ok(())
        }
        None => Err(crate::socketio::ConnectError::with_data(
            "Too many connections",
            serde_json::json!({"code": crate::app::ErrorCode::TooManyConnections.code(),
                               "message": format!("at most {} sockets per user", cap.max())}),
        )),
    }
}

/// An event no handler knows: ignored, but it takes a token of the
/// socket's rate limit like a request; without one it is refused with
/// `error_event` `rate_limited` (and a failed ack when one was asked).
pub(super) fn unknown_event(
    ctx: &super::SocketCtx,
    (rate, burst): (f64, f64),
    socket: &std::sync::Arc<crate::socketio::Socket>,
    ack: Option<crate::socketio::AckSender>,
    error_event: &str,
) {
    if !ctx.take_token(rate, burst) {
        let e = super::AppError::new(super::ErrorCode::RateLimited, "Too many requests");
        super::logging::refused_request("(unknown)", e.code.code());
        super::refuse_event(socket, error_event, ack, &e);
    }
}
