//! Topics (SPEC.md §4.17): a server-side allow-list of named topics with a
//! role rule each; subscribers are the members of room `topic:<name>`, and
//! a publication is one broadcast to it (not stored: topics carry live
//! updates, notifications are the stored channel).

use serde_json::{json, Value};

use super::TopicRule;
use crate::app::{App, AppError};
use crate::socketio::Payload;

/// The room of a topic's subscribers.
pub(crate) fn topic_room(name: &str) -> String {
    format!("topic:{name}")
}

impl App {
    /// The topic `name` from the allow-list (`not_found` when unknown).
    pub(crate) fn topic(&self, name: &str) -> Result<&TopicRule, AppError> {
        self.config()
            .platform
            .topic(name)
            .ok_or_else(|| AppError::not_found(format!("Unknown topic {name}")))
    }

    /// Publishes `data` to topic `name`: its subscribers get the topic's
    /// event with `{topic, data, timestamp}`. Returns how many sockets it
    /// reached on this node.
    pub fn publish(&self, name: &str, data: Value) -> Result<usize, AppError> {
        let rule = self.topic(name)?;
        let payload = json!({"topic": rule.name, "data": data,
                             "timestamp": crate::store::now_rfc3339()});
        Ok(self
            .ns()
            .to(&topic_room(&rule.name))
            .emit(&rule.event, &Payload::one(payload)))
    }
}
