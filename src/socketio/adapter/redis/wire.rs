//! The messages nodes exchange, as one model ([`Envelope`]) for both wire
//! formats, and the classic `@socket.io/redis-adapter` codec: broadcasts as
//! a msgpack array `[uid, packet, opts]`; requests and replies as JSON,
//! except a broadcast with acks and its acks (msgpack maps). Byte layout:
//! what notepack.io writes (the crate's msgpack value codec).

use bytes::{Bytes, BytesMut};
use serde_json::{json, Map, Value};

use crate::socketio::adapter::BroadcastOptions;
use crate::socketio::packet::msgpack::{decode_value, encode_value};
use crate::socketio::packet::{placeholder_num, Limits, Payload};
use crate::socketio::rooms::Room;

/// Why a message from Redis was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum WireError {
    /// Not well-formed msgpack / JSON.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// Well-formed, but not a message this adapter knows.
    #[error("unexpected message shape: {0}")]
    Shape(&'static str),
}

/// Limits on what a message from another node may hold (it goes to every
/// local recipient, so it is checked like a client's packet, with room for
/// the envelope's own nesting).
fn limits() -> Limits {
    Limits {
        max_attachments: 1024,
        max_depth: 48,
        ..Limits::default()
    }
}

/// An event crossing nodes: name and arguments (binary ones as attachments).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WirePacket {
    pub event: String,
    pub payload: Payload,
}

/// What a message asks or answers.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Body {
    /// A broadcast; with `request_id`, one with acks.
    Broadcast {
        packet: WirePacket,
        opts: BroadcastOptions,
        request_id: Option<String>,
    },
    Join {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    Leave {
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    },
    Disconnect {
        opts: BroadcastOptions,
        close: bool,
    },
    Fetch {
        request_id: String,
        opts: BroadcastOptions,
    },
    ServerSideEmit {
        packet: WirePacket,
        request_id: Option<String>,
    },
    /// Classic only: every room name of the node.
    AllRooms {
        request_id: String,
    },
    /// Classic only (legacy): the socket ids in `rooms`.
    Sockets {
        request_id: String,
        rooms: Vec<Room>,
    },
    /// Classic only (legacy per-socket forms of join / leave / disconnect).
    Legacy {
        kind: Legacy,
        sid: String,
        room: Option<Room>,
        close: bool,
        request_id: Option<String>,
    },
    Reply {
        request_id: String,
        reply: Reply,
    },
    /// Understood and deliberately ignored (heartbeats, adapter close).
    Ignored,
}

/// The three actions on sockets: join, leave, disconnect (of a selection,
/// or in the classic legacy form, of one socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Legacy {
    Join,
    Leave,
    Disconnect,
}

/// An answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// fetchSockets: `{id, handshake, rooms, data}` each.
    Sockets(Vec<Value>),
    /// One node's answer to a server-side emit.
    ServerAck(Payload),
    /// How many of its clients a node sent a broadcast with acks to.
    ClientCount(u64),
    /// One client's ack of a broadcast.
    Ack(Payload),
    Rooms(Vec<Room>),
    Ids(Vec<String>),
    /// A legacy request done.
    Done,
}

/// A decoded message: sender uid (`None` from the emitter's JSON
/// requests), namespace when the message says it, and body.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Envelope {
    pub uid: Option<String>,
    pub nsp: Option<String>,
    pub body: Body,
}

/// `[event, ...args]`.
pub(super) fn event_array(p: &WirePacket) -> Value {
    let mut a = Vec::with_capacity(1 + p.payload.args.len());
    a.push(Value::String(p.event.clone()));
    a.extend(p.payload.args.iter().cloned());
    Value::Array(a)
}

/// The packet of an `[event, ...args]` array.
pub(super) fn packet_of(data: Value, attachments: Vec<Bytes>) -> Result<WirePacket, WireError> {
    let Value::Array(mut a) = data else {
        return Err(WireError::Shape("event data is not an array"));
    };
    if a.is_empty() {
        return Err(WireError::Shape("event without a name"));
    }
    let event = match a.remove(0) {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return Err(WireError::Shape("event name is not a string")),
    };
    Ok(WirePacket {
        event,
        payload: Payload {
            args: a,
            attachments,
        },
    })
}

