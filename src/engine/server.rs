//! The Engine.IO server: request routing, the long-polling transport, the
//! session table and the per-session heartbeat driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{header, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use super::config::{Cors, EngineConfig};
use super::direct::WriteBudget;
use super::error::{CloseReason, HttpError, TransportFault};
use super::packet::{decode_payload, encode_payload, Frame, Message, Packet, PacketType};
use super::session::{Connection, HandshakeInfo, TransportKind};
use super::websocket;
use crate::http::{response, Body};
use crate::util::ShardedMap;

/// What the layer above Engine.IO implements: it is told of each new session,
/// of each message (in order, one at a time per session) and of the end of
/// each session (exactly once, with the reason).
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state the handler keeps.
    type State: Send + Sync + 'static;
    /// A session opened; the returned state is passed to the other callbacks.
    fn on_open(&self, conn: &Arc<Connection>) -> Self::State;
    /// A message arrived.
    fn on_message(&self, conn: &Arc<Connection>, state: &Self::State, msg: Message);
    /// The session ended.
    fn on_close(&self, conn: &Arc<Connection>, state: &Self::State, reason: CloseReason);
}

pub(crate) struct Session<H: EngineHandler> {
    pub conn: Arc<Connection>,
    pub state: H::State,
}

pub(crate) struct EngineInner<H: EngineHandler> {
    pub config: Arc<EngineConfig>,
    pub handler: H,
    sessions: ShardedMap<Arc<str>, Arc<Session<H>>>,
    budget: Arc<WriteBudget>,
}

/// An Engine.IO v4 server. Cheap to clone; mount it with [`Engine::handle`]
/// or run it alone with [`Engine::serve`].
///
/// ```no_run
/// use std::sync::Arc;
/// use rollcall::engine::{CloseReason, Connection, Engine, EngineConfig, EngineHandler, Frame, Message};
///
/// struct Echo;
/// impl EngineHandler for Echo {
///     type State = ();
///     fn on_open(&self, _conn: &Arc<Connection>) {}
///     fn on_message(&self, conn: &Arc<Connection>, _: &(), msg: Message) {
///         let _ = match msg {
///             Message::Text(t) => conn.send(Frame::message(t.as_str())),
///             Message::Binary(b) => conn.send(Frame::binary(&b)),
///         };
///     }
///     fn on_close(&self, _conn: &Arc<Connection>, _: &(), _reason: CloseReason) {}
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let engine = Engine::new(EngineConfig::default(), Echo);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// engine.serve(listener).await;
/// # Ok(()) }
/// ```
pub struct Engine<H: EngineHandler> {
    pub(crate) inner: Arc<EngineInner<H>>,
}

impl<H: EngineHandler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

/// Reads query parameter `name` from a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn error_response(e: HttpError) -> Response<Body> {
    response(e.status(), Some("application/json"), e.body())
}

fn is_websocket_upgrade<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let has = |name: header::HeaderName, needle: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(needle)))
                .unwrap_or(false)
        })
    };
    req.method() == Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && h.get(header::SEC_WEBSOCKET_KEY).is_some()
}

