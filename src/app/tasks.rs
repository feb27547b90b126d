//! The application's background tasks: the check-in code rotation of each
//! session that uses codes (the code maths is in [`super::checkin`]), and the
//! idle expiry that ends forgotten sessions.
//!
//! Both hold only a weak reference to the [`App`] between rounds, so they end
//! when the application is dropped. Lock rule: the rotation set's mutex is a
//! leaf (taken only in [`Rotations`]' methods, nothing else taken under it).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::{checkin, events, staff_room, App, Outcome};
use crate::store::SessionStatus;

/// The sessions whose code rotation task runs (at most one task each).
#[derive(Default)]
pub(crate) struct Rotations {
    running: Mutex<HashSet<String>>,
}

impl Rotations {
    /// Claims the task of `session_id`; false when one runs already.
    fn claim(&self, session_id: &str) -> bool {
        self.running.lock().insert(session_id.to_string())
    }

    /// The task of `session_id` has stopped.
    fn release(&self, session_id: &str) {
        self.running.lock().remove(session_id);
    }
}

impl App {
    /// Starts the task that sends each new check-in code to the session's
    /// staff (once per session; it stops when the session ends or needs no
    /// codes).
    pub(crate) fn start_code_rotation(self: &Arc<Self>, session_id: &str) {
        if !self.rotations().claim(session_id) {
            return;
        }
        let app = Arc::downgrade(self);
        let sid = session_id.to_string();
        tokio::spawn(async move {
            loop {
                let Some(a) = app.upgrade() else { return };
                let session = match a.store().session(&sid) {
                    Ok(Some(s)) if s.status == SessionStatus::Active => s,
                    _ => {
                        a.rotations().release(&sid);
                        return;
                    }
                };
                if !session.checkin.code_required {
                    a.rotations().release(&sid);
                    return;
                }
                let now = crate::store::now_ms() / 1000;
                let period = session.checkin.code_period_secs;
                // No write to wait for: the code is derived, not stored.
                let code = events::code_json(&session, now);
                let _ = Outcome::new()
                    .broadcast(staff_room(&sid), "checkinCode", code)
                    .apply(a.ns(), None);
                let next = checkin::code_expires_at(period, now);
                drop(a);
                tokio::time::sleep(Duration::from_secs(next.saturating_sub(now).max(1))).await;
            }
        });
    }
}

/// Ends sessions idle longer than the configured time, with the usual end
/// events (made durable first, then announced).
pub(crate) async fn idle_expiry(app: Weak<App>) {
    loop {
        let interval = match app.upgrade() {
            Some(a) => a.config().idle_check_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(a) = app.upgrade() else { return };
        let now = crate::store::now_ms();
        let idle_ms = a.config().session_idle.as_millis() as u64;
        // Store the in-memory activity times (marks do not rewrite the
        // session); made durable by the next group flush.
        if let Err(e) = a.store().persist_activity() {
            tracing::warn!(error = %e, "cannot store session activity");
        }
        let Ok(sessions) = a.store().active_sessions() else {
            continue;
        };
        for s in sessions {
            if now.saturating_sub(a.store().last_activity(&s)) >= idle_ms {
                match events::end_session(&a, &s.id, None) {
                    Ok(outcome) => {
                        if let Some(t) = outcome.waits_for() {
                            if a.store().durable(t).await.is_err() {
                                continue;
                            }
                        }
                        let _ = outcome.apply(a.ns(), None);
                        tracing::info!(session = %s.id, "ended idle session");
                    }
                    Err(e) => tracing::warn!(session = %s.id, error = %e, "idle end failed"),
                }
            }
        }
    }
}
