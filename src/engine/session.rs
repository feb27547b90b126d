//! One Engine.IO session: its state machine and its bounded outbound queue.
//!
//! A [`Connection`] is shared by the transport (the pending long-poll or the
//! WebSocket task), the heartbeat driver and the upper layer. All mutable
//! state sits behind one short-held mutex; three [`Notify`]s wake the
//! long-poll, the WebSocket writer and the driver.
//!
//! Deadlines use Tokio's clock ([`tokio::time::Instant`]), so tests can run
//! sessions under paused time and step the heartbeat deterministically.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::{EngineConfig, OverflowPolicy};
use super::direct::{try_write_frames, WriteBudget};
use super::error::{CloseReason, SendError};
use super::packet::{Frame, PacketType};

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

/// What the upper layer may know about the request that opened a session.
#[derive(Debug)]
pub struct HandshakeInfo {
    /// The request URI (path and query).
    pub uri: http::Uri,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// When the session was opened.
    pub time: SystemTime,
}

impl HandshakeInfo {
    /// The handshake of request `parts`, copied into allocations of its own.
    /// (hyper parses the URI and header values as slices of the connection's
    /// read buffer: keeping clones would pin that 8 KiB buffer for the whole
    /// life of the session.)
    pub(crate) fn detached(parts: &http::request::Parts, remote_addr: SocketAddr) -> Self {
        let uri = http::Uri::try_from(parts.uri.to_string()).unwrap_or_default();
        let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            // The WebSocket handshake's own headers say nothing the upper
            // layers can use; not keeping them saves memory per connection.
            let n = name.as_str();
            if n.starts_with("sec-websocket-") || n == "upgrade" || n == "connection" {
                continue;
            }
            let name = http::HeaderName::from_bytes(name.as_str().as_bytes());
            let value = http::HeaderValue::from_bytes(value.as_bytes());
            if let (Ok(n), Ok(v)) = (name, value) {
                headers.append(n, v);
            }
        }
        HandshakeInfo {
            uri,
            headers,
            remote_addr,
            time: SystemTime::now(),
        }
    }

    /// The value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        super::server::query_param(self.uri.query().unwrap_or(""), name)
    }
}

pub(crate) struct Inner {
    pub transport: TransportKind,
    /// A WebSocket has sent `2probe` and the polling side must let go.
    pub upgrading: bool,
    /// A WebSocket is attached (probing or active).
    pub ws_attached: bool,
    pub closed: Option<CloseReason>,
    pub queue: VecDeque<Frame>,
    pub queued_bytes: usize,
    pub get_pending: bool,
    pub post_pending: bool,
    /// A ping was sent and its pong is due by this instant.
    pub pong_deadline: Option<Instant>,
    /// When the next ping is due.
    pub next_ping: Instant,
    /// The active WebSocket's socket, for direct writes (see [`super::direct`]).
    pub direct: Option<Arc<tokio::net::TcpStream>>,
    /// The WebSocket task holds frames it took from the queue and has not
    /// finished writing: nobody else may write to the socket.
    pub writing: bool,
    /// When the socket last finished a write (direct or by the task).
    pub last_write: std::time::Instant,
}