impl<H: EngineHandler> Engine<H> {
    /// A server with `config`, calling `handler` for every session.
    pub fn new(config: EngineConfig, handler: H) -> Engine<H> {
        Engine {
            inner: Arc::new(EngineInner {
                budget: Arc::new(WriteBudget::new(config.direct_writes)),
                config: Arc::new(config),
                handler,
                sessions: ShardedMap::new(64),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Whether `path` is under this engine's mount path.
    pub fn matches_path(&self, path: &str) -> bool {
        let p = &self.inner.config.path;
        path.starts_with(p.as_str()) || path == p.trim_end_matches('/')
    }

    /// Runs the engine alone on `listener`; requests outside its path get 404.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        crate::http::serve(listener, move |req, addr| {
            let engine = self.clone();
            async move {
                if engine.matches_path(req.uri().path()) {
                    engine.handle(req, addr).await
                } else {
                    response(404, Some("text/plain"), "Not Found")
                }
            }
        })
        .await
    }

    /// Answers one HTTP request addressed to the engine.
    pub async fn handle<B>(&self, req: Request<B>, remote: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let cors = self.inner.config.cors.as_ref();
        let mut res = match cors {
            Some(_) if req.method() == Method::OPTIONS => Cors::preflight(
                "GET,HEAD,PUT,PATCH,POST,DELETE",
                req.headers()
                    .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .cloned(),
            ),
            _ => self.route(req, remote).await,
        };
        if let Some(cors) = cors {
            cors.apply(res.headers_mut(), origin.as_deref());
        }
        res
    }

    async fn route<B>(&self, req: Request<B>, remote: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let cfg = &self.inner.config;
        let query = req.uri().query().unwrap_or("").to_string();
        let transport = match query_param(&query, "transport").as_deref() {
            Some("polling") if cfg.transports.polling => TransportKind::Polling,
            Some("websocket") if cfg.transports.websocket => TransportKind::WebSocket,
            _ => return error_response(HttpError::UnknownTransport),
        };
        let eio_ok = query_param(&query, "EIO").as_deref() == Some("4");
        if let Some(sid) = query_param(&query, "sid") {
            let Some(session) = self.inner.sessions.get(sid.as_str()) else {
                return error_response(HttpError::UnknownSid);
            };
            if !eio_ok {
                return error_response(HttpError::BadRequest);
            }
            return match transport {
                TransportKind::Polling => match *req.method() {
                    Method::GET => self.poll_get(&session).await,
                    Method::POST => self.poll_post(&session, req).await,
                    _ => error_response(HttpError::BadRequest),
                },
                TransportKind::WebSocket => self.upgrade_existing(session, req),
            };
        }
        if req.method() != Method::GET {
            return error_response(HttpError::BadHandshakeMethod);
        }
        if !eio_ok {
            return error_response(HttpError::UnsupportedProtocolVersion);
        }
        if transport == TransportKind::WebSocket && !is_websocket_upgrade(&req) {
            return error_response(HttpError::BadRequest);
        }
        if let Some(allow) = &cfg.allow_request {
            let (parts, body) = req.into_parts();
            if !allow(&parts) {
                return error_response(HttpError::Forbidden);
            }
            return self.handshake(Request::from_parts(parts, body), remote, transport);
        }
        self.handshake(req, remote, transport)
    }

    fn open_packet(&self, sid: &str, transport: TransportKind) -> Frame {
        let cfg = &self.inner.config;
        let upgrades = if transport == TransportKind::Polling
            && cfg.allow_upgrades
            && cfg.transports.websocket
        {
            "[\"websocket\"]"
        } else {
            "[]"
        };
        let data = format!(
            "{{\"sid\":\"{}\",\"upgrades\":{},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
            sid,
            upgrades,
            cfg.ping_interval.as_millis(),
            cfg.ping_timeout.as_millis(),
            cfg.max_payload
        );
        Frame::text(PacketType::Open, &data)
    }

    /// Creates a session: open packet queued first, handler told, driver started.
    fn create_session(&self, info: HandshakeInfo, transport: TransportKind) -> Arc<Session<H>> {
        let sid: Arc<str> = crate::util::random_id(16).into();
        let conn = Arc::new(Connection::new(
            sid.clone(),
            info,
            transport,
            self.inner.config.clone(),
            self.inner.budget.clone(),
        ));
        {
            let mut g = conn.inner.lock();
            conn.push_locked(&mut g, self.open_packet(&sid, transport));
        }
        let state = self.inner.handler.on_open(&conn);
        let session = Arc::new(Session { conn, state });
        self.inner.sessions.insert(sid, session.clone());
        tokio::spawn(drive(self.inner.clone(), session.clone()));
        session
    }

    fn handshake<B>(
        &self,
        req: Request<B>,
        remote: SocketAddr,
        transport: TransportKind,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    {
        let (parts, body) = req.into_parts();
        let info = HandshakeInfo::detached(&parts, remote);
        match transport {
            TransportKind::Polling => {
                let session = self.create_session(info, transport);
                let frames = {
                    let mut g = session.conn.inner.lock();
                    Connection::drain_locked(&mut g)
                };
                polling_response(encode_payload(&frames))
            }
            TransportKind::WebSocket => {
                let req = Request::from_parts(parts, body);
                let engine = self.clone();
                websocket::accept(req, move |upgraded| async move {
                    if let Some((io, buf)) = upgraded {
                        let session = engine.create_session(info, TransportKind::WebSocket);
                        websocket::run(engine.inner.clone(), session, io, buf, false).await;
                    }
                })
            }
        }
    }

    fn upgrade_existing<B>(&self, session: Arc<Session<H>>, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    {
        if !is_websocket_upgrade(&req) {
            return error_response(HttpError::BadRequest);
        }
        match self.claim_websocket(&session) {
            Err(e) => return error_response(e),
            Ok(false) => {
                // At most one WebSocket per session: complete the handshake,
                // then close the newcomer at once (what clients expect).
                return websocket::accept(req, |upgraded| async move {
                    if let Some((io, _)) = upgraded {
                        websocket::refuse(io).await;
                    }
                });
            }
            Ok(true) => {}
        }
        let inner = self.inner.clone();
        let guard_session = session.clone();
        let res = websocket::accept(req, move |upgraded| async move {
            match upgraded {
                Some((io, buf)) => websocket::run(inner, session, io, buf, true).await,
                None => session.conn.inner.lock().ws_attached = false,
            }
        });
        if !res.status().is_informational() {
            guard_session.conn.inner.lock().ws_attached = false;
        }
        res
    }

    /// Decides whether a WebSocket may join `session` as its upgrade
    /// candidate: `Ok(true)` claims the session's single WebSocket slot,
    /// `Ok(false)` means another WebSocket already holds it (or the session
    /// already runs on WebSocket) and the newcomer must be refused.
    fn claim_websocket(&self, session: &Session<H>) -> Result<bool, HttpError> {
        if !self.inner.config.allow_upgrades {
            return Err(HttpError::BadRequest);
        }
        let mut g = session.conn.inner.lock();
        if g.closed.is_some() {
            return Err(HttpError::UnknownSid);
        }
        if g.transport != TransportKind::Polling || g.ws_attached {
            return Ok(false);
        }
        g.ws_attached = true;
        Ok(true)
    }

    /// In-process test hook (for the fuzz targets and tests; not a stable
    /// API): runs the WebSocket transport over any byte stream, such as one
    /// end of [`tokio::io::duplex`], as if an HTTP upgrade had just
    /// completed. No HTTP exchange happens: the caller writes masked client
    /// frames to the other end and reads the server's frames from it.
    ///
    /// Without `sid` a new WebSocket-only session opens (its open packet is
    /// the first frame written), like `GET ?EIO=4&transport=websocket`. With
    /// `sid` the socket is an upgrade candidate of that polling session
    /// (`2probe`, then `5`), with the same checks as the HTTP route: the
    /// errors are the ones the route answers with (a second WebSocket for a
    /// session is accepted and closed at once with 1008, as over HTTP).
    /// Must be called inside a Tokio runtime.
    #[doc(hidden)]
    pub fn attach_websocket<S>(&self, sid: Option<&str>, io: S) -> Result<(), HttpError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let io = websocket::WsIo::Dyn(Box::new(io));
        let Some(sid) = sid else {
            if !self.inner.config.transports.websocket {
                return Err(HttpError::UnknownTransport);
            }
            let info = HandshakeInfo {
                uri: http::Uri::from_static("/?EIO=4&transport=websocket"),
                headers: http::HeaderMap::new(),
                remote_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                time: SystemTime::now(),
            };
            let session = self.create_session(info, TransportKind::WebSocket);
            let run = websocket::run(self.inner.clone(), session, io, BytesMut::new(), false);
            tokio::spawn(run);
            return Ok(());
        };
        let session = self.inner.sessions.get(sid).ok_or(HttpError::UnknownSid)?;
        if self.claim_websocket(&session)? {
            let run = websocket::run(self.inner.clone(), session, io, BytesMut::new(), true);
            tokio::spawn(run);
        } else {
            tokio::spawn(websocket::refuse(io));
        }
        Ok(())
    }

    async fn poll_get(&self, session: &Arc<Session<H>>) -> Response<Body> {
        let conn = &session.conn;
        {
            let mut g = conn.inner.lock();
            if conn.check_deadline_locked(&mut g, Instant::now()) {
                return error_response(HttpError::UnknownSid);
            }
            if g.transport != TransportKind::Polling {
                return error_response(HttpError::BadRequest);
            }
            if g.get_pending {
                conn.close_locked(
                    &mut g,
                    CloseReason::TransportError(TransportFault::DuplicateGet),
                    true,
                );
                return error_response(HttpError::BadRequest);
            }
            g.get_pending = true;
        }
        let _pending = PendingFlag { conn, get: true };
        loop {
            {
                let mut g = conn.inner.lock();
                if !g.queue.is_empty() {
                    let frames = Connection::drain_locked(&mut g);
                    drop(g);
                    return polling_response(encode_payload(&frames));
                }
                if g.closed.is_some() || g.upgrading || g.transport != TransportKind::Polling {
                    return polling_response(vec![PacketType::Noop.as_char()]);
                }
            }
            conn.poll_notify.notified().await;
        }
    }

    async fn poll_post<B>(&self, session: &Arc<Session<H>>, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let conn = &session.conn;
        let max = self.inner.config.max_payload;
        {
            let mut g = conn.inner.lock();
            if conn.check_deadline_locked(&mut g, Instant::now()) {
                return error_response(HttpError::UnknownSid);
            }
            if g.transport != TransportKind::Polling {
                return error_response(HttpError::BadRequest);
            }
            if g.post_pending {
                conn.close_locked(
                    &mut g,
                    CloseReason::TransportError(TransportFault::DuplicatePost),
                    true,
                );
                return error_response(HttpError::BadRequest);
            }
            let binary_body = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/octet-stream"));
            if binary_body {
                conn.close_locked(
                    &mut g,
                    CloseReason::TransportError(TransportFault::BadContentType),
                    true,
                );
                return error_response(HttpError::BadRequest);
            }
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max as u64) {
                conn.close_locked(&mut g, CloseReason::PayloadTooLarge, true);
                return response(413, None, Bytes::new());
            }
            g.post_pending = true;
        }
        let _pending = PendingFlag { conn, get: false };
        let body = match Limited::new(req.into_body(), max).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    conn.close_with(CloseReason::PayloadTooLarge);
                    return response(413, None, Bytes::new());
                }
                return error_response(HttpError::BadRequest);
            }
        };
        let (packets, err) = decode_payload(body);
        for p in packets {
            if !self.on_packet(session, p) {
                return post_answer(conn);
            }
        }
        if err.is_some() {
            conn.close_with(CloseReason::ParseError);
        }
        post_answer(conn)
    }

    /// Handles one packet that arrived by POST; returns false once the session is closed.
    fn on_packet(&self, session: &Arc<Session<H>>, packet: Packet) -> bool {
        handle_packet(&self.inner, session, packet)
    }
}

