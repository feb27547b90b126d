//! Namespaces: a set of sockets, its rooms, its middlewares and its
//! connection handler.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::broadcast::BroadcastOperator;
use super::packet::Payload;
use super::recovery::RecoveryStore;
use super::rooms::{Room, RoomRegistry};
use super::socket::{AckSender, EventHandler, Socket};
use crate::util::ShardedMap;

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

/// A boxed future returned by a middleware.
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

/// A namespace with its sockets and rooms.
pub struct Namespace {
    name: String,
    sockets: ShardedMap<Arc<str>, Arc<Socket>>,
    rooms: RoomRegistry<Arc<Socket>>,
    pub(crate) setup: NamespaceSetup,
    ack_ids: AtomicU64,
    recovery: Option<RecoveryStore>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish()
    }
}

impl Namespace {
    pub(crate) fn new(name: &str, setup: NamespaceSetup, recovery: Option<RecoveryStore>) -> Self {
        Namespace {
            name: name.to_string(),
            sockets: ShardedMap::new(64),
            rooms: RoomRegistry::new(64),
            setup,
            ack_ids: AtomicU64::new(0),
            recovery,
        }
    }

    /// The namespace name (`/` for the main namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room registry.
    pub fn rooms(&self) -> &RoomRegistry<Arc<Socket>> {
        &self.rooms
    }

    pub(crate) fn recovery(&self) -> Option<&RecoveryStore> {
        self.recovery.as_ref()
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn add_socket(&self, socket: Arc<Socket>) {
        self.sockets.insert(socket.id_arc().clone(), socket);
    }

    pub(crate) fn remove_socket(&self, id: &str) {
        self.sockets.remove(id);
    }

    /// The socket with this id, if connected here.
    pub fn socket(&self, id: &str) -> Option<Arc<Socket>> {
        self.sockets.get(id)
    }

    /// Every connected socket (not a snapshot across shards).
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets.values()
    }

    /// Number of connected sockets.
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
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
