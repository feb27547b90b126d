//! The Socket.IO server: configuration, namespaces, and the Engine.IO
//! handler that decodes packets and routes them to sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::Notify;

use super::namespace::{ConnectError, Namespace, NamespaceSetup};
use super::packet::{encode_control, Limits, Packet, PacketKind, ParseError};
use super::recovery::{RecoveryConfig, RecoveryStore};
use super::socket::{DisconnectReason, Extensions, Socket, SocketInit};
use crate::engine::{
    CloseReason, Connection, Cors, Engine, EngineConfig, EngineConfigBuilder, EngineHandler,
    Message,
};
use crate::http::Body;

/// Socket.IO server settings; build with [`SocketIoConfig::builder`].
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// The Engine.IO settings (path defaults to `/socket.io/`).
    pub engine: EngineConfig,
    /// How long a connection may stay without joining any namespace (default 45 s).
    pub connect_timeout: Duration,
    /// Decoder limits.
    pub limits: Limits,
    /// Connection state recovery (default off).
    pub recovery: Option<RecoveryConfig>,
    /// How much a client may send for a namespace while its CONNECT is
    /// still being processed (async middlewares running).
    pub connect_buffer: ConnectBufferLimit,
}

/// Bounds the packets a connection may send for a namespace whose CONNECT
/// is still in progress; they are kept and handled once the socket is
/// connected. A client that sends more is closed (Engine.IO close reason
/// "connect buffer overflow"; its other sockets see "forced close"); other
/// connections are not affected. Well-behaved clients send nothing for a
/// namespace before its CONNECT is answered, so the defaults are small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectBufferLimit {
    /// Most packets kept per namespace being connected (default 128).
    pub packets: usize,
    /// Most bytes kept per namespace being connected, counted as the
    /// packets' Engine.IO message sizes with their binary attachments
    /// (default 1 MiB, so a single packet within the default `maxPayload`
    /// always fits).
    pub bytes: usize,
}

impl Default for ConnectBufferLimit {
    fn default() -> Self {
        ConnectBufferLimit {
            packets: 128,
            bytes: 1 << 20,
        }
    }
}

impl SocketIoConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SocketIoConfigBuilder {
        SocketIoConfigBuilder {
            engine: EngineConfig::builder().path("/socket.io/"),
            connect_timeout: Duration::from_secs(45),
            limits: Limits::default(),
            recovery: None,
            connect_buffer: ConnectBufferLimit::default(),
        }
    }
}

/// Builder for [`SocketIoConfig`].
///
/// ```
/// use std::time::Duration;
/// use rollcall::socketio::SocketIoConfig;
/// let config = SocketIoConfig::builder()
///     .engine(|e| e.ping_interval(Duration::from_secs(10)))
///     .connect_timeout(Duration::from_secs(5))
///     .build();
/// assert_eq!(config.engine.path, "/socket.io/");
/// ```
#[derive(Debug, Clone)]
pub struct SocketIoConfigBuilder {
    engine: EngineConfigBuilder,
    connect_timeout: Duration,
    limits: Limits,
    recovery: Option<RecoveryConfig>,
    connect_buffer: ConnectBufferLimit,
}

impl SocketIoConfigBuilder {
    /// Adjusts the Engine.IO settings.
    pub fn engine(mut self, f: impl FnOnce(EngineConfigBuilder) -> EngineConfigBuilder) -> Self {
        self.engine = f(self.engine);
        self
    }
    /// Enables CORS for the server's routes (see [`Cors`]); routes served
    /// beside it apply the same settings through [`SocketIo::cors`].
    pub fn cors(mut self, cors: Cors) -> Self {
        self.engine = self.engine.cors(cors);
        self
    }
    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Sets the decoder limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Enables connection state recovery.
    pub fn recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }
    /// Bounds what a client may send for a namespace while its CONNECT is
    /// in progress (see [`ConnectBufferLimit`]).
    pub fn connect_buffer(mut self, limit: ConnectBufferLimit) -> Self {
        self.connect_buffer = limit;
        self
    }
    /// Finishes the configuration.
    pub fn build(self) -> SocketIoConfig {
        SocketIoConfig {
            engine: self.engine.build(),
            connect_timeout: self.connect_timeout,
            limits: self.limits,
            recovery: self.recovery,
            connect_buffer: self.connect_buffer,
        }
    }
}

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct ServerInner {
    connect_timeout: Duration,
    limits: Limits,
    recovery: Option<RecoveryConfig>,
    connect_buffer: ConnectBufferLimit,
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    dynamic: RwLock<Vec<(Matcher, NamespaceSetup)>>,
}