/// Handles a packet from an active transport (polling, or an upgraded or
/// direct WebSocket). Returns false once the session is closed.
pub(crate) fn handle_packet<H: EngineHandler>(
    inner: &EngineInner<H>,
    session: &Arc<Session<H>>,
    packet: Packet,
) -> bool {
    let conn = &session.conn;
    match packet {
        Packet::Message(t) => deliver(inner, session, Message::Text(t)),
        Packet::Binary(b) => deliver(inner, session, Message::Binary(b)),
        Packet::Pong(_) => {
            let mut g = conn.inner.lock();
            let awaited = g.pong_deadline.is_some();
            conn.on_pong_locked(&mut g, Instant::now());
            if awaited {
                // The driver sleeps until the pong deadline; wake it so that
                // it sleeps until the next ping instead (pingInterval after
                // this pong), which comes first when pingTimeout is longer
                // than pingInterval.
                conn.driver_notify.notify_one();
            }
            g.closed.is_none()
        }
        Packet::Close => {
            let mut g = conn.inner.lock();
            conn.close_locked(&mut g, CloseReason::ClientClose, false);
            false
        }
        Packet::Ping(_) | Packet::Open => {
            conn.close_with(CloseReason::ParseError);
            false
        }
        Packet::Upgrade | Packet::Noop => !conn.is_closed(),
    }
}

