//! # rollcall
//!
//! A real-time attendance server on its own implementation of Engine.IO v4
//! and Socket.IO v5.
//!
//! The layers, bottom to top (data flows up, broadcasts flow back down):
//!
//! - [`http`]: the accept loop and HTTP plumbing;
//! - [`engine`]: Engine.IO sessions, long-polling and WebSocket transports;
//! - [`socketio`]: Socket.IO packets, namespaces, sockets, rooms, broadcasts;
//! - [`admin_ui`]: the `@socket.io/admin-ui` server protocol, an optional
//!   namespace on any [`socketio`] server (knows nothing of the application);
//! - [`app`]: the attendance application (events, auth, HTTP API);
//! - [`store`]: the sled store the application keeps its state in.
//!
//! Each layer knows only the one below it.

#![warn(missing_docs)]

pub mod admin_ui;
pub mod app;
pub mod engine;
pub mod http;
pub mod socketio;
pub mod store;
pub mod util;
