//! Which sockets a broadcast or selection reaches, as plain data with the
//! serialized shape of the Redis adapter wire's `opts`
//! (`{"rooms": [...], "except": [...], "flags": {...}}`), so that the options
//! a node builds are the options another node applies.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::socketio::rooms::Room;

/// The selection of a broadcast: the sockets in any of `rooms` (every socket
/// when empty) minus the sockets in any of `except`. "Everyone but this
/// socket" is `except` holding the socket's id (its own room).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// Target rooms (none: the whole namespace).
    #[serde(default, with = "rooms")]
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    #[serde(default, with = "rooms")]
    pub except: Vec<Room>,
    /// Delivery flags.
    #[serde(default)]
    pub flags: BroadcastFlags,
}

/// How a broadcast is delivered. Serialized with only the flags that are set
/// (`{}` for none), as Node does; unknown flags (`compress`, `broadcast`) are
/// ignored when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// Dropped for any socket that cannot take it right now; never kept for
    /// connection state recovery.
    #[serde(default, skip_serializing_if = "is_false")]
    pub volatile: bool,
    /// This node only: a cluster adapter does not publish it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
    /// How long a broadcast with acks waits (milliseconds on the wire;
    /// `None`: [`DEFAULT_ACK_TIMEOUT`](super::DEFAULT_ACK_TIMEOUT)).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "millis")]
    pub timeout: Option<Duration>,
}

impl BroadcastOptions {
    /// The sockets in any of `rooms`.
    pub fn to_rooms(rooms: Vec<Room>) -> BroadcastOptions {
        BroadcastOptions {
            rooms,
            ..BroadcastOptions::default()
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Room lists: strings on the way out; strings or numbers (JavaScript code
/// may use numeric rooms) on the way in.
mod rooms {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    use crate::socketio::rooms::Room;

    pub fn serialize<S: Serializer>(rooms: &[Room], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(rooms.iter().map(|r| &**r))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Room>, D::Error> {
        Vec::<Value>::deserialize(d)?
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(Room::from(s)),
                Value::Number(n) => Ok(Room::from(n.to_string())),
                other => Err(D::Error::custom(format!("invalid room {other}"))),
            })
            .collect()
    }
}

/// An optional duration as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_like_the_redis_wire() {
        let all = BroadcastOptions::default();
        assert_eq!(
            serde_json::to_value(&all).unwrap(),
            json!({"rooms": [], "except": [], "flags": {}})
        );
        let opts = BroadcastOptions {
            rooms: vec!["room1".into()],
            except: vec!["room2".into()],
            flags: BroadcastFlags {
                volatile: true,
                local: false,
                timeout: Some(Duration::from_millis(1000)),
            },
        };
        assert_eq!(
            serde_json::to_value(&opts).unwrap(),
            json!({"rooms": ["room1"], "except": ["room2"],
                   "flags": {"volatile": true, "timeout": 1000}})
        );
    }

    #[test]
    fn reads_what_node_and_the_emitter_send() {
        let v = json!({"rooms": ["a", 7], "flags": {"compress": true, "local": true,
                        "timeout": 1000}, "except": []});
        let opts: BroadcastOptions = serde_json::from_value(v).unwrap();
        assert_eq!(opts.rooms, vec![Room::from("a"), Room::from("7")]);
        assert!(opts.except.is_empty());
        assert!(opts.flags.local && !opts.flags.volatile);
        assert_eq!(opts.flags.timeout, Some(Duration::from_secs(1)));
        let bare: BroadcastOptions = serde_json::from_value(json!({})).unwrap();
        assert_eq!(bare, BroadcastOptions::default());
        assert!(serde_json::from_value::<BroadcastOptions>(json!({"rooms": [{}]})).is_err());
    }
}
