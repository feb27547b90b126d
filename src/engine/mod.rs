//! Engine.IO v4: the transport layer under Socket.IO.
//!
//! It knows nothing of Socket.IO. It opens sessions over HTTP long-polling or
//! WebSocket, upgrades polling sessions to WebSocket, keeps them alive with
//! pings, enforces `maxPayload` and per-connection queue limits, and hands
//! each message to an [`EngineHandler`].
//!
//! Outgoing packets are [`Frame`]s: encoded once, with their WebSocket header,
//! and shared by reference count between every connection they are sent to.

pub mod config;
mod cors;
pub mod direct;
pub mod error;
pub mod packet;
pub mod server;
pub mod session;
pub(crate) mod websocket;
pub mod ws;

pub use config::{AllowedOrigins, Cors, EngineConfig, EngineConfigBuilder, OverflowPolicy};
pub use direct::DirectWrites;
pub use error::{CloseReason, DecodeError, HttpError, SendError, TransportFault};
pub use packet::{Frame, FrameBuilder, Message, Packet, PacketType};
pub use server::{Engine, EngineHandler};
pub use session::{Connection, HandshakeInfo, TransportKind};
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
