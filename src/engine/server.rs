//! The Engine.IO server's front: the [`Engine`] handle and the routing of
//! each HTTP request (the checks every request gets, the handshake that
//! opens a session, and the dispatch to long-polling or WebSocket).
//!
//! What happens after routing lives elsewhere: `polling` answers
//! GET/POST, `transport` runs WebSockets, `heartbeat`
//! drives each session, and the session's state belongs to
//! [`super::session::Connection`].

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{header, Method, Request, Response};

use super::config::{Cors, EngineConfig};
use super::dispatch::{EngineInner, Link, Session};
use super::error::HttpError;
use super::handshake::HandshakeInfo;
use super::packet::{encode_payload, Frame, PacketType};
use super::session::{Connection, TransportKind};
use super::transport::{websocket, SessionLink};
use super::{heartbeat, polling};
use crate::http::{response, Body, Permit};

pub use super::dispatch::EngineHandler;
pub use super::handshake::query_param;

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
            inner: Arc::new(EngineInner::new(config, handler)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        self.inner.config()
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        self.inner.handler()
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner.session_count()
    }

    /// The engine's counters (for a metrics collector).
    pub fn stats(&self) -> &super::stats::EngineStats {
        self.inner.stats()
    }

    /// Open sessions by transport: `[polling, websocket]` (counts each
    /// session once; not a snapshot).
    pub fn sessions_by_transport(&self) -> [usize; 2] {
        let mut n = [0; 2];
        for c in self.inner.connections() {
            n[super::stats::transport_index(c.transport())] += 1;
        }
        n
    }

    /// Whether `path` is under this engine's mount path.
    pub fn matches_path(&self, path: &str) -> bool {
        let p = &self.inner.config().path;
        path.starts_with(p.as_str()) || path == p.trim_end_matches('/')
    }

    /// Runs the engine alone on `listener` under its connection limits
    /// ([`super::AbuseLimits::connections`]); requests outside its path get 404.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        let limits = self.inner.config().abuse.connections.clone();
        crate::http::serve_with(listener, limits, move |req, addr| {
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
        let cors = self.inner.config().cors.as_ref();
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
        let cfg = self.inner.config();
        let query = req.uri().query().unwrap_or("").to_string();
        let transport = match query_param(&query, "transport").as_deref() {
            Some("polling") if cfg.transports.polling => TransportKind::Polling,
            Some("websocket") if cfg.transports.websocket => TransportKind::WebSocket,
            _ => return HttpError::UnknownTransport.response(),
        };
        let eio_ok = query_param(&query, "EIO").as_deref() == Some("4");
        if transport == TransportKind::WebSocket {
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            let same = origin.is_some_and(|o| super::same_origin(o, host));
            if !same
                && !cfg
                    .abuse
                    .websocket_origin_allowed(cfg.cors.as_ref(), origin)
            {
                return HttpError::Forbidden.response();
            }
        }
        if let Some(sid) = query_param(&query, "sid") {
            let Some(session) = self.inner.session(sid.as_str()) else {
                return HttpError::UnknownSid.response();
            };
            if !eio_ok {
                return HttpError::BadRequest.response();
            }
            return match transport {
                TransportKind::Polling => match *req.method() {
                    Method::GET => polling::get(&session.conn).await,
                    Method::POST => polling::post(&self.inner, &session, req).await,
                    _ => HttpError::BadRequest.response(),
                },
                TransportKind::WebSocket => self.upgrade_existing(session, req),
            };
        }
        if req.method() != Method::GET {
            return HttpError::BadHandshakeMethod.response();
        }
        if !eio_ok {
            return HttpError::UnsupportedProtocolVersion.response();
        }
        if transport == TransportKind::WebSocket && !is_websocket_upgrade(&req) {
            return HttpError::BadRequest.response();
        }
        if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > cfg.abuse.handshake_bytes {
            return HttpError::BadRequest.response();
        }
        if let Some(allow) = &cfg.allow_request {
            let (parts, body) = req.into_parts();
            if !allow(&parts) {
                return HttpError::Forbidden.response();
            }
            return self.admitted(Request::from_parts(parts, body), remote, transport);
        }
        self.admitted(req, remote, transport)
    }

    /// The handshake, if the address's rate and the session cap allow it.
    fn admitted<B>(
        &self,
        req: Request<B>,
        remote: SocketAddr,
        transport: TransportKind,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    {
        match self.inner.admission().admit(remote.ip()) {
            Ok(permit) => self.handshake(req, remote, transport, permit),
            Err(e) => e.response(),
        }
    }

    fn open_packet(&self, sid: &str, transport: TransportKind) -> Frame {
        let cfg = self.inner.config();
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
    fn create_session(
        &self,
        info: HandshakeInfo,
        transport: TransportKind,
        permit: Permit,
    ) -> Arc<Session<H>> {
        let sid: Arc<str> = crate::util::random_id(16).into();
        let conn = Arc::new(Connection::new(
            sid.clone(),
            info,
            transport,
            self.inner.config().clone(),
            self.inner.budget().clone(),
            self.inner.stats().clone(),
        ));
        self.inner.stats().handshakes[super::stats::transport_index(transport)].inc();
        conn.queue_open_packet(self.open_packet(&sid, transport));
        let state = self.inner.handler().on_open(&conn);
        let session = Arc::new(Session {
            conn,
            state,
            _permit: permit,
        });
        self.inner.insert(session.clone());
        tokio::spawn(heartbeat::drive(self.inner.clone(), session.clone()));
        session
    }

    fn handshake<B>(
        &self,
        req: Request<B>,
        remote: SocketAddr,
        transport: TransportKind,
        permit: Permit,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    {
        let (parts, body) = req.into_parts();
        let info =
            HandshakeInfo::detached(&parts, remote, self.inner.config().abuse.handshake_bytes);
        match transport {
            TransportKind::Polling => {
                let session = self.create_session(info, transport, permit);
                let frames = session.conn.take_queued();
                polling::payload_response(encode_payload(&frames))
            }
            TransportKind::WebSocket => {
                let req = Request::from_parts(parts, body);
                let engine = self.clone();
                let deflate = self.inner.config().deflate;
                let stall = self.inner.config().upgrade_timeout;
                websocket::accept(req, deflate.as_ref(), stall, move |upgraded| async move {
                    if let Some(up) = upgraded {
                        let session = engine.create_session(info, TransportKind::WebSocket, permit);
                        let link = Link::new(engine.inner.clone(), session);
                        websocket::run(link, up, false).await;
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
            return HttpError::BadRequest.response();
        }
        match session.conn.claim_websocket() {
            Err(e) => return e.response(),
            Ok(false) => {
                // At most one WebSocket per session: complete the handshake,
                // then close the newcomer at once (what clients expect).
                let stall = self.inner.config().upgrade_timeout;
                return websocket::accept(req, None, stall, |upgraded| async move {
                    if let Some((io, _, _)) = upgraded {
                        websocket::refuse(io).await;
                    }
                });
            }
            Ok(true) => {}
        }
        let conn = session.conn.clone();
        let link = Link::new(self.inner.clone(), session);
        let deflate = self.inner.config().deflate;
        let stall = self.inner.config().upgrade_timeout;
        let res = websocket::accept(req, deflate.as_ref(), stall, move |upgraded| async move {
            match upgraded {
                Some(up) => websocket::run(link, up, true).await,
                None => link.conn().release_websocket(),
            }
        });
        if !res.status().is_informational() {
            conn.release_websocket();
        }
        res
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
            if !self.inner.config().transports.websocket {
                return Err(HttpError::UnknownTransport);
            }
            let permit = self.inner.admission().unchecked();
            let session = self.create_session(
                HandshakeInfo::in_process(),
                TransportKind::WebSocket,
                permit,
            );
            let link = Link::new(self.inner.clone(), session);
            tokio::spawn(websocket::run(link, (io, BytesMut::new(), None), false));
            return Ok(());
        };
        let session = self.inner.session(sid).ok_or(HttpError::UnknownSid)?;
        if session.conn.claim_websocket()? {
            let link = Link::new(self.inner.clone(), session);
            tokio::spawn(websocket::run(link, (io, BytesMut::new(), None), true));
        } else {
            tokio::spawn(websocket::refuse(io));
        }
        Ok(())
    }
}
