//! Authenticate after connect (seed 003 "method 2", seed 004's
//! `authenticate` → `authenticated` / `authError`), SPEC.md §4.22.
//!
//! Opt-in (`AUTH_AFTER_CONNECT=on`): the middleware then lets a CONNECT
//! without a token in, unauthenticated. Such a socket is in no room but its
//! own and has no request pipeline: it may only send `authenticate` (a token
//! string, or `{token}`); anything else is answered `authError
//! not_authenticated`. After a good token the socket is set up exactly as
//! one that brought its token in the handshake. Without one in the grace
//! time it gets `authError auth_timeout` and is disconnected; so is a socket
//! that keeps sending refused events.
//!
//! `authenticate` also works on a socket that authenticated in the
//! handshake (seed 004 clients send both): the token is checked and must
//! belong to the same user.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::api::user_json;
use super::outcome::{error_event_json, error_json};
use super::{devices, App, AppError, ErrorCode};
use crate::socketio::{AckSender, Payload, Socket};
use crate::store::User;

/// Refused events (failed `authenticate` included) after which an
/// unauthenticated socket is disconnected.
const MAX_REFUSED: u32 = 10;

/// The event refusals of this flow are emitted as.
const AUTH_ERROR: &str = "authError";

/// An unauthenticated socket's progress.
#[derive(Default)]
struct Pending {
    done: AtomicBool,
    refused: AtomicU32,
}

/// The token of an `authenticate` payload: a string, or `{token}`.
fn token_of(payload: &Payload) -> Option<&str> {
    match payload.args.first() {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(v) => v.get("token").and_then(Value::as_str),
        None => None,
    }
    .filter(|t| !t.is_empty())
}

/// Answers with `authError {message, code}` and a failed ack.
fn refuse(socket: &Arc<Socket>, ack: Option<AckSender>, code: &str, message: &str) {
    let _ = socket.emit(
        AUTH_ERROR,
        &Payload::one(json!({"message": message, "code": code})),
    );
    if let Some(ack) = ack {
        let _ = ack.send(Payload::one(
            json!({"ok": false, "error": {"code": code, "message": message}}),
        ));
    }
}

/// Answers with `authenticated {success, user}` and an ack `{ok, user}`.
fn accept(socket: &Arc<Socket>, ack: Option<AckSender>, user: &User) {
    let u = user_json(user);
    let _ = socket.emit(
        "authenticated",
        &Payload::one(json!({"success": true, "user": u})),
    );
    if let Some(ack) = ack {
        let _ = ack.send(Payload::one(json!({"ok": true, "user": u})));
    }
}

/// `authenticate` on a socket that is authenticated already: the token
/// must be valid and the same user's.
pub(super) fn register_authenticate(app: &Arc<App>, socket: &Arc<Socket>) {
    let app = app.clone();
    socket.on("authenticate", move |s, payload, ack| {
        let Some(current) = s.data().get::<Arc<User>>() else {
            return;
        };
        match app.keys.authenticate(&app.store, token_of(&payload)) {
            Ok(user) if user.id == current.id => accept(s, ack, &current),
            Ok(_) => refuse(
                s,
                ack,
                ErrorCode::Forbidden.code(),
                "this socket is authenticated as another user",
            ),
            Err(e) => refuse(s, ack, e.code(), &e.to_string()),
        }
    });
}

/// Counts a refusal; disconnects the socket past [`MAX_REFUSED`].
fn count_refusal(pending: &Pending, socket: &Arc<Socket>) {
    if pending.refused.fetch_add(1, Ordering::AcqRel) + 1 >= MAX_REFUSED {
        socket.disconnect();
    }
}

/// Waits for an unauthenticated socket's `authenticate`.
pub(super) fn await_authentication(app: &Arc<App>, socket: Arc<Socket>) {
    let pending = Arc::new(Pending::default());
    let (a, p) = (app.clone(), pending.clone());
    socket.on("authenticate", move |s, payload, ack| {
        if p.done.load(Ordering::Acquire) {
            return;
        }
        match a.keys.authenticate_claims(&a.store, token_of(&payload)) {
            Ok((user, claims)) => {
                // The per-user socket cap applies here as at CONNECT (§4.24).
                let Some(slot) = a.abuse.sockets.take(&user.id) else {
                    let cap = a.abuse.sockets.max();
                    let message = format!("at most {cap} sockets per user");
                    refuse(s, ack, ErrorCode::TooManyConnections.code(), &message);
                    count_refusal(&p, s);
                    return;
                };
                if p.done.swap(true, Ordering::AcqRel) {
                    return;
                }
                s.data().insert(slot);
                devices::attach(s, user.clone(), &claims);
                a.setup_socket(s.clone(), &user);
                accept(s, ack, &user);
            }
            Err(e) => {
                refuse(s, ack, e.code(), &e.to_string());
                count_refusal(&p, s);
            }
        }
    });
    let p = pending.clone();
    socket.on_any(move |s, _name, _payload, ack| {
        // Once authenticated, unknown events are ignored as usual.
        if p.done.load(Ordering::Acquire) {
            return;
        }
        let e = AppError::new(ErrorCode::NotAuthenticated, "send authenticate first");
        let _ = s.emit(AUTH_ERROR, &Payload::one(error_event_json(&e)));
        if let Some(ack) = ack {
            let _ = ack.send(Payload::one(error_json(&e)));
        }
        count_refusal(&p, s);
    });
    let grace = app.config.platform_b.auth_grace();
    let socket = Arc::downgrade(&socket);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        let Some(socket) = socket.upgrade() else {
            return;
        };
        if !pending.done.swap(true, Ordering::AcqRel) && socket.connected() {
            let e = AppError::new(ErrorCode::AuthTimeout, "not authenticated in time");
            let _ = socket.emit(AUTH_ERROR, &Payload::one(error_event_json(&e)));
            socket.disconnect();
        }
    });
}
