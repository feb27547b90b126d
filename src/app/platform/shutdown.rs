//! Graceful shutdown (SPEC.md §4.20), in two steps so that the caller can
//! close its listener in between: [`App::begin_shutdown`] refuses new
//! Engine.IO sessions, tells every socket and lets the outbound queues drain
//! up to a deadline (the listener stays open meanwhile: long-polling clients
//! need new HTTP requests, often on new TCP connections, to fetch the
//! notice); [`App::finish_shutdown`] closes the Socket.IO server (recovery
//! sessions saved, log flushed) and flushes the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::App;
use crate::socketio::{Payload, SocketIo};

/// The event every socket gets first.
pub(crate) const SHUTDOWN_EVENT: &str = "server_shutdown";

/// Closes the Engine.IO admission once shutdown begins (new handshakes get
/// error 4, `403 Forbidden`); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<AtomicBool>);

impl Gate {
    /// Whether new sessions are still admitted.
    pub(crate) fn open(&self) -> bool {
        !self.0.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// What the first step of a graceful shutdown did.
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
    /// First step of a graceful shutdown: refuses new Engine.IO sessions,
    /// sends `server_shutdown {reason, reconnectDelayMs, timestamp}` to every
    /// socket of `/` and `/notifications`, and waits until no open
    /// connection has anything queued (at most the configured drain time).
    pub async fn begin_shutdown(&self, reason: &str) -> ShutdownReport {
        self.platform().gate().close();
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
        let ms = waited.as_millis() as u64;
        tracing::info!(notified, drained, waited_ms = ms, "shutdown: drained");
        ShutdownReport {
            notified,
            drained,
            waited,
        }
    }

    /// Last step: [`SocketIo::shutdown`] (recovery sessions saved, every
    /// connection closed, recovery log flushed; its errors are logged),
    /// then a store flush, whose error is returned.
    pub async fn finish_shutdown(&self, io: &SocketIo) -> Result<(), crate::store::StoreError> {
        let io = io.clone();
        match tokio::task::spawn_blocking(move || io.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "recovery log close failed"),
            Err(e) => tracing::error!(error = %e, "shutdown task failed"),
        }
        self.store().flush_blocking()
    }
}