impl ServerInner {
    fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        if let Some(ns) = self.namespaces.read().get(name) {
            return Some(ns.clone());
        }
        let setup = self
            .dynamic
            .read()
            .iter()
            .find(|(m, _)| m(name))
            .map(|(_, s)| s.clone())?;
        let mut map = self.namespaces.write();
        let ns = map.entry(name.to_string()).or_insert_with(|| {
            Arc::new(Namespace::new(
                name,
                setup,
                self.recovery.map(RecoveryStore::new),
            ))
        });
        Some(ns.clone())
    }
}

/// A Socket.IO v5 server on its own Engine.IO server.
///
/// ```no_run
/// use rollcall::socketio::{Payload, SocketIo, SocketIoConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let io = SocketIo::new(SocketIoConfig::builder().build());
/// io.ns("/", |socket| {
///     socket.on("ping", |socket, payload, ack| {
///         if let Some(ack) = ack {
///             let _ = ack.send(payload);
///         } else {
///             let _ = socket.emit("pong", &payload);
///         }
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// io.serve(listener).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<ServerInner>,
    engine: Engine<SioHandler>,
}

impl SocketIo {
    /// A server with `config` and no namespaces yet.
    pub fn new(config: SocketIoConfig) -> SocketIo {
        let inner = Arc::new(ServerInner {
            connect_timeout: config.connect_timeout,
            limits: config.limits,
            recovery: config.recovery,
            connect_buffer: config.connect_buffer,
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
        });
        let engine = Engine::new(
            config.engine,
            SioHandler {
                server: inner.clone(),
            },
        );
        SocketIo { inner, engine }
    }

    /// Registers namespace `name` with a connection handler and no middleware.
    pub fn ns<F>(&self, name: &str, on_connection: F) -> Arc<Namespace>
    where
        F: Fn(Arc<Socket>) + Send + Sync + 'static,
    {
        self.ns_with(name, NamespaceSetup::new(on_connection))
    }

    /// Registers namespace `name` with middlewares and a connection handler.
    pub fn ns_with(&self, name: &str, setup: NamespaceSetup) -> Arc<Namespace> {
        let ns = Arc::new(Namespace::new(
            name,
            setup,
            self.inner.recovery.map(RecoveryStore::new),
        ));
        self.inner
            .namespaces
            .write()
            .insert(name.to_string(), ns.clone());
        ns
    }

    /// Registers dynamic namespaces: any name `matches` accepts is created on
    /// first use with `setup`.
    pub fn dynamic_ns<M>(&self, matches: M, setup: NamespaceSetup)
    where
        M: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.inner.dynamic.write().push((Arc::new(matches), setup));
    }

    /// The namespace `name`, if registered (or already created dynamically).
    pub fn of(&self, name: &str) -> Option<Arc<Namespace>> {
        self.inner.namespaces.read().get(name).cloned()
    }

    /// Number of connected clients (Engine.IO sessions).
    pub fn client_count(&self) -> usize {
        self.engine.session_count()
    }

    /// The underlying Engine.IO server.
    pub fn engine(&self) -> &Engine<SioHandler> {
        &self.engine
    }

    /// The CORS settings, if enabled.
    pub fn cors(&self) -> Option<&Cors> {
        self.engine.config().cors.as_ref()
    }

    /// Whether `path` belongs to this server.
    pub fn matches_path(&self, path: &str) -> bool {
        self.engine.matches_path(path)
    }

    /// Answers one HTTP request addressed to the server (for mounting beside other routes).
    pub async fn handle<B>(&self, req: http::Request<B>, remote: SocketAddr) -> http::Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.engine.handle(req, remote).await
    }

    /// Runs the server alone on `listener`.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        self.engine.clone().serve(listener).await
    }
}

enum NsSlot {
    /// CONNECT is being processed; packets for the namespace wait here.
    Connecting(Pending),
    Connected(Arc<Socket>),
}

/// Packets waiting for a CONNECT to complete, and their size in bytes.
#[derive(Default)]
struct Pending {
    packets: Vec<Packet>,
    bytes: usize,
}

#[derive(Default)]
struct ConnInner {
    slots: HashMap<String, NsSlot>,
    /// A binary packet waiting for its attachments, with the size so far.
    partial: Option<(Packet, usize)>,
    /// Set once the Engine.IO session has ended, with the reason sockets get.
    closed: Option<DisconnectReason>,
}

