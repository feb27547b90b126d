//! One Engine.IO session: its state machine and its bounded outbound queue.
//!
//! A [`Connection`] is shared by the transport (the pending long-poll or the
//! WebSocket task), the heartbeat driver and the upper layer. It owns all of
//! the session's mutable state: the fields are private to this file, and every
//! change (queueing, draining, closing, the heartbeat deadline, a pong, the
//! upgrade steps, the polling GET/POST flags, sharing the WebSocket's stream
//! for direct writes) is one method here, so the whole state machine reads in
//! one place. The router, the transports and the heartbeat driver only call
//! these methods.
//!
//! # Lock rules
//!
//! - `Connection::state` (one `parking_lot::Mutex`) guards every field of
//!   `State`. It is held only for short, non-blocking work and never across
//!   an `.await`; every method takes it once and releases it before
//!   returning.
//! - While it is held, the only other lock taken is the engine's
//!   `WriteBudget` (by a direct write: session lock, then budget lock,
//!   never the other way). The only I/O done under it is a direct write's
//!   non-blocking `try_write` ([`super::direct`]); the only long computation
//!   is compressing a shared frame for permessage-deflate, once per frame
//!   for all its recipients ([`super::deflate`]; a sender that needs the
//!   same frame meanwhile waits for that one result).
//! - It is never held while calling the [`super::EngineHandler`] (whose
//!   callbacks send on this connection and so take it), nor while taking the
//!   engine's session table lock.
//! - The three [`Notify`]s are signalled under the lock and awaited without
//!   it; `notify_one` keeps a permit, so a wake-up between the check (under
//!   the lock) and the wait is not lost.
//!
//! Deadlines use Tokio's clock ([`tokio::time::Instant`]), so tests can run
//! sessions under paused time and step the heartbeat deterministically.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::time::Instant;

mod upgrade;

use super::config::{EngineConfig, OverflowPolicy};
use super::direct::{try_write_frames, WriteBudget};
use super::error::{CloseReason, HttpError, SendError, TransportFault};
pub use super::handshake::HandshakeInfo;
use super::packet::{Frame, PacketType};
use super::stats::{transport_index, EngineStats};

/// What a direct write did.
enum Direct {
    /// Every frame went out.
    All,
    /// Nothing was written (not allowed, or the socket is full).
    None,
    /// The first `frames` frames are handled: written, except the last one
    /// when `tail` holds what is left of it.
    Part { frames: usize, tail: Option<Frame> },
}

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

/// The session's mutable state, guarded by `Connection::state` (see the
/// module's lock rules). Only the methods of this module and of its
/// `upgrade` child touch it.
struct State {
    transport: TransportKind,
    /// A WebSocket has sent `2probe` and the polling side must let go.
    upgrading: bool,
    /// A WebSocket is attached (probing or active).
    ws_attached: bool,
    closed: Option<CloseReason>,
    queue: VecDeque<Frame>,
    queued_bytes: usize,
    get_pending: bool,
    post_pending: bool,
    /// A ping was sent and its pong is due by this instant.
    pong_deadline: Option<Instant>,
    /// When the next ping is due.
    next_ping: Instant,
    /// The active WebSocket's socket, for direct writes (see [`super::direct`]).
    direct: Option<Arc<TcpStream>>,
    /// The WebSocket task holds frames it took from the queue and has not
    /// finished writing: nobody else may write to the socket.
    writing: bool,
    /// When the socket last finished a write (direct or by the task).
    last_write: std::time::Instant,
    /// Packets of at least this many bytes go out compressed: the active
    /// WebSocket's permessage-deflate threshold, `usize::MAX` without it.
    deflate_min: usize,
    /// A polling session whose client has made no request since the
    /// handshake is closed at this instant (cleared by the first GET, POST
    /// or upgrade; `None` for a session opened over WebSocket).
    first_exchange_by: Option<Instant>,
}