/// One ack argument as a payload (null when absent).
pub(super) fn one(v: Option<Value>, attachments: Vec<Bytes>) -> Payload {
    Payload {
        args: vec![v.unwrap_or(Value::Null)],
        attachments,
    }
}

/// The first argument of an answer (what Node relays).
pub(super) fn first_arg(p: &Payload) -> Value {
    p.args.first().cloned().unwrap_or(Value::Null)
}

pub(super) fn msgpack(v: &Value, atts: &[Bytes]) -> Bytes {
    let mut b = BytesMut::with_capacity(64 + atts.iter().map(Bytes::len).sum::<usize>());
    encode_value(&mut b, v, atts);
    b.freeze()
}

pub(super) fn json_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// JSON (first byte `{`) or msgpack, as Node decides.
pub(super) fn decode_any(msg: &Bytes) -> Result<(Value, Vec<Bytes>), WireError> {
    if msg.first() == Some(&b'{') {
        serde_json::from_slice(msg)
            .map(|v| (v, Vec::new()))
            .map_err(|e| WireError::Decode(e.to_string()))
    } else {
        decode_value(msg, &limits()).map_err(|e| WireError::Decode(e.to_string()))
    }
}

/// Whether `v` holds a placeholder pointing at one of `n` attachments.
pub(super) fn has_binary(v: &Value, n: usize) -> bool {
    match v {
        Value::Array(a) => a.iter().any(|x| has_binary(x, n)),
        Value::Object(o) => {
            placeholder_num(v).is_some_and(|i| i < n) || o.values().any(|x| has_binary(x, n))
        }
        _ => false,
    }
}

/// `v` with each placeholder replaced by what `JSON.stringify` makes of a
/// Node `Buffer` (`{"type":"Buffer","data":[...]}`): binary values in the
/// classic adapter's JSON requests.
pub(super) fn inline_buffers(v: &Value, atts: &[Bytes]) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| inline_buffers(x, atts)).collect()),
        Value::Object(o) => match placeholder_num(v).and_then(|i| atts.get(i)) {
            Some(b) => json!({"type": "Buffer", "data": b.to_vec()}),
            None => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), inline_buffers(x, atts)))
                    .collect(),
            ),
        },
        other => other.clone(),
    }
}

pub(super) fn str_field(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn opts_field(v: &Value, k: &str) -> Result<BroadcastOptions, WireError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(BroadcastOptions::default()),
        Some(o) => serde_json::from_value(o.clone()).map_err(|_| WireError::Shape("bad opts")),
    }
}

pub(super) fn rooms_field(v: &Value, k: &str) -> Vec<Room> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| match r {
                    Value::String(s) => Some(Room::from(s.as_str())),
                    Value::Number(n) => Some(Room::from(n.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Room names as a JSON array.
pub(super) fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::String(r.to_string())).collect())
}