/// Socket.IO state of one Engine.IO connection.
pub struct ConnState {
    inner: Mutex<ConnInner>,
    /// Told when the first namespace is joined or the connection closes.
    joined: Notify,
}

impl ConnState {
    pub(crate) fn remove_ns(&self, ns: &str) {
        self.inner.lock().slots.remove(ns);
    }
}

/// The Engine.IO handler of the Socket.IO layer.
pub struct SioHandler {
    server: Arc<ServerInner>,
}

impl EngineHandler for SioHandler {
    type State = Arc<ConnState>;

    fn on_open(&self, conn: &Arc<Connection>) -> Arc<ConnState> {
        let state = Arc::new(ConnState {
            inner: Mutex::new(ConnInner::default()),
            joined: Notify::new(),
        });
        let timeout = self.server.connect_timeout;
        let st = Arc::downgrade(&state);
        let c = Arc::downgrade(conn);
        tokio::spawn(async move {
            let joined = match st.upgrade() {
                Some(s) => s,
                None => return,
            };
            let waited = tokio::time::timeout(timeout, joined.joined.notified()).await;
            drop(joined);
            if waited.is_err() {
                let empty = st
                    .upgrade()
                    .is_some_and(|s| s.inner.lock().slots.is_empty());
                if let (true, Some(conn)) = (empty, c.upgrade()) {
                    conn.close_with(CloseReason::Upper("connect timeout"));
                }
            }
        });
        state
    }

    fn on_message(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, msg: Message) {
        let packet = {
            let mut g = state.inner.lock();
            let r = match msg {
                Message::Text(t) => {
                    if g.partial.is_some() {
                        Err(ParseError::ExpectedAttachment)
                    } else {
                        Packet::decode(t.as_str(), &self.server.limits).map(|p| {
                            if p.attachment_count > 0 {
                                g.partial = Some((p, t.len()));
                                None
                            } else {
                                Some((p, t.len()))
                            }
                        })
                    }
                }
                Message::Binary(b) => match g.partial.as_mut() {
                    None => Err(ParseError::UnexpectedAttachment),
                    Some((p, size)) => {
                        *size += b.len();
                        p.attachments.push(b);
                        if p.attachments.len() == p.attachment_count {
                            Ok(g.partial.take())
                        } else {
                            Ok(None)
                        }
                    }
                },
            };
            match r {
                Ok(p) => p,
                Err(e) => {
                    drop(g);
                    tracing::debug!(sid = conn.id(), error = %e, "closing on a bad packet");
                    conn.close_with(CloseReason::ParseError);
                    return;
                }
            }
        };
        if let Some((p, size)) = packet {
            self.dispatch(conn, state, p, size);
        }
    }

    fn on_close(&self, _conn: &Arc<Connection>, state: &Arc<ConnState>, reason: CloseReason) {
        let reason = DisconnectReason::from_close(&reason);
        let slots = {
            let mut g = state.inner.lock();
            g.closed = Some(reason);
            std::mem::take(&mut g.slots)
        };
        state.joined.notify_one();
        for slot in slots.into_values() {
            if let NsSlot::Connected(s) = slot {
                s.closed(reason);
            }
        }
    }
}

impl SioHandler {
    /// Routes a complete packet; `size` is its size on the wire (message
    /// and attachments), which counts against the connect buffer.
    fn dispatch(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, p: Packet, size: usize) {
        if p.kind == PacketKind::Connect {
            return self.connect(conn, state, p);
        }
        let socket = {
            let mut g = state.inner.lock();
            match g.slots.get_mut(&p.ns) {
                Some(NsSlot::Connecting(pending)) => {
                    let limit = self.server.connect_buffer;
                    if pending.packets.len() >= limit.packets
                        || pending.bytes.saturating_add(size) > limit.bytes
                    {
                        drop(g);
                        tracing::debug!(
                            sid = conn.id(),
                            ns = %p.ns,
                            "closing: too much sent while the namespace was connecting"
                        );
                        conn.close_with(CloseReason::Upper("connect buffer overflow"));
                        return;
                    }
                    pending.bytes += size;
                    pending.packets.push(p);
                    return;
                }
                Some(NsSlot::Connected(s)) => s.clone(),
                None => {
                    drop(g);
                    conn.close_with(CloseReason::ParseError);
                    return;
                }
            }
        };
        socket.on_packet(p);
    }

