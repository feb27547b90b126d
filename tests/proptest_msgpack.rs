//! Property tests of the msgpack codec, like `proptest_codec.rs` for the
//! JSON one:
//!
//! - every event, ack and control packet survives encoding and decoding,
//!   with binary values anywhere (and attachments given in any order), and
//!   decodes to exactly the packet the JSON codec gives for it (so the layers
//!   above cannot tell the formats apart);
//! - every packet is one binary frame;
//! - decoding arbitrary bytes, and valid encodings cut short or with a byte
//!   changed, returns a packet or an error, never panics;
//! - each decoder limit is enforced exactly, with its own error.

use bytes::Bytes;
use proptest::prelude::*;
use rollcall::engine::Frame;
use rollcall::socketio::packet::{msgpack, Packet, PacketKind, ParseError, Parser};
use rollcall::socketio::{Limits, Payload};
use serde_json::Value;

mod codec_gen;
use codec_gen::*;

fn open_limits() -> Limits {
    Limits {
        max_attachments: 1000,
        ..Limits::default()
    }
}

/// What a msgpack client does with the frames: one binary message, decoded.
fn client_decode(frames: &[Frame]) -> Packet {
    assert_eq!(frames.len(), 1, "a msgpack packet is one message");
    assert!(frames[0].is_binary());
    let bytes = Bytes::copy_from_slice(frames[0].payload());
    msgpack::decode(&bytes, &open_limits())
        .unwrap_or_else(|e| panic!("{bytes:02x?} does not decode: {e}"))
}

/// The JSON codec's reading of the same packet.
fn json_decode(frames: &[Frame]) -> Packet {
    let text = std::str::from_utf8(&frames[0].payload()[1..]).unwrap();
    let mut p = Packet::decode(text, &open_limits()).unwrap();
    p.attachments = frames[1..]
        .iter()
        .map(|f| Bytes::copy_from_slice(f.payload()))
        .collect();
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_event_roundtrip(
        ns in namespace(),
        name in event_name(),
        id in proptest::option::of(ack_id()),
        (args, perm) in args_with_binaries(),
    ) {
        let payload = payload_of(&args, &perm);
        let got = client_decode(&Parser::Msgpack.encode_event(&ns, &name, &payload, id, None).frames);
        prop_assert_eq!(&got, &expected(PacketKind::Event, &ns, id, Some(&name), &args));
        let json = json_decode(&Parser::Json.encode_event(&ns, &name, &payload, id, None).frames);
        prop_assert_eq!(got, json);
    }

    #[test]
    fn msgpack_ack_roundtrip(
        ns in namespace(),
        id in ack_id(),
        (args, perm) in args_with_binaries(),
    ) {
        let payload = payload_of(&args, &perm);
        let got = client_decode(&Parser::Msgpack.encode_ack(&ns, id, &payload).frames);
        prop_assert_eq!(&got, &expected(PacketKind::Ack, &ns, Some(id), None, &args));
        let json = json_decode(&Parser::Json.encode_ack(&ns, id, &payload).frames);
        prop_assert_eq!(got, json);
    }

    #[test]
    fn msgpack_control_roundtrip(p in control_packet()) {
        let f = Parser::Msgpack.encode_control(p.kind, &p.ns, p.data.as_ref());
        prop_assert_eq!(client_decode(&[f]), p);
    }

    /// A recovery offset travels as the last argument, after any binary.
    #[test]
    fn msgpack_event_with_offset(
        name in event_name(),
        (args, perm) in args_with_binaries(),
        offset in "[A-Za-z0-9_-]{1,24}",
    ) {
        let payload = payload_of(&args, &perm);
        let enc = Parser::Msgpack.encode_event("/", &name, &payload, None, Some(&offset));
        let got = client_decode(&enc.frames).into_payload();
        prop_assert_eq!(got.args.last(), Some(&Value::String(offset)));
        prop_assert_eq!(got.args.len(), args.len() + 1);
    }
}

/// Bytes that look like packets: valid encodings, then cut short or with a
/// byte replaced.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (
        event_name(),
        args_with_binaries(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(name, (args, perm), at, byte, cut)| {
            let payload = payload_of(&args, &perm);
            let enc = Parser::Msgpack.encode_event("/", &name, &payload, Some(1), None);
            let mut b = enc.frames[0].payload().to_vec();
            let i = at.index(b.len());
            if cut {
                b.truncate(i);
            } else {
                b[i] = byte;
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_decoder_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        near in mangled(),
    ) {
        for b in [raw, near] {
            if let Ok(p) = msgpack::decode(&Bytes::from(b), &Limits::default()) {
                let _ = p.event_name();
                let _ = p.into_payload();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Limits: each enforced exactly, with its own error
// ---------------------------------------------------------------------------

/// `{type: 2, nsp: "/", data: ["e", [[...]]]}` with the event array as one
/// level of `depth`.
fn nested(depth: usize) -> Bytes {
    let mut v = Value::Array(vec![]);
    for _ in 2..depth {
        v = Value::Array(vec![v]);
    }
    let enc = Parser::Msgpack.encode_event("/", "e", &Payload::one(v), None, None);
    Bytes::copy_from_slice(enc.frames[0].payload())
}

fn event_with(payload: &Payload, id: Option<u64>, ns: &str) -> Bytes {
    let enc = Parser::Msgpack.encode_event(ns, "e", payload, id, None);
    Bytes::copy_from_slice(enc.frames[0].payload())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn limit_msgpack_depth(max in 1usize..60, depth in 2usize..80) {
        let limits = Limits { max_depth: max, ..Limits::default() };
        let r = msgpack::decode(&nested(depth), &limits).map(|_| ());
        check_limit(depth <= max, r, (), ParseError::TooDeep)?;
    }

    #[test]
    fn limit_msgpack_binary_values(max in 0usize..20, count in 1usize..40) {
        let limits = Limits { max_attachments: max, ..Limits::default() };
        let mut payload = Payload::default();
        for i in 0..count {
            let ph = payload.add_binary(Bytes::from(vec![i as u8]));
            payload.args.push(ph);
        }
        let r = msgpack::decode(&event_with(&payload, None, "/"), &limits).map(|p| p.attachment_count);
        check_limit(count <= max, r, count, ParseError::TooManyAttachments)?;
    }

    #[test]
    fn limit_msgpack_ack_id(max in any::<u64>(), id in any::<u64>()) {
        let limits = Limits { max_ack_id: max, ..Limits::default() };
        let r = msgpack::decode(&event_with(&Payload::default(), Some(id), "/"), &limits).map(|p| p.id);
        check_limit(id <= max, r, Some(id), ParseError::BadAckId)?;
    }

    #[test]
    fn limit_msgpack_namespace_length(max in 1usize..300, len in 1usize..320) {
        let limits = Limits { max_namespace_len: max, ..Limits::default() };
        let ns = format!("/{}", "n".repeat(len - 1));
        let r = msgpack::decode(&event_with(&Payload::default(), None, &ns), &limits).map(|p| p.ns);
        check_limit(len <= max, r, ns, ParseError::BadNamespace)?;
    }
}

/// As for JSON, nesting past 127 levels is refused whatever `max_depth` says.
#[test]
fn msgpack_depth_is_capped() {
    let limits = Limits {
        max_depth: usize::MAX,
        ..Limits::default()
    };
    assert!(msgpack::decode(&nested(127), &limits).is_ok());
    assert_eq!(
        msgpack::decode(&nested(128), &limits).err(),
        Some(ParseError::TooDeep)
    );
}
