//! Namespaces: a name, middlewares, a connection handler, and the
//! [`Adapter`] that holds its sockets and rooms (see [`super::adapter`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::adapter::{AckAggregate, Adapter, EventPacket, ServerAck};
use super::broadcast::BroadcastOperator;
use super::observer::{Observer, ObserverRef};
use super::packet::{Parser, Payload};
use super::recovery::RecoveryConfig;
use super::rooms::{Room, RoomRegistry};
use super::socket::{AckSender, EventHandler, Socket};
use super::stats::SocketIoStats;

/// A refusal by a middleware, sent to the client as CONNECT_ERROR
/// `{"message": ..., "data": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The message.
    pub message: String,
    /// Optional details.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message only.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// A refusal with a message and details.
    pub fn with_data(message: impl Into<String>, data: Value) -> ConnectError {
        ConnectError {
            message: message.into(),
            data: Some(data),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Object(m)
    }
}

/// A boxed, sendable future (middlewares, the adapter's cross-node calls).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// An async check run before a socket is connected; it may refuse it.
pub type Middleware = Arc<dyn Fn(Arc<Socket>) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
/// Called for each new socket, after the CONNECT answer was sent.
pub type ConnectionHandler = Arc<dyn Fn(Arc<Socket>) + Send + Sync>;

/// How a namespace is set up: its middlewares and connection handler.
#[derive(Clone)]
pub struct NamespaceSetup {
    pub(crate) middlewares: Vec<Middleware>,
    pub(crate) on_connection: ConnectionHandler,
    /// Event handlers shared by every socket of the namespace.
    pub(crate) handlers: HashMap<String, EventHandler>,
}

impl NamespaceSetup {
    /// A namespace calling `on_connection` for every new socket.
    pub fn new<F>(on_connection: F) -> NamespaceSetup
    where
        F: Fn(Arc<Socket>) + Send + Sync + 'static,
    {
        NamespaceSetup {
            middlewares: Vec::new(),
            on_connection: Arc::new(on_connection),
            handlers: HashMap::new(),
        }
    }

    /// Registers a handler of `event` for every socket of the namespace.
    /// Shared handlers cost nothing per socket; a handler registered on a
    /// socket with [`Socket::on`] takes precedence.
    pub fn on<F>(mut self, event: &str, f: F) -> NamespaceSetup
    where
        F: Fn(&Arc<Socket>, Payload, Option<AckSender>) + Send + Sync + 'static,
    {
        self.handlers.insert(event.to_string(), Arc::new(f));
        self
    }

    /// Adds an async middleware (run in the order added).
    pub fn middleware<F, Fut>(mut self, f: F) -> NamespaceSetup
    where
        F: Fn(Arc<Socket>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.middlewares
            .push(Arc::new(move |s| Box::pin(f(s)) as BoxFuture<_>));
        self
    }
}

/// A namespace: its setup and its adapter.
pub struct Namespace {
    name: String,
    setup: NamespaceSetup,
    adapter: Arc<dyn Adapter>,
    recovery: Option<RecoveryConfig>,
    parser: Parser,
    observer: ObserverRef,
    stats: Arc<SocketIoStats>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish()
    }
}

impl Namespace {
    /// The middlewares, in the order they run.
    pub(crate) fn middlewares(&self) -> &[Middleware] {
        &self.setup.middlewares
    }

    /// Calls the connection handler for a socket that just connected.
    pub(crate) fn run_connection_handler(&self, socket: Arc<Socket>) {
        (self.setup.on_connection)(socket)
    }

    /// The namespace-wide handler of `event`, if any.
    pub(crate) fn shared_handler(&self, event: &str) -> Option<EventHandler> {
        self.setup.handlers.get(event).cloned()
    }

    pub(crate) fn new(
        name: &str,
        setup: NamespaceSetup,
        adapter: Arc<dyn Adapter>,
        recovery: Option<RecoveryConfig>,
        parser: Parser,
        observer: ObserverRef,
        stats: Arc<SocketIoStats>,
    ) -> Self {
        if let Some(o) = &observer {
            adapter.local().set_observer(o.clone());
        }
        Namespace {
            name: name.to_string(),
            setup,
            adapter,
            recovery,
            parser,
            observer,
            stats,
        }
    }

    /// The server's observer, if one is set.
    pub(crate) fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.as_ref()
    }

    /// The server's Socket.IO counters.
    pub(crate) fn stats(&self) -> &SocketIoStats {
        &self.stats
    }

    /// The namespace name (`/` for the main namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The adapter holding the namespace's sockets and rooms.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }

    /// This node's room registry.
    pub fn rooms(&self) -> &RoomRegistry<Arc<Socket>> {
        self.adapter.local().rooms()
    }

    /// The recovery settings, when connection state recovery is on.
    pub(crate) fn recovery(&self) -> Option<&RecoveryConfig> {
        self.recovery.as_ref()
    }

    /// The server's packet format, which this namespace's packets use.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.adapter.local().next_ack_id()
    }

    pub(crate) fn add_socket(&self, socket: Arc<Socket>) {
        self.adapter.local().insert_socket(socket);
    }

    pub(crate) fn remove_socket(&self, id: &str) {
        self.adapter.local().remove_socket(id);
    }

    /// The socket with this id, if connected to this node.
    pub fn socket(&self, id: &str) -> Option<Arc<Socket>> {
        self.adapter.local().socket(id)
    }

    /// Every socket connected to this node (not a snapshot across shards).
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.adapter.local().sockets()
    }

    /// Number of sockets connected to this node.
    pub fn socket_count(&self) -> usize {
        self.adapter.local().socket_count()
    }

    /// Registers the handler of a server-side event: one that another node
    /// sent with [`Namespace::server_side_emit`].
    pub fn on_server_event<F>(&self, event: &str, f: F)
    where
        F: Fn(Payload, Option<ServerAck>) + Send + Sync + 'static,
    {
        self.adapter.local().on_server_event(event, Arc::new(f));
    }

    /// Emits `event` to the server-side handlers of the other nodes (none
    /// with the local adapter); returns how many nodes it was sent to.
    pub fn server_side_emit(&self, event: &str, payload: &Payload) -> usize {
        self.adapter
            .server_side_emit(&EventPacket { event, payload })
    }

    /// [`Namespace::server_side_emit`] waiting up to `timeout` for one
    /// answer per other node.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        payload: &Payload,
        timeout: Duration,
    ) -> AckAggregate {
        let packet = EventPacket { event, payload };
        self.adapter
            .server_side_emit_with_ack(&packet, timeout)
            .await
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone(), Vec::new())
    }

    /// A broadcast to the sockets in `room`.
    pub fn to(self: &Arc<Self>, room: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.clone(), vec![room.into()])
    }

    /// A broadcast to the sockets in any of `rooms`.
    pub fn to_rooms(self: &Arc<Self>, rooms: Vec<Room>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone(), rooms)
    }
}
