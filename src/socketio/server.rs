//! The Socket.IO server: configuration and namespaces. The Engine.IO
//! handler that decodes packets and routes them to sockets is in the
//! private `handler` module ([`SioHandler`](super::SioHandler)).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;

use super::adapter::{AdapterFactory, AdapterInit};
use super::guard::EventLimits;
use super::namespace::{Namespace, NamespaceSetup};
use super::observer::{Fanout, Observer, ObserverRef};
use super::packet::{Limits, Parser};
use super::recovery::{RecoveryConfig, RecoveryError, RecoveryLog};
use super::socket::Socket;
use super::stats::{NamespaceConnections, SocketIoStats};
use crate::engine::{Cors, Engine, EngineConfig, EngineConfigBuilder};
use crate::http::Body;

use super::handler::SioHandler;

/// Socket.IO server settings; build with [`SocketIoConfig::builder`].
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// The Engine.IO settings (path defaults to `/socket.io/`).
    pub engine: EngineConfig,
    /// How long a connection may stay without joining any namespace (default 45 s).
    pub connect_timeout: Duration,
    /// Decoder limits.
    pub limits: Limits,
    /// The abuse limits checked before parsing (SPEC.md §3.14).
    pub event_limits: EventLimits,
    /// The packet format (default [`Parser::Json`]).
    pub parser: Parser,
    /// Connection state recovery (default off).
    pub recovery: Option<RecoveryConfig>,
    /// The durable log recovery writes through to (default none: recovery
    /// state lives in memory and dies with the process).
    pub recovery_log: Option<RecoveryLog>,
    /// How much a client may send for a namespace while its CONNECT is
    /// still being processed (async middlewares running).
    pub connect_buffer: ConnectBufferLimit,
    /// Builds each namespace's adapter (default: [`AdapterFactory::local`]).
    pub adapter: AdapterFactory,
    /// Told of connections, sockets, rooms and events (default none).
    pub observer: ObserverRef,
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
            event_limits: EventLimits::default(),
            parser: Parser::Json,
            recovery: None,
            recovery_log: None,
            connect_buffer: ConnectBufferLimit::default(),
            adapter: AdapterFactory::local(),
            observer: None,
        }
    }
}

/// Builder for [`SocketIoConfig`]. Defaults: path `/socket.io/`, connect
/// timeout 45 s, default [`Limits`], the JSON [`Parser`], no recovery, the default
/// [`ConnectBufferLimit`], and a [`LocalAdapter`](super::adapter::LocalAdapter)
/// per namespace.
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
    event_limits: EventLimits,
    parser: Parser,
    recovery: Option<RecoveryConfig>,
    recovery_log: Option<RecoveryLog>,
    connect_buffer: ConnectBufferLimit,
    adapter: AdapterFactory,
    observer: ObserverRef,
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
    /// Sets the abuse limits checked before parsing ([`EventLimits`]).
    pub fn event_limits(mut self, limits: EventLimits) -> Self {
        self.event_limits = limits;
        self
    }
    /// Sets the packet format every client of this server must use
    /// (default [`Parser::Json`]; [`Parser::Msgpack`] for clients with
    /// `socket.io-msgpack-parser`). The decoder limits apply to either.
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }
    /// Enables connection state recovery.
    pub fn recovery(mut self, config: RecoveryConfig) -> Self {
        self.recovery = Some(config);
        self
    }
    /// Keeps the recovery state (packets, sessions, offsets) in a durable
    /// [`RecoveryLog`] so that it survives a restart; takes effect with
    /// [`SocketIoConfigBuilder::recovery`]. Give a log to one server only
    /// (its namespaces are keyed by name). Call [`SocketIo::shutdown`] on
    /// the way out so that every connected socket can recover.
    ///
    /// ```no_run
    /// use rollcall::socketio::{RecoveryConfig, RecoveryLog, RecoveryLogOptions, SocketIoConfig};
    /// let log = RecoveryLog::open("data/recovery".as_ref(), RecoveryLogOptions::default())?;
    /// let config = SocketIoConfig::builder()
    ///     .recovery(RecoveryConfig::default())
    ///     .recovery_log(log)
    ///     .build();
    /// # Ok::<(), rollcall::socketio::RecoveryError>(())
    /// ```
    pub fn recovery_log(mut self, log: RecoveryLog) -> Self {
        self.recovery_log = Some(log);
        self
    }
    /// Bounds what a client may send for a namespace while its CONNECT is
    /// in progress (see [`ConnectBufferLimit`]).
    pub fn connect_buffer(mut self, limit: ConnectBufferLimit) -> Self {
        self.connect_buffer = limit;
        self
    }
    /// Sets how each namespace's adapter is built (default: one
    /// [`LocalAdapter`](super::adapter::LocalAdapter) per namespace, this
    /// node only).
    pub fn adapter(mut self, factory: AdapterFactory) -> Self {
        self.adapter = factory;
        self
    }
    /// Adds an [`Observer`] told of connections, sockets, rooms and
    /// events (default none, which costs one branch per hook). Observers
    /// added one after another are all told, in that order.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(match self.observer.take() {
            Some(first) => Fanout::of(first, observer),
            None => observer,
        });
        self
    }
    /// Finishes the configuration.
    pub fn build(self) -> SocketIoConfig {
        SocketIoConfig {
            engine: self.engine.build(),
            connect_timeout: self.connect_timeout,
            limits: self.limits,
            event_limits: self.event_limits,
            parser: self.parser,
            recovery: self.recovery,
            recovery_log: self.recovery_log,
            connect_buffer: self.connect_buffer,
            adapter: self.adapter,
            observer: self.observer,
        }
    }
}

type Matcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The server's settings and namespaces, shared with its Engine.IO handler.
/// Locks: `namespaces` and `dynamic` are read-mostly; `dynamic` is released
/// before `namespaces` is written.
pub(crate) struct ServerInner {
    connect_timeout: Duration,
    limits: Limits,
    event_limits: EventLimits,
    parser: Parser,
    recovery: Option<RecoveryConfig>,
    recovery_log: Option<RecoveryLog>,
    connect_buffer: ConnectBufferLimit,
    adapter: AdapterFactory,
    observer: ObserverRef,
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    dynamic: RwLock<Vec<(Matcher, NamespaceSetup)>>,
    /// Set by [`SocketIo::shutdown`]: CONNECTs are refused from then on.
    shutting_down: AtomicBool,
    /// The layer's counters, shared with every namespace.
    stats: Arc<SocketIoStats>,
}

impl ServerInner {
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn event_limits(&self) -> &EventLimits {
        &self.event_limits
    }

    pub(crate) fn parser(&self) -> Parser {
        self.parser
    }

    pub(crate) fn connect_buffer(&self) -> ConnectBufferLimit {
        self.connect_buffer
    }

    pub(crate) fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.as_ref()
    }

    pub(crate) fn stats(&self) -> &SocketIoStats {
        &self.stats
    }

    /// A namespace `name` with its own adapter.
    fn new_namespace(&self, name: &str, setup: NamespaceSetup) -> Arc<Namespace> {
        let init = AdapterInit {
            namespace: name,
            recovery: self.recovery,
            recovery_log: self.recovery.and(self.recovery_log.as_ref()),
            parser: self.parser,
        };
        Arc::new(Namespace::new(
            name,
            setup,
            self.adapter.build(&init),
            self.recovery,
            self.parser,
            self.observer.clone(),
            self.stats.clone(),
        ))
    }

    /// The namespace `name`, created now if a dynamic matcher accepts it.
    pub(crate) fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        if let Some(ns) = self.namespaces.read().get(name) {
            return Some(ns.clone());
        }
        let setup = self
            .dynamic
            .read()
            .iter()
            .find(|(m, _)| m(name))
            .map(|(_, s)| s.clone())?;
        // Built outside the lock: the adapter factory is the user's code
        // (a cluster adapter may subscribe somewhere); a namespace built by
        // a concurrent CONNECT that won the race is kept instead.
        let built = self.new_namespace(name, setup);
        let mut map = self.namespaces.write();
        Some(map.entry(name.to_string()).or_insert(built).clone())
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
            event_limits: config.event_limits,
            parser: config.parser,
            recovery: config.recovery,
            recovery_log: config.recovery_log,
            connect_buffer: config.connect_buffer,
            adapter: config.adapter,
            observer: config.observer,
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            stats: Arc::default(),
        });
        let engine = Engine::new(config.engine, SioHandler::new(inner.clone()));
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
        let ns = self.inner.new_namespace(name, setup);
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

    /// Every namespace registered or created so far.
    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.inner.namespaces.read().values().cloned().collect()
    }

    /// The Socket.IO counters (for a metrics collector or an admin view).
    pub fn stats(&self) -> &SocketIoStats {
        &self.inner.stats
    }

    /// Every namespace with its sockets on this node, by transport (reads
    /// each socket's connection; not a snapshot).
    pub fn connections_by_namespace(&self) -> Vec<NamespaceConnections> {
        let namespaces: Vec<Arc<Namespace>> =
            self.inner.namespaces.read().values().cloned().collect();
        let mut out: Vec<NamespaceConnections> = namespaces
            .iter()
            .map(|ns| {
                let mut c = NamespaceConnections {
                    namespace: ns.name().to_string(),
                    polling: 0,
                    websocket: 0,
                };
                for s in ns.sockets() {
                    match s.conn().transport() {
                        crate::engine::TransportKind::Polling => c.polling += 1,
                        crate::engine::TransportKind::WebSocket => c.websocket += 1,
                    }
                }
                c
            })
            .collect();
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        out
    }

    /// Whether every namespace's adapter reaches what it needs
    /// ([`Adapter::reachable`](super::Adapter::reachable)):
    /// the first failure, if any.
    pub async fn adapters_ready(&self) -> Result<(), super::AdapterError> {
        let namespaces: Vec<Arc<Namespace>> =
            self.inner.namespaces.read().values().cloned().collect();
        for ns in namespaces {
            ns.adapter().reachable().await?;
        }
        Ok(())
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

    /// Graceful shutdown of connection state recovery: refuses new
    /// CONNECTs (their connections are closed), keeps the session of
    /// every connected socket (rooms and data as they are now), closes every
    /// connection (clients see a transport close and will try to recover),
    /// then flushes the durable recovery log and marks it clean. Packets
    /// broadcast after this are neither delivered nor kept. Blocks for one
    /// log flush; without recovery it only closes the connections.
    pub fn shutdown(&self) -> Result<(), RecoveryError> {
        self.inner.shutting_down.store(true, Ordering::Release);
        let namespaces: Vec<Arc<Namespace>> =
            self.inner.namespaces.read().values().cloned().collect();
        let sockets: Vec<Arc<Socket>> = namespaces.iter().flat_map(|ns| ns.sockets()).collect();
        for s in &sockets {
            if let Some(session) = s.session(s.rooms()) {
                s.ns().adapter().persist_session(session);
            }
        }
        for s in &sockets {
            s.conn().close();
        }
        match &self.inner.recovery_log {
            Some(log) => log.close(),
            None => Ok(()),
        }
    }

    /// Runs the server alone on `listener` (under the engine's connection
    /// limits, [`crate::engine::AbuseLimits::connections`]).
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        self.engine.clone().serve(listener).await
    }
}
