//! Graceful shutdown (SPEC.md §4.20): tell every socket, let the outbound
//! queues drain up to a deadline, close the Socket.IO server (its recovery
//! sessions saved and its log flushed), flush the store. The binary stops
//! accepting connections before calling it.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::App;
use crate::socketio::{Payload, SocketIo};

/// The event every socket gets first.
pub(crate) const SHUTDOWN_EVENT: &str = "server_shutdown";

/// What a graceful shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sockets `server_shutdown` was queued on.
    pub notified: usize,
    /// Whether every outbound queue drained before the deadline.
    pub drained: bool,
    /// How long the drain took.
    pub waited: Duration,
}

impl App {
    /// Shuts down gracefully: `server_shutdown {reason, reconnectDelayMs,
    /// timestamp}` to every socket of `/` and `/notifications`, waits until
    /// the outbound queues are empty (at most the configured drain time),
    /// then [`SocketIo::shutdown`] and a store flush. Errors are logged;
    /// the store flush's is returned.
    pub async fn graceful_shutdown(
        &self,
        io: &SocketIo,
        reason: &str,
    ) -> Result<ShutdownReport, crate::store::StoreError> {
        let p = &self.config().platform;
        let payload = Payload::one(json!({
            "reason": reason,
            "reconnectDelayMs": p.shutdown_reconnect_delay.as_millis() as u64,
            "timestamp": crate::store::now_rfc3339(),
        }));
        let namespaces = self.notification_namespaces();
        let notified = namespaces
            .iter()
            .map(|ns| ns.broadcast().emit(SHUTDOWN_EVENT, &payload))
            .sum();
        let start = Instant::now();
        let deadline = start + p.shutdown_drain;
        let drained = loop {
            let pending = namespaces
                .iter()
                .flat_map(|ns| ns.sockets())
                .any(|s| !s.conn().is_closed() && s.conn().queued().0 > 0);
            if !pending {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let waited = start.elapsed();
        let io = io.clone();
        match tokio::task::spawn_blocking(move || io.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "recovery log close failed"),
            Err(e) => tracing::error!(error = %e, "shutdown task failed"),
        }
        self.store().flush_blocking()?;
        tracing::info!(
            notified,
            drained,
            waited_ms = waited.as_millis() as u64,
            "shut down"
        );
        Ok(ShutdownReport {
            notified,
            drained,
            waited,
        })
    }
}
