//! The sharded adapter's codec (`createShardedAdapter`, built on
//! socket.io-adapter's `ClusterAdapter`): every message is the envelope
//! `{type, data, uid, nsp}`, JSON unless its data holds binary (then the
//! whole envelope is a msgpack map); replies go to the requester's own
//! channel.

use bytes::Bytes;
use serde_json::{json, Value};

use super::wire::{
    decode_any, event_array, has_binary, json_bytes, msgpack, one, opts_field, packet_of,
    rooms_value, selection, str_field, Body, Envelope, Legacy, Reply, WireError,
};
use crate::socketio::adapter::BroadcastOptions;

fn opts_value(opts: &BroadcastOptions) -> Value {
    serde_json::to_value(opts).unwrap_or(Value::Null)
}

/// Encodes `body` from node `uid` of namespace `nsp`; `None` for bodies
/// the sharded protocol does not have (the classic-only requests).
pub(super) fn encode(uid: &str, nsp: &str, body: &Body) -> Option<Bytes> {
    let no_atts: &[Bytes] = &[];
    let (t, data, atts) = match body {
        Body::Broadcast {
            packet,
            opts,
            request_id,
        } => {
            let mut d = json!({
                "packet": {"type": 2, "data": event_array(packet)},
                "opts": opts_value(opts),
            });
            if let Some(id) = request_id {
                d["requestId"] = json!(id);
            }
            (3, d, &packet.payload.attachments[..])
        }
        Body::Join { opts, rooms } => (
            4,
            json!({"opts": opts_value(opts), "rooms": rooms_value(rooms)}),
            no_atts,
        ),
        Body::Leave { opts, rooms } => (
            5,
            json!({"opts": opts_value(opts), "rooms": rooms_value(rooms)}),
            no_atts,
        ),
        Body::Disconnect { opts, close } => (
            6,
            json!({"opts": opts_value(opts), "close": close}),
            no_atts,
        ),
        Body::Fetch { request_id, opts } => (
            7,
            json!({"opts": opts_value(opts), "requestId": request_id}),
            no_atts,
        ),
        Body::ServerSideEmit { packet, request_id } => {
            let mut d = json!({ "packet": event_array(packet) });
            if let Some(id) = request_id {
                d["requestId"] = json!(id);
            }
            (9, d, &packet.payload.attachments[..])
        }
        Body::Reply { request_id, reply } => match reply {
            Reply::Sockets(s) => (8, json!({"requestId": request_id, "sockets": s}), no_atts),
            Reply::ServerAck(p) => (
                10,
                json!({"requestId": request_id, "packet": super::wire::first_arg(p)}),
                &p.attachments[..],
            ),
            Reply::ClientCount(n) => (
                11,
                json!({"requestId": request_id, "clientCount": n}),
                no_atts,
            ),
            Reply::Ack(p) => (
                12,
                json!({"requestId": request_id, "packet": super::wire::first_arg(p)}),
                &p.attachments[..],
            ),
            _ => return None,
        },
        _ => return None,
    };
    let binary = has_binary(&data, atts.len());
    let env = json!({"type": t, "data": data, "uid": uid, "nsp": nsp});
    Some(if binary {
        msgpack(&env, atts)
    } else {
        json_bytes(&env)
    })
}

/// Decodes a sharded envelope.
pub(super) fn decode(msg: &Bytes) -> Result<Envelope, WireError> {
    let (mut v, atts) = decode_any(msg)?;
    let uid = str_field(&v, "uid");
    let nsp = str_field(&v, "nsp");
    let t = v.get("type").and_then(Value::as_u64);
    let mut d = v.get_mut("data").map(Value::take).unwrap_or(Value::Null);
    let rid = str_field(&d, "requestId");
    let need_rid = || {
        rid.clone()
            .ok_or(WireError::Shape("message without requestId"))
    };
    let reply = |reply| -> Result<Body, WireError> {
        Ok(Body::Reply {
            request_id: need_rid()?,
            reply,
        })
    };
    let body = match t {
        Some(1) | Some(2) | Some(13) => Body::Ignored,
        Some(3) => {
            let mut p = d.get_mut("packet").map(Value::take).unwrap_or(Value::Null);
            let data = p.get_mut("data").map(Value::take).unwrap_or(Value::Null);
            Body::Broadcast {
                packet: packet_of(data, atts)?,
                opts: opts_field(&d, "opts")?,
                request_id: rid,
            }
        }
        Some(4) => selection(Legacy::Join, &d)?,
        Some(5) => selection(Legacy::Leave, &d)?,
        Some(6) => selection(Legacy::Disconnect, &d)?,
        Some(7) => Body::Fetch {
            request_id: need_rid()?,
            opts: opts_field(&d, "opts")?,
        },
        Some(8) => match d.get_mut("sockets").map(Value::take) {
            Some(Value::Array(s)) => reply(Reply::Sockets(s))?,
            _ => return Err(WireError::Shape("fetch reply without sockets")),
        },
        Some(9) => {
            let p = d.get_mut("packet").map(Value::take).unwrap_or(Value::Null);
            Body::ServerSideEmit {
                packet: packet_of(p, atts)?,
                request_id: rid,
            }
        }
        Some(10) => reply(Reply::ServerAck(one(
            d.get_mut("packet").map(Value::take),
            atts,
        )))?,
        Some(11) => reply(Reply::ClientCount(
            d.get("clientCount").and_then(Value::as_u64).unwrap_or(0),
        ))?,
        Some(12) => reply(Reply::Ack(one(d.get_mut("packet").map(Value::take), atts)))?,
        _ => return Err(WireError::Shape("unknown message type")),
    };
    Ok(Envelope { uid, nsp, body })
}
