//! Engine.IO v4: the transport layer under Socket.IO.
//!
//! It knows nothing of Socket.IO. It opens sessions over HTTP long-polling or
//! WebSocket, upgrades polling sessions to WebSocket, keeps them alive with
//! pings, enforces `maxPayload` and per-connection queue limits, and hands
//! each message to an [`EngineHandler`].
//!
//! Outgoing packets are [`Frame`]s: encoded once, with their WebSocket header,
//! and shared by reference count between every connection they are sent to.
//!
//! # Structure
//!
//! One owner per piece of state, and dependencies that point one way:
//!
//! - `session`: the [`Connection`], sole owner of a session's state (queue,
//!   close, heartbeat deadline, polling flags, upgrade steps, the WebSocket
//!   stream shared for direct writes (`direct`)). Its fields are private; every
//!   change is a method, and its lock rules are written there.
//! - `dispatch`: the [`EngineHandler`] trait, the session table, and the
//!   dispatch of a client packet to the handler.
//! - `server`: the [`Engine`] handle and request routing (checks,
//!   handshake, dispatch to a transport).
//! - `polling`: long-polling GET and POST, answered inside the request.
//! - `transport`: the WebSocket transport task, which reaches the engine only
//!   through a narrow `SessionLink` (its connection, and one call to hand
//!   over a packet).
//! - `heartbeat`: the per-session driver (pings, pong deadline, the one
//!   report of the session's end).
//! - [`frame`]: the RFC 6455 frame codec (client frames in, control frames
//!   out); [`packet`]: Engine.IO packets and polling payloads; [`deflate`]:
//!   permessage-deflate (negotiation, each shared frame compressed once,
//!   the bounded inflater).
//! - `config`, `cors`, `error`, `handshake`: settings, CORS, typed
//!   errors, and the opening request's details (bounded);
//!   `abuse`: the abuse limits and the admission of new sessions.
//! - [`stats`]: the engine's counters (sharded relaxed atomics, read by a
//!   metrics collector above; the engine itself knows nothing of Prometheus).
//!
//! `server` uses `polling`, `transport`, `heartbeat` and `dispatch`;
//! `dispatch` implements `transport`'s interface; all of them use `session`,
//! which uses none of them.
//!
//! # Lock rules
//!
//! - A session's state is behind one short-held mutex in its [`Connection`],
//!   never held across an `.await` nor while the handler runs; the only lock
//!   taken under it is the engine's direct-write budget.
//! - The session table's shard locks are held only inside one table call,
//!   never together with a session lock.
//! - The handler is called with no engine lock held.

// The codecs are public (tests, fuzz targets and benches drive them
// directly); the session machinery is private behind the re-exports below.
mod abuse;
mod config;
mod cors;
pub mod deflate;
mod direct;
mod dispatch;
mod error;
pub mod frame;
mod handshake;
mod heartbeat;
pub mod packet;
mod polling;
mod server;
mod session;
pub mod stats;
mod transport;

pub use config::{
    same_origin, AbuseLimits, AllowedOrigins, Cors, EngineConfig, EngineConfigBuilder,
    OverflowPolicy, WsOrigins,
};
pub use deflate::Deflate;
pub use direct::DirectWrites;
pub use error::{
    refusal_log_suppressed, CloseReason, DecodeError, HttpError, SendError, TransportFault,
};
pub use packet::{Frame, FrameBuilder, Message, Packet, PacketType};
pub use server::{query_param, Engine, EngineHandler};
pub use session::{Connection, HandshakeInfo, TransportKind};
pub use stats::EngineStats;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;
