//! Encoding: the packet map in the key order `type`, `data`, `nsp`, `id`
//! (python-socketio's order; decoders do not depend on it), each value in
//! the encoding notepack.io would pick for it.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Number, Value};

use super::super::{placeholder_num, Encoded, PacketKind, Payload};
use crate::engine::{Frame, FrameBuilder};

fn put_uint(b: &mut BytesMut, n: u64) {
    match n {
        0..=0x7f => b.put_u8(n as u8),
        0x80..=0xff => {
            b.put_u8(0xcc);
            b.put_u8(n as u8);
        }
        0x100..=0xffff => {
            b.put_u8(0xcd);
            b.put_u16(n as u16);
        }
        0x1_0000..=0xffff_ffff => {
            b.put_u8(0xce);
            b.put_u32(n as u32);
        }
        _ => {
            b.put_u8(0xcf);
            b.put_u64(n);
        }
    }
}

fn put_int(b: &mut BytesMut, n: i64) {
    if n >= 0 {
        return put_uint(b, n as u64);
    }
    match n {
        -0x20..=-1 => b.put_i8(n as i8),
        -0x80..=-0x21 => {
            b.put_u8(0xd0);
            b.put_i8(n as i8);
        }
        -0x8000..=-0x81 => {
            b.put_u8(0xd1);
            b.put_i16(n as i16);
        }
        -0x8000_0000..=-0x8001 => {
            b.put_u8(0xd2);
            b.put_i32(n as i32);
        }
        _ => {
            b.put_u8(0xd3);
            b.put_i64(n);
        }
    }
}

/// A length with its three markers (8-bit form only where msgpack has one).
fn put_len(b: &mut BytesMut, len: usize, fix: Option<(u8, usize)>, markers: [u8; 3]) {
    match fix {
        Some((base, max)) if len <= max => b.put_u8(base | len as u8),
        _ if len <= 0xff && markers[0] != 0 => {
            b.put_u8(markers[0]);
            b.put_u8(len as u8);
        }
        _ if len <= 0xffff => {
            b.put_u8(markers[1]);
            b.put_u16(len as u16);
        }
        _ => {
            b.put_u8(markers[2]);
            b.put_u32(len as u32);
        }
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    put_len(b, s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb]);
    b.extend_from_slice(s.as_bytes());
}

fn put_bin(b: &mut BytesMut, data: &[u8]) {
    put_len(b, data.len(), None, [0xc4, 0xc5, 0xc6]);
    b.extend_from_slice(data);
}

fn put_array_len(b: &mut BytesMut, len: usize) {
    put_len(b, len, Some((0x90, 15)), [0, 0xdc, 0xdd]);
}

fn put_map_len(b: &mut BytesMut, len: usize) {
    put_len(b, len, Some((0x80, 15)), [0, 0xde, 0xdf]);
}

fn put_number(b: &mut BytesMut, n: &Number) {
    if let Some(u) = n.as_u64() {
        put_uint(b, u);
    } else if let Some(i) = n.as_i64() {
        put_int(b, i);
    } else if let Some(f) = n.as_f64() {
        b.put_u8(0xcb);
        b.put_f64(f);
    } else {
        // Out of f64's range: what JSON.parse would make of it is not
        // representable either.
        b.put_u8(0xc0);
    }
}

/// Writes `v`; a placeholder pointing at one of `atts` becomes that `bin`.
fn put_value(b: &mut BytesMut, v: &Value, atts: &[Bytes]) {
    match v {
        Value::Null => b.put_u8(0xc0),
        Value::Bool(x) => b.put_u8(if *x { 0xc3 } else { 0xc2 }),
        Value::Number(n) => put_number(b, n),
        Value::String(s) => put_str(b, s),
        Value::Array(a) => {
            put_array_len(b, a.len());
            a.iter().for_each(|x| put_value(b, x, atts));
        }
        Value::Object(o) => {
            if let Some(data) = placeholder_num(v).and_then(|n| atts.get(n)) {
                return put_bin(b, data);
            }
            put_map_len(b, o.len());
            for (k, x) in o {
                put_str(b, k);
                put_value(b, x, atts);
            }
        }
    }
}

/// Appends `v` as msgpack (the encoding notepack.io picks), each
/// placeholder pointing at one of `atts` as that `bin`: a cluster adapter's
/// envelope.
pub fn encode_value(b: &mut BytesMut, v: &Value, atts: &[Bytes]) {
    put_value(b, v, atts)
}

/// The packet's map up to its `data` value (written by the caller when
/// `has_data`), then `nsp` and `id` are added by [`finish`].
fn start(kind: PacketKind, has_data: bool, id: Option<u64>, capacity: usize) -> FrameBuilder {
    let mut fb = FrameBuilder::binary(24 + capacity);
    let b = fb.buf();
    put_map_len(b, 2 + usize::from(has_data) + usize::from(id.is_some()));
    put_str(b, "type");
    let t = match kind {
        PacketKind::BinaryEvent => PacketKind::Event,
        PacketKind::BinaryAck => PacketKind::Ack,
        k => k,
    };
    put_uint(b, u64::from(t.as_char() - b'0'));
    if has_data {
        put_str(b, "data");
    }
    fb
}

fn finish(mut fb: FrameBuilder, ns: &str, id: Option<u64>) -> Frame {
    let b = fb.buf();
    put_str(b, "nsp");
    put_str(b, ns);
    if let Some(id) = id {
        put_str(b, "id");
        put_uint(b, id);
    }
    fb.finish()
}

/// Encodes an event (`name` given: `data` is `[name, ...args, extra?]`) or
/// an ack (`[...args]`); use it through [`Parser::Msgpack`](super::super::Parser).
pub(crate) fn encode_array(
    kind: PacketKind,
    ns: &str,
    name: Option<&str>,
    payload: &Payload,
    id: Option<u64>,
    extra: Option<&str>,
) -> Encoded {
    let binary: usize = payload.attachments.iter().map(Bytes::len).sum();
    let mut fb = start(kind, true, id, 64 + binary);
    let b = fb.buf();
    let len = usize::from(name.is_some()) + payload.args.len() + usize::from(extra.is_some());
    put_array_len(b, len);
    if let Some(name) = name {
        put_str(b, name);
    }
    for a in &payload.args {
        put_value(b, a, &payload.attachments);
    }
    if let Some(extra) = extra {
        put_str(b, extra);
    }
    Encoded {
        frames: vec![finish(fb, ns, id)],
    }
}

/// Encodes a CONNECT answer, DISCONNECT or CONNECT_ERROR.
pub(crate) fn encode_control(kind: PacketKind, ns: &str, data: Option<&Value>) -> Frame {
    let mut fb = start(kind, data.is_some(), None, 32);
    if let Some(d) = data {
        put_value(fb.buf(), d, &[]);
    }
    finish(fb, ns, None)
}