    fn connect(&self, conn: &Arc<Connection>, state: &Arc<ConnState>, p: Packet) {
        let Some(ns) = self.server.namespace(&p.ns) else {
            let err = ConnectError::new("Invalid namespace").to_json();
            let _ = conn.send(encode_control(PacketKind::ConnectError, &p.ns, Some(&err)));
            return;
        };
        {
            let mut g = state.inner.lock();
            if g.slots.contains_key(&p.ns) {
                drop(g);
                conn.close_with(CloseReason::ParseError);
                return;
            }
            g.slots
                .insert(p.ns.clone(), NsSlot::Connecting(Pending::default()));
        }
        let mut auth = match p.data {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let mut restored = None;
        let mut pid = None;
        if let Some(rec) = ns.recovery() {
            let old_pid = auth.remove("pid");
            let offset = auth.remove("offset");
            if let (Some(Value::String(old_pid)), Some(Value::String(offset))) = (old_pid, offset) {
                restored = rec.restore(&old_pid, &offset);
                if restored.is_some() {
                    pid = Some(Arc::<str>::from(old_pid.as_str()));
                }
            }
            if pid.is_none() {
                pid = Some(crate::util::random_id(16).into());
            }
        }
        let recovered = restored.is_some();
        let (id, data, missed, rooms) = match restored {
            Some((saved, missed)) => (saved.sid, saved.data, missed, saved.rooms),
            None => (
                crate::util::random_id(15).into(),
                Arc::new(Extensions::default()),
                Vec::new(),
                Vec::new(),
            ),
        };
        let socket = Arc::new(Socket::new(SocketInit {
            id,
            ns: ns.clone(),
            conn: conn.clone(),
            conn_state: Arc::downgrade(state),
            auth: Value::Object(auth),
            data,
            pid,
            recovered,
        }));
        let skip = recovered && ns.recovery().is_some_and(|r| r.config().skip_middlewares);
        if ns.setup.middlewares.is_empty() || skip {
            finish_connect(state, socket, rooms, missed);
            return;
        }
        let state = Arc::downgrade(state);
        tokio::spawn(async move {
            for mw in socket.ns.setup.middlewares.clone() {
                if let Err(e) = mw(socket.clone()).await {
                    if let Some(st) = state.upgrade() {
                        st.remove_ns(socket.ns.name());
                    }
                    let _ = socket.conn.send(encode_control(
                        PacketKind::ConnectError,
                        socket.ns.name(),
                        Some(&e.to_json()),
                    ));
                    return;
                }
            }
            if let Some(st) = state.upgrade() {
                finish_connect(&st, socket, rooms, missed);
            }
        });
    }
}

/// Completes a CONNECT: answer, rooms, connection handler, missed packets,
/// then the packets that arrived for the namespace in the meantime. If the
/// connection ends before the socket is registered as connected (e.g. while
/// the connection handler runs), the socket is disconnected here with the
/// connection's real reason.
fn finish_connect(
    state: &Arc<ConnState>,
    socket: Arc<Socket>,
    rooms: Vec<super::rooms::Room>,
    missed: Vec<crate::engine::Frame>,
) {
    let ns = socket.ns.clone();
    if state.inner.lock().closed.is_some() || socket.conn.is_closed() {
        return;
    }
    let mut answer = serde_json::Map::new();
    answer.insert("sid".into(), Value::String(socket.id().to_string()));
    if let Some(pid) = &socket.pid {
        answer.insert("pid".into(), Value::String(pid.to_string()));
    }
    let _ = socket.conn.send(encode_control(
        PacketKind::Connect,
        ns.name(),
        Some(&Value::Object(answer)),
    ));
    socket.set_connected();
    ns.add_socket(socket.clone());
    socket.join(socket.id());
    for r in &rooms {
        socket.join(r);
    }
    if !missed.is_empty() {
        let _ = socket.conn.send_many(&missed);
    }
    state.joined.notify_one();
    (ns.setup.on_connection)(socket.clone());
    loop {
        let queued = {
            let mut g = state.inner.lock();
            // `on_close` took the slots (and reported only connected
            // sockets): this one is ours to disconnect.
            if let Some(reason) = g.closed {
                drop(g);
                socket.closed(reason);
                return;
            }
            match g.slots.get_mut(ns.name()) {
                Some(NsSlot::Connecting(q)) if !q.packets.is_empty() => std::mem::take(q).packets,
                Some(slot @ NsSlot::Connecting(_)) => {
                    // From here on `on_close` reports this socket.
                    *slot = NsSlot::Connected(socket.clone());
                    return;
                }
                // The socket left the namespace meanwhile (it has been told).
                _ => return,
            }
        };
        for p in queued {
            socket.on_packet(p);
        }
    }
}
