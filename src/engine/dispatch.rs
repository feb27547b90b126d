//! What the router, the long-polling transport and the heartbeat driver
//! share: the upper layer's [`EngineHandler`], the engine's session table,
//! and the dispatch of one client packet to its session.
//!
//! The WebSocket transport does not see any of this: it reaches the engine
//! only through [`super::transport::SessionLink`], which [`Link`] implements
//! here (statically dispatched: no indirection per packet).
//!
//! # Lock rules
//!
//! The session table is a [`ShardedMap`]: each shard's lock is held only
//! inside one `get`/`insert`/`remove` call, never while a session's lock is
//! held or a handler callback runs. Handler callbacks are called with no
//! engine lock held (they send on connections, which takes their locks).

use std::sync::Arc;

use super::abuse::Admission;
use super::config::EngineConfig;
use super::direct::WriteBudget;
use super::error::CloseReason;
use super::packet::{Message, Packet};
use super::session::Connection;
use super::stats::EngineStats;
use super::transport::SessionLink;
use crate::util::ShardedMap;

/// What the layer above Engine.IO implements: it is told of each new session,
/// of each message (in order, one at a time per session) and of the end of
/// each session (exactly once, with the reason).
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state the handler keeps.
    type State: Send + Sync + 'static;
    /// A session opened; the returned state is passed to the other callbacks.
    fn on_open(&self, conn: &Arc<Connection>) -> Self::State;
    /// A message arrived.
    fn on_message(&self, conn: &Arc<Connection>, state: &Self::State, msg: Message);
    /// The session ended.
    fn on_close(&self, conn: &Arc<Connection>, state: &Self::State, reason: CloseReason);
    /// The session moved from long-polling to WebSocket (the upgrade
    /// completed). Default: nothing.
    fn on_upgrade(&self, _conn: &Arc<Connection>, _state: &Self::State) {}
}

/// A session as the engine keeps it: the connection and the handler's state
/// for it (both fixed for the session's life; the connection owns all that
/// changes).
pub(crate) struct Session<H: EngineHandler> {
    pub conn: Arc<Connection>,
    pub state: H::State,
    /// This session's place under the global session cap.
    pub _permit: crate::http::Permit,
}

/// The state every clone of an [`super::Engine`] shares.
pub(crate) struct EngineInner<H: EngineHandler> {
    config: Arc<EngineConfig>,
    handler: H,
    sessions: ShardedMap<Arc<str>, Arc<Session<H>>>,
    budget: Arc<WriteBudget>,
    admission: Admission,
    stats: Arc<EngineStats>,
}

impl<H: EngineHandler> EngineInner<H> {
    /// An engine with no sessions yet.
    pub fn new(config: EngineConfig, handler: H) -> Self {
        EngineInner {
            budget: Arc::new(WriteBudget::new(config.direct_writes)),
            admission: Admission::new(&config.abuse),
            config: Arc::new(config),
            handler,
            sessions: ShardedMap::new(64),
            stats: Arc::default(),
        }
    }

    /// The configuration (shared with every session).
    pub fn config(&self) -> &Arc<EngineConfig> {
        &self.config
    }

    /// The upper layer.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Who may open a new session (per-address rate, global cap).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The direct-write budget every session shares.
    pub fn budget(&self) -> &Arc<WriteBudget> {
        &self.budget
    }

    /// The counters every session counts into.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Every open session's connection (shard by shard; not a snapshot).
    pub fn connections(&self) -> Vec<Arc<Connection>> {
        self.sessions
            .values()
            .into_iter()
            .map(|s| s.conn.clone())
            .collect()
    }

    /// The open session `sid`.
    pub fn session(&self, sid: &str) -> Option<Arc<Session<H>>> {
        self.sessions.get(sid)
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Adds a session to the table.
    pub fn insert(&self, session: Arc<Session<H>>) {
        self.sessions.insert(session.conn.id_arc().clone(), session);
    }

    /// Removes a session from the table (once it has closed).
    pub fn remove(&self, sid: &Arc<str>) {
        self.sessions.remove(sid);
    }
}

/// Handles a packet from an active transport (polling, or an upgraded or
/// direct WebSocket). Returns false once the session is closed.
pub(crate) fn handle_packet<H: EngineHandler>(
    engine: &EngineInner<H>,
    session: &Arc<Session<H>>,
    packet: Packet,
) -> bool {
    let conn = &session.conn;
    match packet {
        Packet::Message(t) => deliver(engine, session, Message::Text(t)),
        Packet::Binary(b) => deliver(engine, session, Message::Binary(b)),
        Packet::Pong(_) => conn.on_pong(),
        Packet::Close => {
            conn.close_quietly(CloseReason::ClientClose);
            false
        }
        Packet::Ping(_) | Packet::Open => {
            conn.close_with(CloseReason::ParseError);
            false
        }
        Packet::Upgrade | Packet::Noop => !conn.is_closed(),
    }
}

fn deliver<H: EngineHandler>(
    engine: &EngineInner<H>,
    session: &Arc<Session<H>>,
    msg: Message,
) -> bool {
    if session.conn.is_closed() {
        return false;
    }
    engine
        .handler
        .on_message(&session.conn, &session.state, msg);
    true
}

/// A session bound to its engine: what a WebSocket transport task holds.
pub(crate) struct Link<H: EngineHandler> {
    engine: Arc<EngineInner<H>>,
    session: Arc<Session<H>>,
}

impl<H: EngineHandler> Link<H> {
    /// Binds `session` to `engine`.
    pub fn new(engine: Arc<EngineInner<H>>, session: Arc<Session<H>>) -> Self {
        Link { engine, session }
    }
}

impl<H: EngineHandler> SessionLink for Link<H> {
    fn conn(&self) -> &Connection {
        &self.session.conn
    }

    fn on_packet(&self, packet: Packet) -> bool {
        handle_packet(&self.engine, &self.session, packet)
    }

    fn on_upgraded(&self) {
        let s = &self.session;
        self.engine.handler().on_upgrade(&s.conn, &s.state);
    }
}
