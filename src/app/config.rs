//! Application settings (from flags, the environment and a `.env` file; see
//! the binary's `--help`).

use std::path::PathBuf;
use std::time::Duration;

use crate::admin_ui::AdminUiConfig;
use crate::socketio::{AllowedOrigins, Cors};

/// Settings of the attendance server.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Data directory (sled database and generated secret).
    pub data_dir: PathBuf,
    /// Allowed CORS origins (`*` for any).
    pub client_urls: Vec<String>,
    /// Lifetime of issued tokens.
    pub token_ttl_secs: u64,
    /// Whether `POST /api/auth/register` creates students.
    pub allow_registration: bool,
    /// A session with no change for this long ends by itself.
    pub session_idle: Duration,
    /// How often idle sessions are looked for.
    pub idle_check_interval: Duration,
    /// Requests per second a socket may make (sustained).
    pub rate_per_sec: f64,
    /// Requests a socket may make in a burst.
    pub rate_burst: f64,
    /// Requests a socket may have in flight.
    pub queue_per_socket: usize,
    /// Default lifetime of a check-in code.
    pub code_period_secs: u64,
    /// Sessions, tokens, authenticate-after-connect and messaging (§4.22).
    pub platform_b: super::PlatformBConfig,
    /// The admin UI namespace (off by default).
    pub admin_ui: AdminUiConfig,
    /// Notifications, topics, presence, shutdown (SPEC.md §4.16–§4.20).
    pub platform: super::platform::PlatformConfig,
    /// The Socket.IO path and recovery of the server (SPEC.md §4.21).
    pub server: super::platform::ServerSettings,
    /// Login, registration, hashing and socket limits (SPEC.md §4.24).
    pub abuse: super::abuse::AbuseConfig,
    /// The engine's abuse limits (SPEC.md §1.1, §2.16).
    pub engine_abuse: crate::engine::AbuseLimits,
    /// The Socket.IO layer's abuse limits (SPEC.md §3.14).
    pub event_limits: crate::socketio::EventLimits,
    /// Bearer token `/metrics` requires (`METRICS_TOKEN`; none: open).
    pub metrics_token: Option<String>,
    /// Serve `/metrics` on this address instead of the main port
    /// (`METRICS_ADDR`, `host:port`).
    pub metrics_addr: Option<String>,
    /// How long each readiness check of `/api/ready` may take.
    pub ready_timeout: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            data_dir: PathBuf::from("./data"),
            client_urls: vec!["http://localhost:3000".into()],
            token_ttl_secs: 86_400,
            allow_registration: true,
            session_idle: Duration::from_secs(3 * 3600),
            idle_check_interval: Duration::from_secs(60),
            rate_per_sec: 50.0,
            rate_burst: 200.0,
            queue_per_socket: 1024,
            code_period_secs: 30,
            platform_b: Default::default(),
            admin_ui: AdminUiConfig::default(),
            platform: Default::default(),
            engine_abuse: Default::default(),
            event_limits: Default::default(),
            server: Default::default(),
            abuse: Default::default(),
            metrics_token: None,
            metrics_addr: None,
            ready_timeout: Duration::from_secs(2),
        }
    }
}

impl AppConfig {
    /// The CORS settings for the configured client origins.
    pub fn cors(&self) -> Cors {
        if self.client_urls.iter().any(|u| u == "*") {
            Cors::any()
        } else {
            Cors {
                origins: AllowedOrigins::List(self.client_urls.clone()),
                credentials: true,
            }
        }
    }
}