/// A join / leave / disconnect of a selection, from the fields `opts`,
/// `rooms` and `close` of `v` (both protocols name them alike).
pub(super) fn selection(kind: Legacy, v: &Value) -> Result<Body, WireError> {
    let opts = opts_field(v, "opts")?;
    Ok(match kind {
        Legacy::Join => Body::Join {
            opts,
            rooms: rooms_field(v, "rooms"),
        },
        Legacy::Leave => Body::Leave {
            opts,
            rooms: rooms_field(v, "rooms"),
        },
        Legacy::Disconnect => Body::Disconnect {
            opts,
            close: v.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
    })
}

fn opts_value(opts: &BroadcastOptions) -> Value {
    serde_json::to_value(opts).unwrap_or(Value::Null)
}

/// The classic packet map `{type: 2, data, nsp}`.
fn classic_packet(nsp: &str, p: &WirePacket) -> Value {
    json!({"type": 2, "data": event_array(p), "nsp": nsp})
}

/// A classic plain broadcast: the msgpack array `[uid, packet, opts]`.
pub(super) fn classic_broadcast(
    uid: &str,
    nsp: &str,
    p: &WirePacket,
    opts: &BroadcastOptions,
) -> Bytes {
    let v = Value::Array(vec![
        Value::String(uid.into()),
        classic_packet(nsp, p),
        opts_value(opts),
    ]);
    msgpack(&v, &p.payload.attachments)
}

/// A classic request (on `P-request#<nsp>#`); `None` for bodies that are
/// not requests.
pub(super) fn classic_request(uid: &str, nsp: &str, body: &Body) -> Option<Bytes> {
    let mut m = Map::new();
    m.insert("uid".into(), Value::String(uid.into()));
    let rid = |m: &mut Map<String, Value>, id: &str| {
        m.insert("requestId".into(), Value::String(id.into()));
    };
    match body {
        Body::Broadcast {
            packet,
            opts,
            request_id: Some(id),
        } => {
            rid(&mut m, id);
            m.insert("type".into(), json!(7));
            m.insert("packet".into(), classic_packet(nsp, packet));
            m.insert("opts".into(), opts_value(opts));
            return Some(msgpack(&Value::Object(m), &packet.payload.attachments));
        }
        Body::Join { opts, rooms } | Body::Leave { opts, rooms } => {
            let t = if matches!(body, Body::Join { .. }) {
                2
            } else {
                3
            };
            m.insert("type".into(), json!(t));
            m.insert("opts".into(), opts_value(opts));
            m.insert("rooms".into(), rooms_value(rooms));
        }
        Body::Disconnect { opts, close } => {
            m.insert("type".into(), json!(4));
            m.insert("opts".into(), opts_value(opts));
            m.insert("close".into(), json!(close));
        }
        Body::Fetch { request_id, opts } => {
            rid(&mut m, request_id);
            m.insert("type".into(), json!(5));
            m.insert("opts".into(), opts_value(opts));
        }
        Body::ServerSideEmit { packet, request_id } => {
            if let Some(id) = request_id {
                rid(&mut m, id);
            }
            m.insert("type".into(), json!(6));
            let data = inline_buffers(&event_array(packet), &packet.payload.attachments);
            m.insert("data".into(), data);
        }
        _ => return None,
    }
    Some(json_bytes(&Value::Object(m)))
}

/// A classic reply (on `P-response#<nsp>#<requester>#`).
pub(super) fn classic_reply(request_id: &str, reply: &Reply) -> Bytes {
    let id = Value::String(request_id.into());
    match reply {
        Reply::Sockets(s) => json_bytes(&json!({"requestId": id, "sockets": s})),
        Reply::Ids(s) => json_bytes(&json!({"requestId": id, "sockets": s})),
        Reply::Rooms(r) => json_bytes(&json!({"requestId": id, "rooms": rooms_value(r)})),
        Reply::Done => json_bytes(&json!({ "requestId": id })),
        Reply::ServerAck(p) => {
            let data = inline_buffers(&first_arg(p), &p.attachments);
            json_bytes(&json!({"type": 6, "requestId": id, "data": data}))
        }
        Reply::ClientCount(n) => json_bytes(&json!({"type": 8, "requestId": id, "clientCount": n})),
        Reply::Ack(p) => {
            let v = json!({"type": 9, "requestId": id, "packet": first_arg(p)});
            msgpack(&v, &p.attachments)
        }
    }
}

/// The packet inside a classic broadcast or broadcast request, checking
/// its namespace (missing: `/`).
fn classic_packet_of(
    v: Option<Value>,
    atts: Vec<Bytes>,
) -> Result<(WirePacket, Option<String>), WireError> {
    let Some(Value::Object(mut p)) = v else {
        return Err(WireError::Shape("packet is not a map"));
    };
    let nsp = match p.remove("nsp") {
        Some(Value::String(s)) => s,
        _ => "/".into(),
    };
    let data = p.remove("data").unwrap_or(Value::Null);
    Ok((packet_of(data, atts)?, Some(nsp)))
}

/// Decodes a message of a classic broadcast channel.
pub(super) fn classic_decode_broadcast(msg: &Bytes) -> Result<Envelope, WireError> {
    let (v, atts) = decode_any(msg)?;
    let Value::Array(a) = v else {
        return Err(WireError::Shape("broadcast is not an array"));
    };
    let mut it = a.into_iter();
    let uid = it.next().and_then(|u| u.as_str().map(str::to_string));
    let (packet, nsp) = classic_packet_of(it.next(), atts)?;
    let opts = match it.next() {
        Some(o) => serde_json::from_value(o).map_err(|_| WireError::Shape("bad opts"))?,
        None => BroadcastOptions::default(),
    };
    Ok(Envelope {
        uid,
        nsp,
        body: Body::Broadcast {
            packet,
            opts,
            request_id: None,
        },
    })
}

/// Decodes a message of a classic request channel.
pub(super) fn classic_decode_request(msg: &Bytes) -> Result<Envelope, WireError> {
    let (mut v, atts) = decode_any(msg)?;
    let uid = str_field(&v, "uid");
    let rid = str_field(&v, "requestId");
    let need_rid = || {
        rid.clone()
            .ok_or(WireError::Shape("request without requestId"))
    };
    let legacy = |kind| -> Result<Body, WireError> {
        Ok(Body::Legacy {
            kind,
            sid: str_field(&v, "sid").ok_or(WireError::Shape("legacy request without sid"))?,
            room: str_field(&v, "room").map(Room::from),
            close: v.get("close").and_then(Value::as_bool).unwrap_or(false),
            request_id: rid.clone(),
        })
    };
    let t = v.get("type").and_then(Value::as_u64);
    let has_opts = v.get("opts").is_some_and(Value::is_object);
    let body = match t {
        Some(0) => Body::Sockets {
            request_id: need_rid()?,
            rooms: rooms_field(&v, "rooms"),
        },
        Some(1) => Body::AllRooms {
            request_id: need_rid()?,
        },
        Some(2) if !has_opts => legacy(Legacy::Join)?,
        Some(3) if !has_opts => legacy(Legacy::Leave)?,
        Some(4) if !has_opts => legacy(Legacy::Disconnect)?,
        Some(2) => selection(Legacy::Join, &v)?,
        Some(3) => selection(Legacy::Leave, &v)?,
        Some(4) => selection(Legacy::Disconnect, &v)?,
        Some(5) => Body::Fetch {
            request_id: need_rid()?,
            opts: opts_field(&v, "opts")?,
        },
        Some(6) => {
            let data = v.get_mut("data").map(Value::take).unwrap_or(Value::Null);
            Body::ServerSideEmit {
                packet: packet_of(data, atts)?,
                request_id: rid,
            }
        }
        Some(7) => {
            let packet = v.get_mut("packet").map(Value::take);
            let (packet, _) = classic_packet_of(packet, atts)?;
            Body::Broadcast {
                packet,
                opts: opts_field(&v, "opts")?,
                request_id: Some(need_rid()?),
            }
        }
        _ => return Err(WireError::Shape("unknown request type")),
    };
    Ok(Envelope {
        uid,
        nsp: None,
        body,
    })
}

/// Decodes a message of a classic response channel. Replies to fetch
/// sockets, all rooms and the legacy requests carry no type: they are
/// told apart by their fields.
pub(super) fn classic_decode_reply(msg: &Bytes) -> Result<Envelope, WireError> {
    let (mut v, atts) = decode_any(msg)?;
    let request_id = str_field(&v, "requestId").ok_or(WireError::Shape("reply without id"))?;
    let reply = match v.get("type").and_then(Value::as_u64) {
        Some(6) => Reply::ServerAck(one(v.get_mut("data").map(Value::take), atts)),
        Some(8) => Reply::ClientCount(v.get("clientCount").and_then(Value::as_u64).unwrap_or(0)),
        Some(9) => Reply::Ack(one(v.get_mut("packet").map(Value::take), atts)),
        _ => match (v.get_mut("sockets").map(Value::take), v.get("rooms")) {
            (Some(Value::Array(s)), _) if s.iter().all(Value::is_object) => Reply::Sockets(s),
            (Some(Value::Array(s)), _) => Reply::Ids(
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
            ),
            (_, Some(_)) => Reply::Rooms(rooms_field(&v, "rooms")),
            _ => Reply::Done,
        },
    };
    Ok(Envelope {
        uid: None,
        nsp: None,
        body: Body::Reply { request_id, reply },
    })
}
