//! Topic subscriptions (SPEC.md §4.17): `subscribe` / `unsubscribe` with
//! `{topic}` (or the bare name), and seed 003's `subscribe:<topic>` /
//! `unsubscribe:<topic>` spelling, which goes through the same pipeline as
//! the table's events. Refusals go out as `topicError`.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Ctx, EVENTS};
use crate::app::platform::topics::topic_room;
use crate::app::platform::valid_topic;
use crate::app::{AppError, Job, Outcome, SocketCtx};
use crate::socketio::{Payload, Socket};

/// The topic name of the argument: `{topic}` or the bare name.
fn topic_name(arg: &Value) -> Result<String, AppError> {
    let name = match arg {
        Value::String(s) => Some(s.as_str()),
        Value::Object(m) => m.get("topic").and_then(Value::as_str),
        _ => None,
    }
    .ok_or_else(|| AppError::invalid("topic is required"))?;
    if !valid_topic(name) {
        return Err(AppError::invalid(
            "topic must be 1-64 characters of letters, digits and -_.",
        ));
    }
    Ok(name.to_string())
}

/// `subscribe`: join an allowed topic's room.
pub(super) fn subscribe(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let name = topic_name(arg)?;
    let rule = cx.app.topic(&name)?;
    if !rule.allows(cx.user.role) {
        return Err(AppError::forbidden(format!(
            "Topic {name} is not open to {}s",
            cx.user.role.as_str()
        )));
    }
    Ok(Outcome::new()
        .join(topic_room(&name))
        .emit("subscribed", json!({"topic": name, "event": rule.event}))
        .reply("topic", json!(name))
        .reply("event", json!(rule.event)))
}

/// `unsubscribe`: leave a topic's room.
pub(super) fn unsubscribe(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let name = topic_name(arg)?;
    cx.app.topic(&name)?;
    Ok(Outcome::new()
        .leave(topic_room(&name))
        .emit("unsubscribed", json!({"topic": name}))
        .reply("topic", json!(name)))
}

/// Routes `subscribe:<topic>` and `unsubscribe:<topic>` (any topic, so an
/// unknown one is refused like in the object form) to the table's events;
/// every other event without a handler takes a token of the rate limit.
pub(crate) fn register_aliases(
    socket: &Arc<Socket>,
    ctx: &Arc<SocketCtx>,
    tx: &mpsc::Sender<Job>,
    limits: (f64, f64),
) {
    let spec = |name: &str| EVENTS.iter().find(|e| e.name == name);
    let (Some(sub), Some(unsub)) = (spec("subscribe"), spec("unsubscribe")) else {
        return;
    };
    let (ctx, tx) = (ctx.clone(), tx.clone());
    socket.on_any(move |s, event, _payload, ack| {
        let (spec, topic) = if let Some(t) = event.strip_prefix("subscribe:") {
            (sub, t)
        } else if let Some(t) = event.strip_prefix("unsubscribe:") {
            (unsub, t)
        } else {
            // Any other unknown event costs a token (SPEC.md §4.24).
            crate::app::abuse::unknown_event(&ctx, limits, s, ack, super::ATTENDANCE_ERROR);
            return;
        };
        let payload = Payload::one(json!(topic));
        ctx.enqueue(&tx, limits, s, Job { spec, payload, ack });
    });
}
