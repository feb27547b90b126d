//! Encoding: events, acks and control packets into Engine.IO frames, with
//! binary placeholders renumbered depth-first so that attachments always go
//! out in order.

use bytes::BufMut;
use serde_json::Value;

use super::{placeholder_num, PacketKind, Payload};
use crate::engine::{Frame, FrameBuilder};

/// Writes `v` as compact JSON, renumbering placeholders depth-first and
/// recording the attachment order in `order`. Only placeholders that point
/// at one of the `n_att` attachments count; any other placeholder-shaped
/// object is plain data.
fn write_json(out: &mut bytes::BytesMut, v: &Value, order: &mut Vec<usize>, n_att: usize) {
    match v {
        Value::Array(a) => {
            out.put_u8(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_json(out, x, order, n_att);
            }
            out.put_u8(b']');
        }
        Value::Object(o) => {
            if let Some(n) = placeholder_num(v).filter(|&n| n < n_att) {
                out.extend_from_slice(b"{\"_placeholder\":true,\"num\":");
                out.extend_from_slice(order.len().to_string().as_bytes());
                out.put_u8(b'}');
                order.push(n);
                return;
            }
            out.put_u8(b'{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                write_str(out, k);
                out.put_u8(b':');
                write_json(out, x, order, n_att);
            }
            out.put_u8(b'}');
        }
        Value::String(s) => write_str(out, s),
        other => {
            // Scalars: serde_json keeps the number's original spelling.
            let _ = serde_json::to_writer(out.writer(), other);
        }
    }
}

fn write_str(out: &mut bytes::BytesMut, s: &str) {
    let _ = serde_json::to_writer(out.writer(), s);
}

/// An encoded packet: the text frame and its attachment frames, ready to be
/// queued (in this order) on any number of connections.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The frames: the packet first, then one per attachment.
    pub frames: Vec<Frame>,
}

fn header(b: &mut bytes::BytesMut, kind: PacketKind, count: usize, ns: &str, id: Option<u64>) {
    let kind = if count > 0 {
        match kind {
            PacketKind::Event => PacketKind::BinaryEvent,
            PacketKind::Ack => PacketKind::BinaryAck,
            k => k,
        }
    } else {
        kind
    };
    b.put_u8(kind.as_char());
    if count > 0 {
        b.extend_from_slice(count.to_string().as_bytes());
        b.put_u8(b'-');
    }
    if ns != "/" {
        b.extend_from_slice(ns.as_bytes());
        b.put_u8(b',');
    }
    if let Some(id) = id {
        b.extend_from_slice(id.to_string().as_bytes());
    }
}

/// Placeholders that point at one of the `n_att` attachments.
/// How many attachment frames [`write_json`] will emit for `args`: it must
/// walk exactly the way `write_json` does (a placeholder pointing at an
/// attachment counts and is not descended into; any other object, even one
/// with `"_placeholder": true`, is plain data whose values are walked), or
/// the header would announce a different number of attachments than follow.
fn count_placeholders(args: &[Value], n_att: usize) -> usize {
    fn walk(v: &Value, n_att: usize, n: &mut usize) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, n_att, n)),
            Value::Object(o) => {
                if placeholder_num(v).is_some_and(|k| k < n_att) {
                    *n += 1;
                } else {
                    o.values().for_each(|x| walk(x, n_att, n));
                }
            }
            _ => {}
        }
    }
    let mut n = 0;
    args.iter().for_each(|a| walk(a, n_att, &mut n));
    n
}

/// Encodes an event (`name` first, then the arguments, then an optional
/// extra trailing argument such as a recovery offset).
pub fn encode_event(
    ns: &str,
    name: &str,
    payload: &Payload,
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    encode_array(PacketKind::Event, ns, Some(name), payload, id, extra)
}

/// Encodes an acknowledgement.
pub fn encode_ack(ns: &str, id: u64, payload: &Payload) -> Encoded {
    encode_array(PacketKind::Ack, ns, None, payload, Some(id), None)
}

fn encode_array(
    kind: PacketKind,
    ns: &str,
    name: Option<&str>,
    payload: &Payload,
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    let count = if payload.attachments.is_empty() {
        0
    } else {
        count_placeholders(&payload.args, payload.attachments.len())
    };
    let mut fb = FrameBuilder::message(64);
    let b = fb.buf();
    header(b, kind, count, ns, id);
    b.put_u8(b'[');
    let mut first = true;
    if let Some(name) = name {
        write_str(b, name);
        first = false;
    }
    let mut order = Vec::with_capacity(count);
    for a in &payload.args {
        if !first {
            b.put_u8(b',');
        }
        first = false;
        write_json(b, a, &mut order, payload.attachments.len());
    }
    if let Some(extra) = extra {
        if !first {
            b.put_u8(b',');
        }
        write_str(b, extra);
    }
    b.put_u8(b']');
    let mut frames = Vec::with_capacity(1 + order.len());
    frames.push(fb.finish());
    for n in order {
        let data = payload.attachments.get(n).map(|d| &d[..]).unwrap_or(&[]);
        frames.push(Frame::binary(data));
    }
    Encoded { frames }
}

/// Encodes a CONNECT answer, DISCONNECT or CONNECT_ERROR with optional JSON data.
pub fn encode_control(kind: PacketKind, ns: &str, data: Option<&Value>) -> Frame {
    let mut fb = FrameBuilder::message(32);
    let b = fb.buf();
    header(b, kind, 0, ns, None);
    if let Some(d) = data {
        let mut order = Vec::new();
        write_json(b, d, &mut order, 0);
    }
    fb.finish()
}
