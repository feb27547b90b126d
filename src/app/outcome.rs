//! What a handled request makes visible, and the one place that makes it
//! visible.
//!
//! Handlers never touch sockets or rooms (one exception: starting a session
//! starts its check-in code rotation, whose first code goes only to the new
//! session's staff room, which nobody can have joined yet): they return an
//! [`Outcome`] (the
//! write to wait for, the effects in order, the ack's fields), built with its
//! chaining methods. The pipeline waits for the write to be durable and then
//! calls [`Outcome::apply`]; the idle expiry does the same without a
//! requesting socket. Keeping both on one function is what keeps "nothing is
//! shown before it is on disk" and the effect order in one place.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::AppError;
use crate::socketio::{Namespace, Payload, Socket};
use crate::store::Ticket;

/// Something a handled request makes visible once it is durable.
enum Effect {
    /// An event to the requesting socket.
    Emit(&'static str, Value),
    /// An event to every socket in a room.
    Room(String, &'static str, Value),
    /// An event to a room, the requesting socket excluded.
    RoomExceptSelf(String, &'static str, Value),
    /// An event to the sockets in any of some rooms, minus those in
    /// others (one encode: the views of SPEC.md §4.24).
    Rooms(Vec<String>, Vec<String>, &'static str, Value),
    /// The requesting socket joins a room.
    Join(String),
    /// The requesting socket leaves a room.
    Leave(String),
    /// Runs a function on the namespace (delivery that depends on who is
    /// connected at that moment, e.g. a direct message); dropped unrun when
    /// the request fails to commit.
    Call(Deferred),
}

/// A deferred effect: runs once, after the commit, with the namespace.
pub(crate) type Deferred = Box<dyn FnOnce(&Arc<Namespace>) + Send>;

/// The result of a request: the write to wait for, the effects in the order
/// they are to happen, and the fields of the `{"ok":true, ...}` ack.
#[derive(Default)]
#[must_use]
pub(crate) struct Outcome {
    ticket: Option<Ticket>,
    effects: Vec<Effect>,
    reply: Map<String, Value>,
}

impl Outcome {
    /// Nothing to wait for, no effects, an empty reply.
    pub(crate) fn new() -> Outcome {
        Outcome::default()
    }

    /// Waits for the write numbered `ticket` before anything is shown.
    pub(crate) fn ticket(mut self, ticket: Ticket) -> Outcome {
        self.ticket = Some(ticket);
        self
    }

    /// Sends `event` to the requesting socket.
    pub(crate) fn emit(mut self, event: &'static str, data: Value) -> Outcome {
        self.effects.push(Effect::Emit(event, data));
        self
    }

    /// Sends `event` to the requesting socket and puts the same object in
    /// the ack under `key` (the read events).
    pub(crate) fn emit_and_reply(
        self,
        event: &'static str,
        key: &'static str,
        data: Value,
    ) -> Outcome {
        self.emit(event, data.clone()).reply(key, data)
    }

    /// Sends `event` to every socket in `room`.
    pub(crate) fn broadcast(mut self, room: String, event: &'static str, data: Value) -> Outcome {
        self.effects.push(Effect::Room(room, event, data));
        self
    }

    /// Sends `event` to every socket in `room` but the requesting one.
    pub(crate) fn broadcast_others(
        mut self,
        room: String,
        event: &'static str,
        data: Value,
    ) -> Outcome {
        self.effects.push(Effect::RoomExceptSelf(room, event, data));
        self
    }

    /// Sends `event` once to every socket in any of `to`, except those in
    /// any of `except`.
    pub(crate) fn broadcast_to(
        mut self,
        to: Vec<String>,
        except: Vec<String>,
        event: &'static str,
        data: Value,
    ) -> Outcome {
        self.effects.push(Effect::Rooms(to, except, event, data));
        self
    }

    /// The requesting socket joins `room`.
    pub(crate) fn join(mut self, room: String) -> Outcome {
        self.effects.push(Effect::Join(room));
        self
    }

    /// The requesting socket leaves `room`.
    pub(crate) fn leave(mut self, room: String) -> Outcome {
        self.effects.push(Effect::Leave(room));
        self
    }

    /// Runs `f` with the namespace when the effects are applied, in order.
    pub(crate) fn then(mut self, f: impl FnOnce(&Arc<Namespace>) + Send + 'static) -> Outcome {
        self.effects.push(Effect::Call(Box::new(f)));
        self
    }

    /// Adds `key` to the ack.
    pub(crate) fn reply(mut self, key: &'static str, value: Value) -> Outcome {
        self.reply.insert(key.into(), value);
        self
    }

    /// Waits for `barrier` unless the request made a write of its own (a
    /// request that wrote nothing may still have read writes of others).
    pub(crate) fn or_barrier(&mut self, barrier: Ticket) {
        self.ticket.get_or_insert(barrier);
    }

    /// The write to wait for before [`Outcome::apply`], if any.
    pub(crate) fn waits_for(&self) -> Option<Ticket> {
        self.ticket
    }

    /// Makes the effects visible in order (the write must be durable by
    /// now) and returns the ack's fields. Without a requesting `socket`
    /// (server-initiated, e.g. idle expiry) only the room broadcasts happen.
    pub(crate) fn apply(
        self,
        ns: &Arc<Namespace>,
        socket: Option<&Arc<Socket>>,
    ) -> Map<String, Value> {
        for effect in self.effects {
            match (effect, socket) {
                (Effect::Room(room, ev, v), _) => {
                    ns.to(&room).emit(ev, &Payload::one(v));
                }
                (Effect::Call(f), _) => f(ns),
                (Effect::Rooms(to, except, ev, v), _) => {
                    let to = to.into_iter().map(Into::into).collect();
                    let op = except.iter().fold(ns.to_rooms(to), |op, r| op.except(r));
                    op.emit(ev, &Payload::one(v));
                }
                (Effect::Emit(ev, v), Some(s)) => {
                    let _ = s.emit(ev, &Payload::one(v));
                }
                (Effect::RoomExceptSelf(room, ev, v), Some(s)) => {
                    s.to(&room).emit(ev, &Payload::one(v));
                }
                (Effect::Join(room), Some(s)) => s.join(&room),
                (Effect::Leave(room), Some(s)) => s.leave(&room),
                (_, None) => {}
            }
        }
        self.reply
    }
}

/// The success ack: `{"ok":true}` followed by the outcome's fields.
pub(crate) fn ok_json(reply: Map<String, Value>) -> Value {
    let mut ack = Map::new();
    ack.insert("ok".into(), Value::Bool(true));
    ack.extend(reply);
    Value::Object(ack)
}

/// The failure ack: `{"ok":false,"error":{"code","message"}}`.
pub(crate) fn error_json(e: &AppError) -> Value {
    json!({"ok": false, "error": {"code": e.code.code(), "message": e.message}})
}

/// The error event's payload: `{"message","code"}`.
pub(crate) fn error_event_json(e: &AppError) -> Value {
    json!({"message": e.message, "code": e.code.code()})
}