/// What a pending long-poll GET should do next ([`Connection::poll_step`]).
pub(crate) enum PollStep {
    /// Answer with these frames (the queue is now empty).
    Frames(Vec<Frame>),
    /// Answer with a noop: the session closed or is moving to WebSocket.
    Noop,
    /// Nothing to send yet: wait for [`Connection::poll_wakeup`].
    Wait,
}

/// Why a polling POST was refused before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostRefusal {
    /// Answer with this Engine.IO HTTP error.
    Http(HttpError),
    /// The declared body is over `maxPayload`: answer 413 (the session is closed).
    TooLarge,
}

/// A live Engine.IO session as seen by the upper layer: send packets, close it,
/// read its handshake.
pub struct Connection {
    id: Arc<str>,
    info: HandshakeInfo,
    /// Every mutable part of the session. Held briefly, never across an
    /// `.await` or a handler call; only the direct-write budget's lock may
    /// be taken under it (see the module's lock rules).
    state: Mutex<State>,
    /// Wakes a pending long-poll GET.
    poll_notify: Notify,
    /// Wakes the WebSocket task to write queued frames.
    ws_notify: Notify,
    /// Wakes the heartbeat driver (close, pong).
    driver_notify: Notify,
    config: Arc<EngineConfig>,
    budget: Arc<WriteBudget>,
    /// The engine's counters (relaxed sharded adds; no lock).
    stats: Arc<EngineStats>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.id).finish()
    }
}

impl Connection {
    pub(crate) fn new(
        id: Arc<str>,
        info: HandshakeInfo,
        transport: TransportKind,
        config: Arc<EngineConfig>,
        budget: Arc<WriteBudget>,
        stats: Arc<EngineStats>,
    ) -> Connection {
        Connection {
            id,
            info,
            state: Mutex::new(State {
                transport,
                upgrading: false,
                ws_attached: transport == TransportKind::WebSocket,
                closed: None,
                queue: VecDeque::new(),
                queued_bytes: 0,
                get_pending: false,
                post_pending: false,
                pong_deadline: None,
                next_ping: Instant::now() + config.ping_interval,
                direct: None,
                writing: false,
                last_write: std::time::Instant::now(),
                deflate_min: usize::MAX,
                first_exchange_by: (transport == TransportKind::Polling)
                    .then(|| Instant::now() + config.abuse.first_exchange_timeout),
            }),
            poll_notify: Notify::new(),
            ws_notify: Notify::new(),
            driver_notify: Notify::new(),
            config,
            budget,
            stats,
        }
    }

    /// The engine's counters.
    pub(crate) fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The session id (`sid`).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The handshake request's details.
    pub fn handshake(&self) -> &HandshakeInfo {
        &self.info
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        self.state.lock().transport
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed.is_some()
    }

    /// Test hook (not a stable API): the number of packets and bytes queued
    /// for the client and not yet handed to its transport.
    #[doc(hidden)]
    pub fn queued(&self) -> (usize, usize) {
        let g = self.state.lock();
        (g.queue.len(), g.queued_bytes)
    }

