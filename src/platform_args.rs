//! The `serve` flags of the platform features (SPEC.md §4.1, §4.16–§4.21):
//! kept apart from `main.rs` so each feature's settings stay in one place.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use rollcall::app::platform::{parse_topics, DEFAULT_TOPICS};
use rollcall::app::AppConfig;
use rollcall::socketio::{RecoveryLog, RecoveryLogOptions};

/// Platform settings of `rollcall serve`.
#[derive(Args, Debug, Default)]
pub struct PlatformArgs {
    /// The Socket.IO path (seed 004 clients use /api/socket).
    #[arg(long, env = "SOCKET_PATH", default_value = "/socket.io/")]
    socket_path: String,
    /// Connection state recovery window in ms (0: off); the log is kept in
    /// DATA_DIR/recovery so that clients recover across a restart.
    #[arg(long, env = "RECOVERY_MS", default_value_t = 0)]
    recovery_ms: u64,
    /// Topics clients may subscribe to: name[:role|role...], comma-separated.
    #[arg(long, env = "TOPICS", default_value = DEFAULT_TOPICS)]
    topics: String,
    /// Largest notification in bytes.
    #[arg(long, env = "NOTIFICATION_MAX_BYTES", default_value_t = 8192)]
    notification_max_bytes: usize,
    /// Most unread notifications replayed to a new socket.
    #[arg(long, env = "NOTIFICATION_REPLAY_MAX", default_value_t = 100)]
    notification_replay_max: usize,
    /// Low-attendance warning threshold in percent (0: off).
    #[arg(long, env = "LOW_ATTENDANCE_PCT", default_value_t = 75.0)]
    low_attendance_pct: f64,
    /// Reconnect delay suggested with server_shutdown, in ms.
    #[arg(long, env = "SHUTDOWN_RECONNECT_DELAY_MS", default_value_t = 2000)]
    shutdown_reconnect_delay_ms: u64,
    /// How long shutdown waits for outbound queues to drain, in ms.
    #[arg(long, env = "SHUTDOWN_DRAIN_MS", default_value_t = 5000)]
    shutdown_drain_ms: u64,
}

impl PlatformArgs {
    /// Puts the settings into `config`; opens the recovery log in
    /// `data_dir/recovery` when recovery is on.
    pub fn apply(
        &self,
        config: &mut AppConfig,
        data_dir: &Path,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let p = &mut config.platform;
        p.topics = parse_topics(&self.topics).map_err(|e| format!("TOPICS: {e}"))?;
        p.notification_max_bytes = self.notification_max_bytes.clamp(256, 1 << 20);
        p.replay_max = self.notification_replay_max.min(10_000);
        if !(0.0..=100.0).contains(&self.low_attendance_pct) {
            return Err("LOW_ATTENDANCE_PCT must be 0-100".into());
        }
        p.low_attendance_pct = self.low_attendance_pct;
        p.shutdown_reconnect_delay = Duration::from_millis(self.shutdown_reconnect_delay_ms);
        p.shutdown_drain = Duration::from_millis(self.shutdown_drain_ms);
        let s = &mut config.server;
        let api_route = self.socket_path.starts_with("/api/")
            && self.socket_path.trim_end_matches('/') != "/api/socket";
        if !self.socket_path.starts_with('/') || self.socket_path == "/" || api_route {
            return Err(
                "SOCKET_PATH must start with / and not be an /api/ route (except /api/socket)"
                    .into(),
            );
        }
        s.socket_path = self.socket_path.clone();
        if self.recovery_ms > 0 {
            s.recovery = Some(Duration::from_millis(self.recovery_ms));
            let dir = data_dir.join("recovery");
            std::fs::create_dir_all(&dir)?;
            s.recovery_log = Some(RecoveryLog::open(&dir, RecoveryLogOptions::default())?);
        }
        Ok(())
    }
}
