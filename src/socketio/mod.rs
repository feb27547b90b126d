//! Socket.IO v5 on top of [`crate::engine`]; it knows nothing of the
//! application.
//!
//! - [`packet`]: the codec (all seven packet types, binary placeholders, limits);
//! - [`server`]: the server, its configuration and the Engine.IO handler;
//! - [`namespace`], [`socket`]: namespaces with middlewares, sockets with
//!   event handlers and acks both ways;
//! - [`rooms`]: the lock-sharded room registry;
//! - [`broadcast`]: encode-once broadcasts with rooms, exclusions, volatile
//!   delivery and aggregated acks;
//! - [`recovery`]: connection state recovery.

pub mod broadcast;
pub mod namespace;
pub mod packet;
pub mod recovery;
pub mod rooms;
pub mod server;
pub mod socket;

pub use crate::engine::{AllowedOrigins, Cors};
pub use broadcast::BroadcastOperator;
pub use namespace::{ConnectError, Namespace, NamespaceSetup};
pub use packet::{Limits, Payload};
pub use recovery::RecoveryConfig;
pub use server::{ConnectBufferLimit, SocketIo, SocketIoConfig, SocketIoConfigBuilder};
pub use socket::{AckError, AckSender, DisconnectReason, Extensions, Socket};