    /// The engine settings this session runs under.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a packet. Fails when the session is closed or the queue is full
    /// (then, under [`OverflowPolicy::Disconnect`], the session closes).
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        let mut g = self.state.lock();
        self.send_locked(&mut g, frame)
    }

    /// [`Connection::send`] with the lock held. The heartbeat's pings go
    /// through here too, so they count against the queue limits like any
    /// other packet (a client that never reads cannot grow its queue with
    /// pings).
    fn send_locked(&self, g: &mut State, frame: Frame) -> Result<(), SendError> {
        if g.closed.is_some() {
            return Err(SendError::Closed);
        }
        if g.queue.len() >= self.config.max_queue_packets
            || g.queued_bytes + frame.len() > self.config.max_queue_bytes
        {
            self.stats.overflow_dropped.inc();
            if self.config.overflow == OverflowPolicy::Disconnect {
                self.close_locked(g, CloseReason::BufferFull, false);
            }
            return Err(SendError::QueueFull);
        }
        self.push_locked(g, frame);
        Ok(())
    }

    /// Queues several packets at once (e.g. a binary packet and its
    /// attachments), all or none: they are never split by the queue limits.
    pub fn send_many(&self, frames: &[Frame]) -> Result<(), SendError> {
        let mut g = self.state.lock();
        if g.closed.is_some() {
            return Err(SendError::Closed);
        }
        let bytes: usize = frames.iter().map(Frame::len).sum();
        if g.queue.len() + frames.len() > self.config.max_queue_packets
            || g.queued_bytes + bytes > self.config.max_queue_bytes
        {
            self.stats.overflow_dropped.inc();
            if self.config.overflow == OverflowPolicy::Disconnect {
                self.close_locked(&mut g, CloseReason::BufferFull, false);
            }
            return Err(SendError::QueueFull);
        }
        self.enqueue_locked(&mut g, frames);
        Ok(())
    }

    /// Queues a packet only if the connection can take it now (nothing else is
    /// waiting in its queue, and for polling a GET is waiting). Returns whether
    /// it was queued; a dropped volatile packet never closes the session.
    pub fn send_volatile(&self, frames: &[Frame]) -> bool {
        let mut g = self.state.lock();
        let writable = match g.transport {
            TransportKind::WebSocket => g.queue.is_empty(),
            TransportKind::Polling => g.get_pending && g.queue.is_empty() && !g.upgrading,
        };
        if g.closed.is_some() || !writable {
            self.stats.volatile_dropped.inc();
            return false;
        }
        self.enqueue_locked(&mut g, frames);
        true
    }

    /// Closes the session from the server side: a `1` packet is sent if the
    /// transport can still carry it, then the transport is closed.
    pub fn close(&self) {
        self.close_with(CloseReason::ForcedClose);
    }

    /// Closes the session with a given reason (sends `1` first).
    pub fn close_with(&self, reason: CloseReason) {
        let mut g = self.state.lock();
        self.close_locked(&mut g, reason, true);
    }

    fn push_locked(&self, g: &mut State, frame: Frame) {
        self.enqueue_locked(g, std::slice::from_ref(&frame));
    }

    /// Hands `frames` to the transport (limits already checked): written
    /// directly to an idle WebSocket when allowed, else queued.
    #[inline]
    fn enqueue_locked(&self, g: &mut State, frames: &[Frame]) {
        let was_empty = g.queue.is_empty();
        let mut rest = frames;
        let mut tail = None;
        if was_empty && !g.writing && g.direct.is_some() && !frames.is_empty() {
            match self.try_direct(g, frames) {
                Direct::All => return,
                Direct::None => {}
                Direct::Part { frames, tail: t } => {
                    rest = &rest[frames..];
                    tail = t;
                }
            }
        }
        for f in tail.iter().chain(rest) {
            g.queued_bytes += f.len();
            g.queue.push_back(f.clone());
        }
        // The transport drains the whole queue under this lock, so it needs
        // waking only when the queue goes from empty to non-empty.
        if was_empty {
            self.wake_transport(g);
        }
    }

    /// Writes `frames` straight to the idle WebSocket if the connection has
    /// been idle long enough and the engine's budget allows it
    /// ([`super::direct`]).
    #[inline(never)]
    fn try_direct(&self, g: &mut State, frames: &[Frame]) -> Direct {
        let Some(stream) = &g.direct else {
            return Direct::None;
        };
        let now = std::time::Instant::now();
        if now.saturating_duration_since(g.last_write) < self.budget.idle
            || !self.budget.allows(now)
        {
            return Direct::None;
        }
        let mut written = try_write_frames(stream, frames, g.deflate_min);
        let end = std::time::Instant::now();
        self.budget.charge(end - now);
        g.last_write = end;
        let mut done = 0;
        let form = |f: &Frame| f.ws_bytes_for(g.deflate_min).len();
        let total = written;
        while done < frames.len() && written >= form(&frames[done]) {
            written -= form(&frames[done]);
            done += 1;
        }
        if total > 0 {
            // A frame cut short is counted when the task writes its tail.
            self.stats
                .wrote_direct(done, total, frames[0].created(), end);
        }
        if done == frames.len() {
            return Direct::All;
        }
        let tail = (written > 0).then(|| frames[done].ws_tail(g.deflate_min, written));
        Direct::Part {
            frames: done + usize::from(tail.is_some()),
            tail,
        }
    }

    fn wake_transport(&self, g: &State) {
        match g.transport {
            TransportKind::Polling => self.poll_notify.notify_one(),
            TransportKind::WebSocket => self.ws_notify.notify_one(),
        }
    }

    /// Marks the session closed (once). With `send_close`, a `1` packet is queued
    /// so a pending poll or the WebSocket delivers it before closing.
    fn close_locked(&self, g: &mut State, reason: CloseReason, send_close: bool) {
        if g.closed.is_some() {
            return;
        }
        if send_close {
            let f = Frame::text(PacketType::Close, "");
            g.queued_bytes += f.len();
            g.queue.push_back(f);
        }
        g.closed = Some(reason);
        self.poll_notify.notify_one();
        self.ws_notify.notify_one();
        self.driver_notify.notify_one();
    }

    /// Takes everything queued.
    fn drain_locked(&self, g: &mut State) -> Vec<Frame> {
        g.queued_bytes = 0;
        let frames: Vec<Frame> = g.queue.drain(..).collect();
        if let Some(first) = frames.first() {
            let bytes = frames.iter().map(Frame::len).sum();
            let t = transport_index(g.transport);
            self.stats
                .wrote_queued(t, frames.len(), bytes, first.created());
        }
        frames
    }

    /// Closes the session if its pong is overdue; returns whether it is (now) closed.
    fn check_deadline_locked(&self, g: &mut State, now: Instant) -> bool {
        if let Some(d) = g.pong_deadline {
            if now >= d {
                self.close_locked(g, CloseReason::PingTimeout, true);
            }
        }
        g.closed.is_some()
    }

    /// Records a pong: the next ping is due one interval from now.
    fn on_pong_locked(&self, g: &mut State, now: Instant) {
        if g.pong_deadline.take().is_some() {
            g.next_ping = now + self.config.ping_interval;
        }
    }

    // ---- Handshake ----------------------------------------------------------

    /// Queues the open packet, first of all and outside the queue limits.
    pub(crate) fn queue_open_packet(&self, frame: Frame) {
        let mut g = self.state.lock();
        self.push_locked(&mut g, frame);
    }

    /// Takes everything queued (the polling handshake's answer).
    pub(crate) fn take_queued(&self) -> Vec<Frame> {
        self.drain_locked(&mut self.state.lock())
    }

    // ---- Long-polling -------------------------------------------------------

    /// Checks a polling request against the session: closed (or its pong
    /// overdue, which closes it) is `UnknownSid`, a session on WebSocket is
    /// `BadRequest`.
    fn polling_request_locked(&self, g: &mut State) -> Result<(), HttpError> {
        if self.check_deadline_locked(g, Instant::now()) {
            return Err(HttpError::UnknownSid);
        }
        if g.transport != TransportKind::Polling {
            return Err(HttpError::BadRequest);
        }
        Ok(())
    }

    /// Starts a long-poll GET: refused as for any polling request, and a
    /// second GET while one is pending closes the session. On `Ok` the caller
    /// must call [`Connection::end_get`] when the request ends.
    pub(crate) fn begin_get(&self) -> Result<(), HttpError> {
        let mut g = self.state.lock();
        self.polling_request_locked(&mut g)?;
        if g.get_pending {
            let fault = TransportFault::DuplicateGet;
            self.close_locked(&mut g, CloseReason::TransportError(fault), true);
            return Err(HttpError::BadRequest);
        }
        g.get_pending = true;
        g.first_exchange_by = None;
        Ok(())
    }

    /// The pending GET ended (answered, or dropped with its client).
    pub(crate) fn end_get(&self) {
        self.state.lock().get_pending = false;
    }

    /// What the pending GET does now: take the queue, answer a noop, or wait.
    pub(crate) fn poll_step(&self) -> PollStep {
        let mut g = self.state.lock();
        if !g.queue.is_empty() {
            return PollStep::Frames(self.drain_locked(&mut g));
        }
        if g.closed.is_some() || g.upgrading || g.transport != TransportKind::Polling {
            return PollStep::Noop;
        }
        PollStep::Wait
    }

    /// Completes when the pending GET may have something to do.
    pub(crate) fn poll_wakeup(&self) -> Notified<'_> {
        self.poll_notify.notified()
    }

    /// Starts a POST: refused as for any polling request; a second POST
    /// while one runs, a binary content type, or a declared length over
    /// `maxPayload` close the session. On `Ok` the caller must call
    /// [`Connection::end_post`] when the request ends.
    pub(crate) fn begin_post(
        &self,
        binary_body: bool,
        declared_len: Option<u64>,
    ) -> Result<(), PostRefusal> {
        let mut g = self.state.lock();
        self.polling_request_locked(&mut g)
            .map_err(PostRefusal::Http)?;
        let fault = if g.post_pending {
            Some(TransportFault::DuplicatePost)
        } else if binary_body {
            Some(TransportFault::BadContentType)
        } else {
            None
        };
        if let Some(fault) = fault {
            self.close_locked(&mut g, CloseReason::TransportError(fault), true);
            return Err(PostRefusal::Http(HttpError::BadRequest));
        }
        if declared_len.is_some_and(|n| n > self.config.max_payload as u64) {
            self.close_locked(&mut g, CloseReason::PayloadTooLarge, true);
            return Err(PostRefusal::TooLarge);
        }
        g.post_pending = true;
        g.first_exchange_by = None;
        Ok(())
    }

    /// The running POST ended.
    pub(crate) fn end_post(&self) {
        self.state.lock().post_pending = false;
    }

    // ---- Packets from the client --------------------------------------------

    /// Records a pong; returns whether the session is still open. The next
    /// ping is due one interval from now.
    pub(crate) fn on_pong(&self) -> bool {
        let mut g = self.state.lock();
        let awaited = g.pong_deadline.is_some();
        self.on_pong_locked(&mut g, Instant::now());
        if awaited {
            // The driver sleeps until the pong deadline; wake it so that
            // it sleeps until the next ping instead (pingInterval after
            // this pong), which comes first when pingTimeout is longer
            // than pingInterval.
            self.driver_notify.notify_one();
        }
        g.closed.is_none()
    }

    /// Closes the session without queueing a `1` (the client closed it, or
    /// the transport is gone).
    pub(crate) fn close_quietly(&self, reason: CloseReason) {
        let mut g = self.state.lock();
        self.close_locked(&mut g, reason, false);
    }

    /// Why the session ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.state.lock().closed.clone()
    }

    // ---- Heartbeat ----------------------------------------------------------

    /// One step of the heartbeat at `now`: closes the session if its pong is
    /// overdue or its first exchange never came, sends a ping when one is
    /// due. Returns when to step again, or `None` once the session is closed.
    pub(crate) fn heartbeat(&self, now: Instant) -> Option<Instant> {
        let mut g = self.state.lock();
        if g.first_exchange_by.is_some_and(|d| now >= d) {
            self.close_locked(&mut g, CloseReason::FirstExchangeTimeout, true);
        }
        if self.check_deadline_locked(&mut g, now) {
            return None;
        }
        if g.pong_deadline.is_none() && now >= g.next_ping {
            let deadline = g.next_ping + self.config.ping_timeout;
            g.pong_deadline = Some(deadline);
            // Bounded like any send: with the queue full the session
            // closes (disconnect policy) or the ping is dropped and the
            // pong deadline still runs.
            let _ = self.send_locked(&mut g, Frame::text(PacketType::Ping, ""));
        }
        let wake = g.pong_deadline.unwrap_or(g.next_ping);
        Some(g.first_exchange_by.map_or(wake, |d| d.min(wake)))
    }

    /// Completes when the heartbeat should look at the session again early
    /// (it closed, or a pong arrived).
    pub(crate) fn driver_wakeup(&self) -> Notified<'_> {
        self.driver_notify.notified()
    }
}