fn deliver<H: EngineHandler>(
    inner: &EngineInner<H>,
    session: &Arc<Session<H>>,
    msg: Message,
) -> bool {
    if session.conn.is_closed() {
        return false;
    }
    inner.handler.on_message(&session.conn, &session.state, msg);
    true
}

/// Clears the pending-GET or pending-POST flag when the request ends, even
/// when the client goes away and hyper drops the request future.
struct PendingFlag<'a> {
    conn: &'a Connection,
    get: bool,
}

impl Drop for PendingFlag<'_> {
    fn drop(&mut self) {
        let mut g = self.conn.inner.lock();
        if self.get {
            g.get_pending = false;
        } else {
            g.post_pending = false;
        }
    }
}

fn polling_response(body: Vec<u8>) -> Response<Body> {
    response(200, Some("text/plain; charset=UTF-8"), body)
}

fn polling_ok() -> Response<Body> {
    response(200, Some("text/html"), Bytes::from_static(b"ok"))
}

/// The answer to a POST whose packets have been handled: error 3 when the
/// session ended on a protocol violation (an undecodable record, a `0` or
/// `2` from the client, or a violation the upper layer found in a message),
/// else `ok` (also when the client closed the session with `1`).
fn post_answer(conn: &Connection) -> Response<Body> {
    if conn.inner.lock().closed == Some(CloseReason::ParseError) {
        error_response(HttpError::BadRequest)
    } else {
        polling_ok()
    }
}

