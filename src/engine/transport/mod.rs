//! The WebSocket transport and the narrow interface it reaches the engine
//! through.
//!
//! A WebSocket task knows its session only as a [`SessionLink`]: the
//! session's [`Connection`] (whose methods own every state change: see
//! [`super::session`]) and one call that hands a decoded packet to the
//! engine. It does not see the engine's handler, session table or router, so
//! the transport depends on the session and not the other way round.
//! (Long-polling is not a task of its own: it is answered inside the HTTP
//! request, in [`super::polling`].)

pub(crate) mod websocket;

use super::packet::Packet;
use super::session::Connection;

/// What a WebSocket task may do with its session. Implemented by the engine
/// (generic, so each call is static: no indirection per packet).
pub(crate) trait SessionLink: Send + Sync + 'static {
    /// The session's connection.
    fn conn(&self) -> &Connection;
    /// Hands a packet from the active WebSocket to the engine; returns false
    /// once the session is closed.
    fn on_packet(&self, packet: Packet) -> bool;
    /// Tells the engine's handler that the upgrade to this WebSocket
    /// completed (once per session, after the switch).
    fn on_upgraded(&self);
}
