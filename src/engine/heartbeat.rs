//! The per-session heartbeat driver: sends pings, enforces the pong
//! deadline, and on close removes the session and tells the handler
//! (exactly once).
//!
//! One task per session, whatever its transport, so that the session's end
//! is reported from one place. The ping/pong rules themselves are
//! [`super::session::Connection`] methods; this task only sleeps between
//! them.

use std::sync::Arc;

use tokio::time::Instant;

use super::dispatch::{EngineHandler, EngineInner, Session};
use super::error::CloseReason;

/// Runs the heartbeat of `session` until it closes, then reports the close.
pub(crate) async fn drive<H: EngineHandler>(engine: Arc<EngineInner<H>>, session: Arc<Session<H>>) {
    let conn = &session.conn;
    while let Some(wake_at) = conn.heartbeat(Instant::now()) {
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = conn.driver_wakeup() => {}
        }
    }
    engine.remove(conn.id_arc());
    let reason = conn.close_reason().unwrap_or(CloseReason::ForcedClose);
    engine.stats().closes[super::stats::close_index(&reason)].inc();
    tracing::debug!(sid = conn.id(), %reason, "session closed");
    engine.handler().on_close(conn, &session.state, reason);
}
