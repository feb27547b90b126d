//! The admin namespace's actions, each applied to a selection of a
//! namespace's sockets through its adapter (so to every node's sockets with
//! a cluster adapter), each logged:
//!
//! - `emit(nsp, filter, event, ...args)`: `event` with `args` to the
//!   sockets in room `filter` (a socket id is a room), or to all;
//! - `join(nsp, room, filter?)` / `leave(nsp, room, filter?)`: make them
//!   join or leave `room`;
//! - `_disconnect(nsp, close, filter?)`: disconnect them from `nsp`, or
//!   with `close` close their whole connections.
//!
//! A malformed action changes nothing; the admin client gets an
//! `admin_error` event `{action, code: "invalid_payload", message}` and, if
//! it asked for an ack, `{ok: false, error: {code, message}}` (a valid
//! action acks `{ok: true}`).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::socketio::{
    AckSender, BroadcastOperator, Namespace, NamespaceSetup, Payload, Socket, SocketIo,
};

/// A refused action: the message for the admin client.
type Refused = String;

/// Adds the action handlers to the admin namespace's setup.
pub(super) fn register(setup: NamespaceSetup, io: SocketIo) -> NamespaceSetup {
    let (i1, i2, i3, i4) = (io.clone(), io.clone(), io.clone(), io);
    setup
        .on("emit", move |s, p, ack| {
            run(s, "emit", ack, emit(&i1, s, p))
        })
        .on("join", move |s, p, ack| {
            run(s, "join", ack, rooms(&i2, s, "join", &p))
        })
        .on("leave", move |s, p, ack| {
            run(s, "leave", ack, rooms(&i3, s, "leave", &p))
        })
        .on("_disconnect", move |s, p, ack| {
            run(s, "_disconnect", ack, disconnect(&i4, s, &p))
        })
}

/// Answers an action: `admin_error` and a failed ack when refused.
fn run(socket: &Arc<Socket>, action: &str, ack: Option<AckSender>, result: Result<(), Refused>) {
    match result {
        Ok(()) => {
            if let Some(ack) = ack {
                let _ = ack.send(Payload::one(json!({"ok": true})));
            }
        }
        Err(message) => {
            tracing::warn!(admin = socket.id(), action, %message, "admin UI action refused");
            let err = json!({"action": action, "code": "invalid_payload", "message": message});
            let _ = socket.emit("admin_error", &Payload::one(err));
            if let Some(ack) = ack {
                let e =
                    json!({"ok": false, "error": {"code": "invalid_payload", "message": message}});
                let _ = ack.send(Payload::one(e));
            }
        }
    }
}

/// Argument `i` as a non-empty string.
fn string_arg<'a>(p: &'a Payload, i: usize, what: &str) -> Result<&'a str, Refused> {
    match p.args.get(i) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(format!("{what} must be a non-empty string")),
    }
}

/// The namespace named by argument 0.
fn namespace(io: &SocketIo, p: &Payload) -> Result<Arc<Namespace>, Refused> {
    let name = string_arg(p, 0, "nsp")?;
    io.of(name).ok_or_else(|| format!("no namespace {name}"))
}

/// The selection of argument `i`: room `filter`, or the whole namespace when
/// it is absent, null or empty.
fn selection(
    ns: &Arc<Namespace>,
    p: &Payload,
    i: usize,
) -> Result<(BroadcastOperator, String), Refused> {
    match p.args.get(i) {
        None | Some(Value::Null) => Ok((ns.broadcast(), String::new())),
        Some(Value::String(s)) if s.is_empty() => Ok((ns.broadcast(), String::new())),
        Some(Value::String(s)) => Ok((ns.to(s), s.clone())),
        Some(_) => Err("filter must be a room name (string) or absent".into()),
    }
}

fn emit(io: &SocketIo, admin: &Socket, mut p: Payload) -> Result<(), Refused> {
    let ns = namespace(io, &p)?;
    let (op, filter) = selection(&ns, &p, 1)?;
    let event = string_arg(&p, 2, "event")?.to_string();
    p.args.drain(..3);
    tracing::info!(admin = admin.id(), nsp = ns.name(), %filter, %event, "admin UI action: emit");
    op.emit(&event, &p);
    Ok(())
}

fn rooms(io: &SocketIo, admin: &Socket, action: &str, p: &Payload) -> Result<(), Refused> {
    let ns = namespace(io, p)?;
    let room = string_arg(p, 1, "room")?;
    let (op, filter) = selection(&ns, p, 2)?;
    tracing::info!(admin = admin.id(), nsp = ns.name(), %filter, room, action, "admin UI action");
    if action == "join" {
        op.join(room);
    } else {
        op.leave(room);
    }
    Ok(())
}

fn disconnect(io: &SocketIo, admin: &Socket, p: &Payload) -> Result<(), Refused> {
    let ns = namespace(io, p)?;
    let close = match p.args.get(1) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("close must be a boolean".into()),
    };
    let (op, filter) = selection(&ns, p, 2)?;
    tracing::info!(admin = admin.id(), nsp = ns.name(), %filter, close, "admin UI action: disconnect");
    ns.adapter().disconnect_sockets(op.options(), close);
    Ok(())
}