/// A live Engine.IO session as seen by the upper layer: send packets, close it,
/// read its handshake.
pub struct Connection {
    id: Arc<str>,
    info: HandshakeInfo,
    pub(crate) inner: Mutex<Inner>,
    /// Wakes a pending long-poll GET.
    pub(crate) poll_notify: Notify,
    /// Wakes the WebSocket task to write queued frames.
    pub(crate) ws_notify: Notify,
    /// Wakes the session driver (close).
    pub(crate) driver_notify: Notify,
    config: Arc<EngineConfig>,
    budget: Arc<WriteBudget>,
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
    ) -> Connection {
        Connection {
            id,
            info,
            inner: Mutex::new(Inner {
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
            }),
            poll_notify: Notify::new(),
            ws_notify: Notify::new(),
            driver_notify: Notify::new(),
            config,
            budget,
        }
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
        self.inner.lock().transport
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed.is_some()
    }

    /// Test hook (not a stable API): the number of packets and bytes queued
    /// for the client and not yet handed to its transport.
    #[doc(hidden)]
    pub fn queued(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.queue.len(), g.queued_bytes)
    }

    /// The engine settings this session runs under.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Queues a packet. Fails when the session is closed or the queue is full
    /// (then, under [`OverflowPolicy::Disconnect`], the session closes).
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        let mut g = self.inner.lock();
        self.send_locked(&mut g, frame)
    }

    /// [`Connection::send`] with the lock held. The heartbeat's pings go
    /// through here too, so they count against the queue limits like any
    /// other packet (a client that never reads cannot grow its queue with
    /// pings).
    pub(crate) fn send_locked(&self, g: &mut Inner, frame: Frame) -> Result<(), SendError> {
        if g.closed.is_some() {
            return Err(SendError::Closed);
        }
        if g.queue.len() >= self.config.max_queue_packets
            || g.queued_bytes + frame.len() > self.config.max_queue_bytes
        {
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
        let mut g = self.inner.lock();
        if g.closed.is_some() {
            return Err(SendError::Closed);
        }
        let bytes: usize = frames.iter().map(Frame::len).sum();
        if g.queue.len() + frames.len() > self.config.max_queue_packets
            || g.queued_bytes + bytes > self.config.max_queue_bytes
        {
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
        let mut g = self.inner.lock();
        let writable = match g.transport {
            TransportKind::WebSocket => g.queue.is_empty(),
            TransportKind::Polling => g.get_pending && g.queue.is_empty() && !g.upgrading,
        };
        if g.closed.is_some() || !writable {
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
        let mut g = self.inner.lock();
        self.close_locked(&mut g, reason, true);
    }

    pub(crate) fn push_locked(&self, g: &mut Inner, frame: Frame) {
        self.enqueue_locked(g, std::slice::from_ref(&frame));
    }

    /// Hands `frames` to the transport (limits already checked): written
    /// directly to an idle WebSocket when allowed, else queued.
    #[inline]
    fn enqueue_locked(&self, g: &mut Inner, frames: &[Frame]) {
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
    fn try_direct(&self, g: &mut Inner, frames: &[Frame]) -> Direct {
        let Some(stream) = &g.direct else {
            return Direct::None;
        };
        let now = std::time::Instant::now();
        if now.saturating_duration_since(g.last_write) < self.budget.idle
            || !self.budget.allows(now)
        {
            return Direct::None;
        }
        let mut written = try_write_frames(stream, frames);
        let end = std::time::Instant::now();
        self.budget.charge(end - now);
        g.last_write = end;
        let mut done = 0;
        while done < frames.len() && written >= frames[done].ws_bytes().len() {
            written -= frames[done].ws_bytes().len();
            done += 1;
        }
        if done == frames.len() {
            return Direct::All;
        }
        let tail = (written > 0).then(|| frames[done].ws_tail(written));
        Direct::Part {
            frames: done + usize::from(tail.is_some()),
            tail,
        }
    }

    pub(crate) fn wake_transport(&self, g: &Inner) {
        match g.transport {
            TransportKind::Polling => self.poll_notify.notify_one(),
            TransportKind::WebSocket => self.ws_notify.notify_one(),
        }
    }

    /// Marks the session closed (once). With `send_close`, a `1` packet is queued
    /// so a pending poll or the WebSocket delivers it before closing.
    pub(crate) fn close_locked(&self, g: &mut Inner, reason: CloseReason, send_close: bool) {
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
    pub(crate) fn drain_locked(g: &mut Inner) -> Vec<Frame> {
        g.queued_bytes = 0;
        g.queue.drain(..).collect()
    }

    /// Closes the session if its pong is overdue; returns whether it is (now) closed.
    pub(crate) fn check_deadline_locked(&self, g: &mut Inner, now: Instant) -> bool {
        if let Some(d) = g.pong_deadline {
            if now >= d {
                self.close_locked(g, CloseReason::PingTimeout, true);
            }
        }
        g.closed.is_some()
    }

    /// Records a pong: the next ping is due one interval from now.
    pub(crate) fn on_pong_locked(&self, g: &mut Inner, now: Instant) {
        if g.pong_deadline.take().is_some() {
            g.next_ping = now + self.config.ping_interval;
        }
    }
}
