//! The msgpack packet decoder (`socketio::packet::msgpack::decode`): the
//! envelope map, every msgpack type (bin, ext, fixext `undefined` and
//! Dates, floats, every integer and length width), and the decoder limits.
//!
//! Input: four bytes choosing the limits, then one binary message. A
//! decoded packet must respect every limit, and encoding it again must
//! decode to exactly the same packet (attachments included), with the
//! msgpack codec and, where the namespace can be written in the JSON
//! format, with the JSON codec too: the layers above must not be able to
//! tell the formats apart.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::socketio::packet::{msgpack, placeholder_num, Packet, PacketKind, Parser};
use rollcall_fuzz::{json_depth, open_limits, sio_limits, Input};
use serde_json::Value;

/// Every placeholder in `v`, depth-first.
fn placeholders(v: &Value, out: &mut Vec<usize>) {
    if let Some(n) = placeholder_num(v) {
        return out.push(n);
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| placeholders(x, out)),
        Value::Object(o) => o.values().for_each(|x| placeholders(x, out)),
        _ => {}
    }
}

/// Encodes `p` again with `parser` (None: nothing to compare, e.g. a
/// numeric event name, which comes back as a string).
fn reencode(parser: Parser, p: &Packet) -> Option<Vec<rollcall::engine::Frame>> {
    let payload = p.clone().into_payload();
    Some(match p.kind {
        PacketKind::Connect | PacketKind::Disconnect => {
            vec![parser.encode_control(p.kind, &p.ns, p.data.as_ref())]
        }
        PacketKind::Event | PacketKind::BinaryEvent => {
            let Some(Value::String(name)) = p.data.as_ref().and_then(|d| d.get(0)) else {
                return None;
            };
            parser
                .encode_event(&p.ns, name, &payload, p.id, None)
                .frames
        }
        PacketKind::Ack | PacketKind::BinaryAck => {
            let id = p.id.expect("ack without id");
            parser.encode_ack(&p.ns, id, &payload).frames
        }
        PacketKind::ConnectError => panic!("a client CONNECT_ERROR was accepted"),
    })
}

/// What a JSON client reads from the frames: the text, then the attachments.
fn json_decode(frames: &[rollcall::engine::Frame]) -> Packet {
    let (first, rest) = frames.split_first().expect("no frame");
    let text = std::str::from_utf8(&first.payload()[1..]).expect("UTF-8");
    let mut q = Packet::decode(text, &open_limits())
        .unwrap_or_else(|e| panic!("JSON encoding {text:?} does not decode: {e}"));
    assert_eq!(q.attachment_count, rest.len(), "{text:?}");
    q.attachments = rest
        .iter()
        .map(|f| Bytes::copy_from_slice(f.payload()))
        .collect();
    q
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = sio_limits(&mut input);
    let msg = Bytes::copy_from_slice(input.rest());
    let Ok(p) = msgpack::decode(&msg, &limits) else {
        return;
    };

    // Limits, and the binary values as attachments.
    let binary = matches!(p.kind, PacketKind::BinaryEvent | PacketKind::BinaryAck);
    assert_eq!(binary, p.attachment_count > 0);
    assert_eq!(p.attachments.len(), p.attachment_count);
    assert!(p.attachment_count <= limits.max_attachments);
    assert!(p.id.is_none_or(|id| id <= limits.max_ack_id));
    assert!(p.ns.len() <= limits.max_namespace_len);
    assert!(p
        .data
        .as_ref()
        .is_none_or(|d| json_depth(d) <= limits.max_depth));
    let mut nums = Vec::new();
    if let Some(d) = &p.data {
        placeholders(d, &mut nums);
    }
    let want: Vec<usize> = (0..p.attachment_count).collect();
    assert_eq!(nums, want, "placeholders are not the attachments in order");

    // Encode again: the same packet, whatever the format.
    let Some(frames) = reencode(Parser::Msgpack, &p) else {
        return;
    };
    assert_eq!(frames.len(), 1);
    assert!(frames[0].is_binary());
    let again = Bytes::copy_from_slice(frames[0].payload());
    let q = msgpack::decode(&again, &open_limits())
        .unwrap_or_else(|e| panic!("msgpack re-encoding {again:02x?} does not decode: {e}"));
    assert_eq!(q, p, "msgpack re-encoding changed the packet");
    if p.ns == "/" || (p.ns.starts_with('/') && !p.ns.contains(',')) {
        let frames = reencode(Parser::Json, &p).expect("JSON re-encoding");
        assert_eq!(
            json_decode(&frames),
            p,
            "the JSON codec reads it differently"
        );
    }
});
