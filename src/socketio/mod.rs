//! Socket.IO v5 on top of [`crate::engine`]; it knows nothing of the
//! application.
//!
//! - [`packet`]: the codecs (JSON, the default, and msgpack, chosen per
//!   server with [`Parser`]; all seven packet types, binary values, limits);
//! - `server`: the server and its configuration (its Engine.IO handler is
//!   private);
//! - `namespace`, `socket`: namespaces with middlewares, sockets with
//!   event handlers and acks both ways;
//! - [`adapter`]: the seam between a namespace and where its sockets are;
//!   the default [`LocalAdapter`] holds this node's rooms, the encode-once
//!   broadcast loop and the recovery store;
//! - `rooms`: the lock-sharded room registry;
//! - `observer`: optional hooks ([`Observer`]) told of connections,
//!   sockets, rooms and events (the admin UI protocol uses them);
//! - `broadcast`: the builder of broadcasts (rooms, exclusions, volatile,
//!   local, acks), each a call to the adapter;
//! - `recovery`: connection state recovery storage, in memory or in a
//!   durable log that survives restarts;
//! - [`stats`]: the layer's counters, read by a metrics collector above.

// The codec and the adapter seam are public modules (tests, fuzz targets,
// benches and other adapters use them directly); the rest is reached
// through the re-exports below.
pub mod adapter;
mod broadcast;
mod guard;
mod handler;
mod namespace;
mod observer;
pub mod packet;
mod recovery;
mod rooms;
mod server;
mod socket;
pub mod stats;

pub use crate::engine::{AllowedOrigins, Cors};
pub use adapter::{
    AckAggregate, Adapter, AdapterError, AdapterFactory, AdapterInit, BroadcastFlags,
    BroadcastOptions, FetchedSocket, LocalAdapter,
};
pub use broadcast::BroadcastOperator;
pub use guard::{refusals, EventLimits};
pub use handler::SioHandler;
pub use namespace::{
    BoxFuture, ConnectError, ConnectionHandler, Middleware, Namespace, NamespaceSetup,
};
pub use observer::{Observer, ObserverRef};
pub use packet::{Limits, Parser, Payload};
pub use recovery::{RecoveryConfig, RecoveryError, RecoveryLog, RecoveryLogOptions};
pub use rooms::{Members, Room, RoomRegistry};
pub use server::{ConnectBufferLimit, SocketIo, SocketIoConfig, SocketIoConfigBuilder};
pub use socket::{
    AckError, AckSender, AnyHandler, DisconnectHandler, DisconnectReason, EventHandler, Extensions,
    Socket,
};
pub use stats::{NamespaceConnections, SocketIoStats};