/// The per-session driver: sends pings, enforces the pong deadline, and on
/// close removes the session and tells the handler (exactly once).
async fn drive<H: EngineHandler>(inner: Arc<EngineInner<H>>, session: Arc<Session<H>>) {
    let conn = &session.conn;
    let cfg = &inner.config;
    loop {
        let wake_at = {
            let mut g = conn.inner.lock();
            let now = Instant::now();
            if conn.check_deadline_locked(&mut g, now) {
                break;
            }
            if g.pong_deadline.is_none() && now >= g.next_ping {
                let deadline = g.next_ping + cfg.ping_timeout;
                g.pong_deadline = Some(deadline);
                // Bounded like any send: with the queue full the session
                // closes (disconnect policy) or the ping is dropped and the
                // pong deadline still runs.
                let _ = conn.send_locked(&mut g, Frame::text(PacketType::Ping, ""));
            }
            g.pong_deadline.unwrap_or(g.next_ping)
        };
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = conn.driver_notify.notified() => {}
        }
    }
    inner.sessions.remove(conn.id_arc());
    let reason = conn
        .inner
        .lock()
        .closed
        .clone()
        .unwrap_or(CloseReason::ForcedClose);
    tracing::debug!(sid = conn.id(), %reason, "session closed");
    inner.handler.on_close(conn, &session.state, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = "EIO=4&transport=polling&t=N8hyd6w&sid=a%2Bb";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "sid").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("x=%zz%", "x").as_deref(), Some("%zz%"));
        assert_eq!(query_param("x=%4", "x").as_deref(), Some("%4"));
    }

    #[test]
    fn http_error_bodies() {
        assert_eq!(
            HttpError::UnknownTransport.body(),
            r#"{"code":0,"message":"Transport unknown"}"#
        );
        assert_eq!(HttpError::Forbidden.status(), 403);
    }
}
