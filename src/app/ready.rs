//! `GET /api/ready`: readiness for an orchestrator (liveness is
//! `GET /api/health`, which touches nothing).
//!
//! Ready means the store takes a write (a real write made durable through
//! the group commit, [`crate::store::Store::probe_write`]) and every
//! namespace's adapter can reach what it needs
//! ([`crate::socketio::Adapter::ready`]; always true for the local
//! adapter). Each check is bounded by `READY_TIMEOUT_MS`; the answer is 200
//! or 503 with what each check said.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use serde_json::{json, Value};

use super::App;
use crate::http::{response, Body};
use crate::socketio::SocketIo;

/// One readiness check's result, bounded by `timeout`.
async fn check<F, E>(probe: F, timeout: Duration) -> Value
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(())) => json!({"ok": true}),
        Ok(Err(e)) => json!({"ok": false, "error": e.to_string()}),
        Err(_) => {
            json!({"ok": false, "error": format!("timed out after {} ms", timeout.as_millis())})
        }
    }
}

/// The readiness answer for a store probe and an adapter probe: 200 when
/// both pass, else 503, with what each said.
pub(crate) async fn readiness<S, SE, A, AE>(store: S, adapter: A, timeout: Duration) -> (u16, Value)
where
    S: Future<Output = Result<(), SE>>,
    SE: std::fmt::Display,
    A: Future<Output = Result<(), AE>>,
    AE: std::fmt::Display,
{
    let (store, adapter) = tokio::join!(check(store, timeout), check(adapter, timeout));
    let ok = store["ok"] == true && adapter["ok"] == true;
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"store": store, "adapter": adapter},
    });
    (if ok { 200 } else { 503 }, body)
}

/// Answers `GET /api/ready`.
pub async fn ready(app: &Arc<App>, io: &SocketIo) -> Response<Body> {
    let timeout = app.config().ready_timeout;
    let (status, body) = readiness(app.store().probe_write(), io.adapters_ready(), timeout).await;
    if status != 200 {
        tracing::warn!(status, checks = %body["checks"], "not ready");
    }
    response(status, Some("application/json"), body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_when_every_check_passes() {
        let ok = || async { Ok::<(), String>(()) };
        let (s, b) = readiness(ok(), ok(), Duration::from_secs(1)).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ready")));

        let failing = async { Err::<(), _>("storage error: read-only file system".to_string()) };
        let (s, b) = readiness(failing, ok(), Duration::from_secs(1)).await;
        assert_eq!(s, 503);
        assert_eq!(b["status"], "not_ready");
        assert_eq!(b["checks"]["store"]["ok"], false);
        assert_eq!(
            b["checks"]["store"]["error"],
            "storage error: read-only file system"
        );
        assert_eq!(b["checks"]["adapter"]["ok"], true);

        let stuck = std::future::pending::<Result<(), String>>();
        let (s, b) = readiness(ok(), stuck, Duration::from_millis(20)).await;
        assert_eq!(s, 503);
        assert_eq!(b["checks"]["adapter"]["error"], "timed out after 20 ms");
    }
}
