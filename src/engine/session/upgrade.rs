//! The session's WebSocket steps: claiming the single WebSocket slot, the
//! upgrade probe, and the active WebSocket's stream and write queue.
//!
//! A child of `session` so that it reaches the session's private state; it
//! follows the same lock rules (see the parent module).

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;

use super::{Connection, State, TransportKind};
use crate::engine::error::{CloseReason, HttpError};
use crate::engine::packet::Frame;

impl Connection {
    // ---- Upgrade ------------------------------------------------------------

    /// Decides whether a WebSocket may join this session as its upgrade
    /// candidate: `Ok(true)` claims the session's single WebSocket slot,
    /// `Ok(false)` means another WebSocket already holds it (or the session
    /// already runs on WebSocket) and the newcomer must be refused.
    pub(crate) fn claim_websocket(&self) -> Result<bool, HttpError> {
        if !self.config.allow_upgrades {
            return Err(HttpError::BadRequest);
        }
        let mut g = self.state.lock();
        if g.closed.is_some() {
            return Err(HttpError::UnknownSid);
        }
        if g.transport != TransportKind::Polling || g.ws_attached {
            return Ok(false);
        }
        g.ws_attached = true;
        g.first_exchange_by = None;
        Ok(true)
    }

    /// Gives back the WebSocket slot claimed by [`Connection::claim_websocket`]
    /// when the upgrade did not happen.
    pub(crate) fn release_websocket(&self) {
        self.state.lock().ws_attached = false;
    }

    /// The candidate WebSocket sent `2probe`: the pending GET lets go.
    pub(crate) fn probe_received(&self) {
        let mut g = self.state.lock();
        g.upgrading = true;
        self.poll_notify.notify_one();
    }

    /// The candidate WebSocket sent `5`: the session moves to it. Returns
    /// false (and changes nothing) when the session is already closed.
    pub(crate) fn complete_upgrade(&self) -> bool {
        let mut g = self.state.lock();
        if g.closed.is_some() {
            return false;
        }
        g.transport = TransportKind::WebSocket;
        g.upgrading = false;
        self.poll_notify.notify_one();
        self.stats().upgrades.inc();
        true
    }

    /// The candidate WebSocket went away without upgrading: polling goes on.
    pub(crate) fn probe_ended(&self) {
        let mut g = self.state.lock();
        g.ws_attached = false;
        g.upgrading = false;
        self.poll_notify.notify_one();
    }

    // ---- The active WebSocket -----------------------------------------------

    /// Shares the active WebSocket's stream with the session for direct
    /// writes: unless the session is closed, `share` is called (under the
    /// lock) and the stream it returns is kept.
    pub(crate) fn share_stream(&self, share: impl FnOnce() -> Arc<TcpStream>) {
        let mut g = self.state.lock();
        if g.closed.is_none() {
            g.direct = Some(share());
        }
    }

    /// The active WebSocket negotiated permessage-deflate: packets of at
    /// least `threshold` bytes are written compressed from now on (set
    /// before the task's first write).
    pub(crate) fn use_deflate(&self, threshold: usize) {
        self.state.lock().deflate_min = threshold;
    }

    /// Takes the shared stream back (so no direct write can start any more)
    /// and marks the socket as written by its task alone.
    pub(crate) fn unshare_stream(&self) {
        let mut g = self.state.lock();
        g.direct = None;
        g.writing = true;
    }

    /// Takes everything queued for the WebSocket task to write, appending it
    /// to `out` (which may already hold control frames), and records whether
    /// a write is now in progress. Returns whether the session is closed (so
    /// this is the last write).
    pub(crate) fn take_for_write(&self, out: &mut Vec<Bytes>) -> bool {
        let mut g = self.state.lock();
        self.drain_ws_locked(&mut g, out);
        if g.writing && out.is_empty() {
            g.last_write = std::time::Instant::now();
        }
        g.writing = !out.is_empty();
        g.closed.is_some()
    }

    /// The active WebSocket ended: closes the session with `reason` (no `1`:
    /// the transport is gone) if it is not closed yet, and appends what is
    /// still queued (e.g. the `1` of a server close) to `out`.
    pub(crate) fn end_websocket(&self, reason: Option<CloseReason>, out: &mut Vec<Bytes>) {
        let mut g = self.state.lock();
        if let Some(r) = reason {
            self.close_locked(&mut g, r, false);
        }
        self.drain_ws_locked(&mut g, out);
    }

    /// Drains the queue as WebSocket frames (compressed where agreed).
    /// Counts them as written (queued) for the engine's statistics.
    fn drain_ws_locked(&self, g: &mut State, out: &mut Vec<Bytes>) {
        let min = g.deflate_min;
        let Some(oldest) = g.queue.front().map(Frame::created) else {
            return;
        };
        let (n, before) = (g.queue.len(), out.len());
        out.extend(g.queue.drain(..).map(|f| f.ws_bytes_for(min).clone()));
        g.queued_bytes = 0;
        let bytes = out[before..].iter().map(Bytes::len).sum();
        self.stats().wrote_queued(1, n, bytes, oldest);
    }

    /// Completes when the WebSocket task has frames to write (or the session closed).
    pub(crate) fn ws_wakeup(&self) -> Notified<'_> {
        self.ws_notify.notified()
    }
}
