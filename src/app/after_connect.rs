//! Authenticate after connect (seed 003 "method 2", seed 004's
//! `authenticate` → `authenticated` / `authError`), SPEC.md §4.16.
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
//!
//! Replies are not sent from inside the event handlers (which run on the
//! connection's reader): an unauthenticated socket's replies go through one
//! small task per socket, in order ([`Replies`]); an authenticated socket's
//! `authenticate` replies from a task of its own. (Emitting from the reader
//! path stalled later replies of the same connection in the interop tests.)

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::api::user_json;
use super::{devices, App, ErrorCode};
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

/// One reply: an event, the ack to answer (with its value), and whether
/// the socket is disconnected afterwards.
struct Reply {
    event: &'static str,
    data: Value,
    ack: Option<(AckSender, Value)>,
    disconnect: bool,
}

impl Reply {
    /// Sends it.
    fn send(self, socket: &Arc<Socket>) {
        let _ = socket.emit(self.event, &Payload::one(self.data));
        if let Some((ack, v)) = self.ack {
            let _ = ack.send(Payload::one(v));
        }
        if self.disconnect {
            socket.disconnect();
        }
    }
}

/// The ordered replies of one unauthenticated socket (sent by a task).
#[derive(Clone)]
struct Replies(mpsc::UnboundedSender<Reply>);

impl Replies {
    /// Starts the task sending `socket`'s replies; it ends with the socket.
    fn start(socket: &Arc<Socket>) -> Replies {
        let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
        let socket = socket.clone();
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                r.send(&socket);
            }
        });
        Replies(tx)
    }

    fn push(&self, r: Reply) {
        let _ = self.0.send(r);
    }
}

/// The refusal `{message, code}` with its failed ack.
fn refusal(ack: Option<AckSender>, code: &str, message: &str, disconnect: bool) -> Reply {
    Reply {
        event: AUTH_ERROR,
        data: json!({"message": message, "code": code}),
        ack: ack.map(|a| {
            (
                a,
                json!({"ok": false, "error": {"code": code, "message": message}}),
            )
        }),
        disconnect,
    }
}

/// The success `authenticated {success, user}` with its ack `{ok, user}`.
fn success(ack: Option<AckSender>, user: &User) -> Reply {
    let u = user_json(user);
    Reply {
        event: "authenticated",
        data: json!({"success": true, "user": u}),
        ack: ack.map(|a| (a, json!({"ok": true, "user": u}))),
        disconnect: false,
    }
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

/// `authenticate` on a socket that is authenticated already: the token
/// must be valid and the same user's.
pub(super) fn register_authenticate(app: &Arc<App>, socket: &Arc<Socket>) {
    let app = app.clone();
    socket.on("authenticate", move |s, payload, ack| {
        let Some(current) = s.data().get::<Arc<User>>() else {
            return;
        };
        let reply = match app.keys.authenticate(&app.store, token_of(&payload)) {
            Ok(user) if user.id == current.id => success(ack, &current),
            Ok(_) => refusal(
                ack,
                ErrorCode::Forbidden.code(),
                "this socket is authenticated as another user",
                false,
            ),
            Err(e) => refusal(ack, e.code(), &e.to_string(), false),
        };
        let s = s.clone();
        tokio::spawn(async move { reply.send(&s) });
    });
}

/// Counts a refusal: whether the socket is to be disconnected (past
/// [`MAX_REFUSED`]).
fn count_refusal(pending: &Pending) -> bool {
    pending.refused.fetch_add(1, Ordering::AcqRel) + 1 >= MAX_REFUSED
}

/// Waits for an unauthenticated socket's `authenticate`.
pub(super) fn await_authentication(app: &Arc<App>, socket: Arc<Socket>) {
    let pending = Arc::new(Pending::default());
    let replies = Replies::start(&socket);
    let (a, p, r) = (app.clone(), pending.clone(), replies.clone());
    socket.on("authenticate", move |s, payload, ack| {
        if p.done.load(Ordering::Acquire) {
            return;
        }
        match a.keys.authenticate_claims(&a.store, token_of(&payload)) {
            Ok((user, claims)) => {
                if p.done.swap(true, Ordering::AcqRel) {
                    return;
                }
                devices::attach(s, user.clone(), &claims);
                a.setup_socket(s.clone(), &user);
                r.push(success(ack, &user));
            }
            Err(e) => r.push(refusal(ack, e.code(), &e.to_string(), count_refusal(&p))),
        }
    });
    let p = pending.clone();
    socket.on_any(move |_s, _name, _payload, ack| {
        // Once authenticated, unknown events are ignored as usual.
        if p.done.load(Ordering::Acquire) {
            return;
        }
        let code = ErrorCode::NotAuthenticated.code();
        replies.push(refusal(
            ack,
            code,
            "send authenticate first",
            count_refusal(&p),
        ));
    });
    let grace = app.config.platform_b.auth_grace();
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        if !pending.done.swap(true, Ordering::AcqRel) && socket.connected() {
            let code = ErrorCode::AuthTimeout.code();
            refusal(None, code, "not authenticated in time", true).send(&socket);
        }
    });
}
