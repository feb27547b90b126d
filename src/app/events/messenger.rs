//! The `/messenger` events (SPEC.md §4.22): `sendMessage`, `typing`,
//! `markRead`, `getMessages`. Their table is [`MESSENGER_EVENTS`], held to
//! SPEC.md by the tests in `tests.rs` as [`super::EVENTS`] is; the namespace
//! and the delivery of messages are in `crate::app::messenger`.

use serde_json::{json, Value};

use super::args::user_id;
use super::{ev, Ctx, EventSpec, Who};
use crate::app::devices::user_room;
use crate::app::messenger::may_message;
use crate::app::{AppError, ErrorCode, Outcome};
use crate::socketio::Payload;
use crate::store::{Message, User};

/// Error event of the messenger events.
pub(crate) const MESSAGE_ERROR: &str = "messageError";

/// Messages per `getMessages` page: default and most.
const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 100;
/// Longest `clientId`, in bytes.
const MAX_CLIENT_ID: usize = 128;

/// Every event a `/messenger` client may send, in SPEC.md's order.
#[rustfmt::skip]
pub(crate) static MESSENGER_EVENTS: &[EventSpec] = &[
    //  name           error event     who        handler
    ev("sendMessage",  MESSAGE_ERROR,  Who::Any,  send),
    ev("typing",       MESSAGE_ERROR,  Who::Any,  typing),
    ev("markRead",     MESSAGE_ERROR,  Who::Any,  mark_read),
    ev("getMessages",  MESSAGE_ERROR,  Who::Any,  history),
];

/// A message as clients see it.
pub(crate) fn message_json(m: &Message) -> Value {
    json!({"id": m.id, "from": m.from, "to": m.to, "text": m.text, "clientId": m.client_id,
           "sentAt": m.sent_at, "readAt": m.read_at})
}

/// The other user of a request (`key`), who must exist and be a contact.
fn contact(cx: &Ctx<'_>, arg: &Value, key: &str) -> Result<User, AppError> {
    if !arg.is_object() {
        return Err(AppError::invalid(format!("{key} is required")));
    }
    let other = user_id(arg, key)?;
    if other == cx.user.id {
        return Err(AppError::invalid("that is yourself"));
    }
    let not_a_contact =
        || AppError::new(ErrorCode::NotAContact, "You share no course with this user");
    let user = match cx.app.store.user(&other)? {
        Some(u) => u,
        // Authorization before existence (SPEC.md §4.24): a student is not
        // told whether a user id exists.
        None if cx.user.role == crate::store::Role::Student => return Err(not_a_contact()),
        None => return Err(AppError::not_found("User not found")),
    };
    if !may_message(&cx.app.store, cx.user, &user)? {
        return Err(not_a_contact());
    }
    Ok(user)
}

/// `sendMessage {to, text, clientId?}`.
fn send(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let cfg = &cx.app.config.platform_b;
    let text = match arg.get("text") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        _ if !arg.is_object() => return Err(AppError::invalid("to is required")),
        _ => return Err(AppError::invalid("text is required")),
    };
    if text.len() > cfg.message_max_bytes {
        return Err(AppError::new(
            ErrorCode::MessageTooLarge,
            format!("text over {} bytes", cfg.message_max_bytes),
        ));
    }
    let client_id = match arg.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.len() <= MAX_CLIENT_ID => Some(c.clone()),
        Some(_) => {
            return Err(AppError::invalid(format!(
                "clientId must be a string of at most {MAX_CLIENT_ID} bytes"
            )))
        }
    };
    let to = contact(cx, arg, "to")?;
    let pb = &cx.app.platform_b;
    if !pb.take_message_token(&cx.user.id, cfg.message_rate, cfg.message_burst) {
        return Err(AppError::new(ErrorCode::RateLimited, "Too many messages"));
    }
    let store = cx.app.store.clone();
    let message = Message {
        id: store.next_message_id()?,
        from: cx.user.id.clone(),
        to: to.id,
        text,
        client_id,
        sent_at: crate::store::now_rfc3339(),
        read_at: None,
    };
    let delivery = pb.delivery.clone();
    let guard = delivery.begin(message.id);
    let ticket = store.add_message(&message)?;
    let view = message_json(&message);
    Ok(Outcome::new()
        .ticket(ticket)
        .then(move |ns| delivery.deliver(ns, &store, guard, &message))
        .broadcast_others(user_room(&cx.user.id), "messageSent", view.clone())
        .reply("message", view))
}

/// `typing {to, isTyping?}`: `userTyping` to the recipient's devices,
/// volatile, not stored.
fn typing(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let to = contact(cx, arg, "to")?;
    let is_typing = arg.get("isTyping").and_then(Value::as_bool).unwrap_or(true);
    let data = json!({"from": cx.user.id, "fromName": cx.user.name, "isTyping": is_typing});
    let room = user_room(&to.id);
    Ok(Outcome::new()
        .then(move |ns| {
            ns.to(&room)
                .volatile()
                .emit("userTyping", &Payload::one(data));
        })
        .reply("to", Value::String(to.id)))
}

/// `markRead {messageId}`: the recipient marks a message read;
/// `messageRead` to the sender's devices.
fn mark_read(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let id = arg
        .get("messageId")
        .and_then(Value::as_u64)
        .ok_or_else(|| AppError::invalid("messageId is required"))?;
    let store = &cx.app.store;
    match store.message(id)? {
        Some(m) if m.to == cx.user.id => {}
        _ => return Err(AppError::not_found("Message not found")),
    }
    let (m, ticket) = store.mark_message_read(id, &crate::store::now_rfc3339())?;
    let mut out = Outcome::new().reply("message", message_json(&m));
    if let Some(t) = ticket {
        out = out.ticket(t).broadcast(
            user_room(&m.from),
            "messageRead",
            json!({"messageId": m.id, "by": cx.user.id, "readAt": m.read_at}),
        );
    }
    Ok(out)
}

/// `getMessages {with, before?, limit?}`: a page of the conversation,
/// oldest first.
fn history(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    if !arg.is_object() {
        return Err(AppError::invalid("with is required"));
    }
    let with = user_id(arg, "with")?;
    let before = match arg.get("before") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| AppError::invalid("before must be a message id"))?,
        ),
    };
    let limit = match arg.get("limit") {
        None | Some(Value::Null) => PAGE_DEFAULT,
        Some(v) => match v.as_u64() {
            Some(n @ 1..) if n as usize <= PAGE_MAX => n as usize,
            _ => return Err(AppError::invalid(format!("limit must be 1-{PAGE_MAX}"))),
        },
    };
    let (messages, more) = cx
        .app
        .store
        .messages_between(&cx.user.id, &with, before, limit)?;
    let list: Vec<Value> = messages.iter().map(message_json).collect();
    Ok(Outcome::new()
        .reply("with", Value::String(with))
        .reply("messages", Value::Array(list))
        .reply("hasMore", Value::Bool(more)))
}
