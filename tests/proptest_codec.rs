//! Property tests of the Engine.IO and Socket.IO codecs (issue #5).
//!
//! - every Engine.IO packet survives encoding and decoding, over WebSocket
//!   (text or binary frame) and as a long-polling record;
//! - a long-polling payload splits back into the packets it was made of;
//! - every Socket.IO packet survives encoding and decoding: any namespace,
//!   ack id, nested JSON, binary attachments anywhere in the arguments (and
//!   given in any order);
//! - decoding arbitrary strings and bytes returns a packet or an error,
//!   never panics;
//! - each decoder limit is enforced exactly, with its own error.
//!
//! Case counts are set per block so the whole file stays within a few
//! seconds in a debug build.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rollcall::engine::frame::WsDecoder;
use rollcall::engine::packet::testing::reencode as eio_frame;
use rollcall::engine::packet::{decode_payload, encode_payload};
use rollcall::engine::{DecodeError, Frame, Packet as EioPacket, Utf8Bytes};
use rollcall::socketio::packet::{
    encode_ack, encode_control, encode_event, placeholder_num, Packet, PacketKind, ParseError,
};
use rollcall::socketio::{Limits, Payload};
use serde_json::{Map, Value};

mod codec_gen;
use codec_gen::*;

// ---------------------------------------------------------------------------
// Engine.IO
// ---------------------------------------------------------------------------

/// Any Engine.IO packet; `sep` allows the record separator inside text.
fn eio_packet(sep: bool) -> impl Strategy<Value = EioPacket> {
    let text = if sep {
        any::<String>().boxed()
    } else {
        any::<String>()
            .prop_map(|s| s.replace('\u{1e}', ""))
            .boxed()
    };
    let t = move || text.clone().prop_map(Utf8Bytes::from);
    prop_oneof![
        Just(EioPacket::Open),
        Just(EioPacket::Close),
        t().prop_map(EioPacket::Ping),
        t().prop_map(EioPacket::Pong),
        t().prop_map(EioPacket::Message),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| EioPacket::Binary(Bytes::from(b))),
        Just(EioPacket::Upgrade),
        Just(EioPacket::Noop),
    ]
}

/// Splits a server WebSocket frame into (opcode, payload), checking its header.
fn ws_payload(f: &Frame) -> (u8, &[u8]) {
    let ws = f.ws_bytes();
    let (hlen, len) = match ws[1] {
        126 => (4, u16::from_be_bytes([ws[2], ws[3]]) as usize),
        127 => (
            10,
            u64::from_be_bytes(ws[2..10].try_into().unwrap()) as usize,
        ),
        n => (2, n as usize),
    };
    assert_eq!(ws[1] & 0x80, 0, "server frames are unmasked");
    assert_eq!(ws.len(), hlen + len, "header length matches the payload");
    (ws[0], &ws[hlen..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn eio_packet_roundtrip(p in eio_packet(true)) {
        let f = eio_frame(&p);
        // Over WebSocket: a text frame decodes to the packet, a binary frame carries the bytes.
        let (first, payload) = ws_payload(&f);
        match &p {
            EioPacket::Binary(b) => {
                prop_assert_eq!(first, 0x82);
                prop_assert_eq!(payload, &b[..]);
            }
            _ => {
                prop_assert_eq!(first, 0x81);
                let text = Utf8Bytes::try_from(Bytes::copy_from_slice(payload)).unwrap();
                prop_assert_eq!(EioPacket::decode_text(text, false), Ok(p.clone()));
            }
        }
        // As one long-polling record (binary as `b<base64>`).
        let mut record = Vec::new();
        f.write_polling(&mut record);
        let text = Utf8Bytes::try_from(Bytes::from(record)).unwrap();
        prop_assert_eq!(EioPacket::decode_text(text, true), Ok(p));
    }

    #[test]
    fn eio_payload_splits_into_its_packets(
        packets in proptest::collection::vec(eio_packet(false), 1..12)
    ) {
        let frames: Vec<Frame> = packets.iter().map(eio_frame).collect();
        let body = encode_payload(&frames);
        let (decoded, err) = decode_payload(Bytes::from(body));
        prop_assert_eq!(err, None);
        prop_assert_eq!(decoded, packets);
    }

    #[test]
    fn eio_decoders_never_panic(s in any::<String>(), raw in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = EioPacket::decode_text(Utf8Bytes::from(s.clone()), false);
        let _ = EioPacket::decode_text(Utf8Bytes::from(s), true);
        let (packets, err) = decode_payload(Bytes::from(raw.clone()));
        let records = raw.iter().filter(|&&b| b == 0x1e).count() + 1;
        prop_assert!(packets.len() + err.is_some() as usize <= records);
        // The WebSocket decoder, fed whole and byte by byte, agrees with itself.
        let mut whole = WsDecoder::new(64);
        let mut buf = BytesMut::from(&raw[..]);
        let mut a = Vec::new();
        let ea = loop {
            match whole.decode(&mut buf) {
                Ok(Some(ev)) => a.push(ev),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let mut bytewise = WsDecoder::new(64);
        let mut buf = BytesMut::new();
        let mut b = Vec::new();
        let mut eb = None;
        'feed: for &byte in &raw {
            buf.extend_from_slice(&[byte]);
            loop {
                match bytewise.decode(&mut buf) {
                    Ok(Some(ev)) => b.push(ev),
                    Ok(None) => break,
                    Err(e) => {
                        eb = Some(e);
                        break 'feed;
                    }
                }
            }
        }
        prop_assert_eq!(a, b);
        prop_assert_eq!(ea, eb);
    }
}

#[test]
fn eio_empty_record_is_an_error() {
    let (p, e) = decode_payload(Bytes::from_static(b"4a\x1e\x1e4b"));
    assert_eq!(p, vec![EioPacket::Message("a".into())]);
    assert_eq!(e, Some(DecodeError::Empty));
}

// ---------------------------------------------------------------------------
// Socket.IO
// ---------------------------------------------------------------------------

/// What a client does with the frames: decode the text, collect the attachments.
fn client_decode(frames: &[Frame]) -> Packet {
    let (first, rest) = frames.split_first().unwrap();
    assert!(!first.is_binary());
    let payload = first.payload();
    assert_eq!(payload[0], b'4');
    let text = std::str::from_utf8(&payload[1..]).unwrap();
    let limits = Limits {
        max_attachments: 1000,
        ..Limits::default()
    };
    let mut p =
        Packet::decode(text, &limits).unwrap_or_else(|e| panic!("{text:?} does not decode: {e}"));
    assert_eq!(
        rest.len(),
        p.attachment_count,
        "attachment frames for {text:?}"
    );
    for f in rest {
        assert!(f.is_binary());
        p.attachments.push(Bytes::copy_from_slice(f.payload()));
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sio_event_roundtrip(
        ns in namespace(),
        name in event_name(),
        id in proptest::option::of(ack_id()),
        (args, perm) in args_with_binaries(),
    ) {
        let payload = payload_of(&args, &perm);
        let enc = encode_event(&ns, &name, &payload, id, None);
        let got = client_decode(&enc.frames);
        prop_assert_eq!(got, expected(PacketKind::Event, &ns, id, Some(&name), &args));
    }

    #[test]
    fn sio_ack_roundtrip(
        ns in namespace(),
        id in ack_id(),
        (args, perm) in args_with_binaries(),
    ) {
        let payload = payload_of(&args, &perm);
        let enc = encode_ack(&ns, id, &payload);
        let got = client_decode(&enc.frames);
        prop_assert_eq!(got, expected(PacketKind::Ack, &ns, Some(id), None, &args));
    }

    #[test]
    fn sio_control_roundtrip(p in control_packet()) {
        let f = encode_control(p.kind, &p.ns, p.data.as_ref());
        prop_assert_eq!(client_decode(&[f]), p);
    }

    /// Arguments that merely look like placeholders travel as plain JSON
    /// when the payload has no attachments.
    #[test]
    fn sio_placeholder_lookalikes_without_attachments(
        num in any::<u32>(),
        extra in proptest::option::of(scalar()),
        name in event_name(),
    ) {
        let mut m = Map::new();
        m.insert("_placeholder".into(), Value::Bool(true));
        m.insert("num".into(), Value::from(num));
        if let Some(x) = extra {
            m.insert("x".into(), x);
        }
        let arg = Value::Object(m);
        let enc = encode_event("/", &name, &Payload::one(arg.clone()), None, None);
        prop_assert_eq!(enc.frames.len(), 1);
        let got = client_decode(&enc.frames);
        prop_assert_eq!(got.kind, PacketKind::Event);
        prop_assert_eq!(got.into_payload().args, vec![arg]);
    }
}

/// JSON where placeholder look-alikes can be anywhere: valid-shaped ones
/// with any `num`, and objects with `"_placeholder": true` beside other keys
/// (holding more values, look-alikes included).
fn lookalike_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => scalar(),
        2 => (0u64..6).prop_map(|n| serde_json::json!({"_placeholder": true, "num": n})),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            (
                any::<bool>(),
                proptest::collection::vec(("[a-z_]{1,3}", inner), 0..3)
            )
                .prop_map(|(flag, kv)| {
                    let mut m = Map::new();
                    if flag {
                        m.insert("_placeholder".into(), Value::Bool(true));
                    }
                    m.extend(kv);
                    Value::Object(m)
                }),
        ]
    })
}

/// The attachment count announced by an encoded packet's header.
fn header_count(f: &Frame) -> usize {
    let p = f.payload();
    if !matches!(p[1], b'5' | b'6') {
        return 0;
    }
    let digits: Vec<u8> = p[2..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).unwrap().parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the application puts in a payload, the header announces
    /// exactly the binary frames that follow (a mismatch would corrupt the
    /// client's stream for every later packet).
    #[test]
    fn sio_header_count_matches_binary_frames(
        args in proptest::collection::vec(lookalike_json(), 0..4),
        n_att in 0usize..4,
        ack in any::<bool>(),
    ) {
        let payload = Payload {
            args,
            attachments: (0..n_att).map(|i| Bytes::from(vec![i as u8])).collect(),
        };
        let enc = if ack {
            encode_ack("/", 1, &payload)
        } else {
            encode_event("/", "e", &payload, None, None)
        };
        prop_assert_eq!(header_count(&enc.frames[0]), enc.frames.len() - 1);
        prop_assert!(enc.frames[1..].iter().all(Frame::is_binary));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn sio_decoder_never_panics(s in any::<String>(), t in "[0-6][0-9-]{0,4}/?[a-z,]{0,4}[0-9]{0,3}[\\[\\]{}\",:a-z0-9_ ]{0,24}") {
        for text in [&s, &t] {
            if let Ok(p) = Packet::decode(text, &Limits::default()) {
                let _ = p.event_name();
                let _ = p.into_payload();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Limits: each enforced exactly, with its own error
// ---------------------------------------------------------------------------

fn nested(depth: usize) -> String {
    // `["e", [[...]]]`: the event array itself is one level.
    format!(
        "2[\"e\",{}{}]",
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn limit_json_depth(max in 1usize..60, depth in 2usize..80) {
        let limits = Limits { max_depth: max, ..Limits::default() };
        let r = Packet::decode(&nested(depth), &limits).map(|_| ());
        check_limit(depth <= max && depth <= 127, r, (), ParseError::TooDeep)?;
    }

    #[test]
    fn limit_attachments(max in 0usize..20, count in 1usize..40) {
        let limits = Limits { max_attachments: max, ..Limits::default() };
        let text = format!("5{count}-[\"e\"]");
        let r = Packet::decode(&text, &limits).map(|p| p.attachment_count);
        check_limit(count <= max, r, count, ParseError::TooManyAttachments)?;
    }

    #[test]
    fn limit_ack_id(max in any::<u64>(), id in any::<u64>()) {
        let limits = Limits { max_ack_id: max, ..Limits::default() };
        let r = Packet::decode(&format!("2{id}[\"e\"]"), &limits).map(|p| p.id);
        check_limit(id <= max, r, Some(id), ParseError::BadAckId)?;
    }

    #[test]
    fn limit_namespace_length(max in 1usize..300, len in 1usize..320) {
        let limits = Limits { max_namespace_len: max, ..Limits::default() };
        let ns = format!("/{}", "n".repeat(len - 1));
        let r = Packet::decode(&format!("0{ns},"), &limits).map(|p| p.ns);
        check_limit(len <= max, r, ns, ParseError::BadNamespace)?;
    }
}

#[test]
fn default_limits() {
    let l = Limits::default();
    assert_eq!(l.max_attachments, 10);
    assert_eq!(l.max_ack_id, (1 << 53) - 1);
    assert_eq!(l.max_namespace_len, 256);
    assert_eq!(l.max_depth, 32);
    // Binary placeholders: a placeholder must point at a declared attachment.
    assert!(placeholder_num(&serde_json::json!({"_placeholder": true, "num": 0})) == Some(0));
}

/// Found by `sio_header_count_matches_binary_frames`: an object holding
/// `"_placeholder": true` beside other keys is plain data, but the header
/// count skipped the real placeholders inside it while the encoder still
/// wrote their attachment frames (`2[...]` followed by a stray binary frame).
#[test]
fn placeholder_inside_a_placeholder_lookalike_is_counted() {
    let mut payload = Payload::default();
    let ph = payload.add_binary(Bytes::from_static(b"\x01"));
    payload
        .args
        .push(serde_json::json!({"_placeholder": true, "a": ph}));
    let enc = encode_event("/", "e", &payload, None, None);
    assert_eq!(enc.frames.len(), 2);
    assert_eq!(
        enc.frames[0].payload(),
        &b"451-[\"e\",{\"_placeholder\":true,\"a\":{\"_placeholder\":true,\"num\":0}}]"[..]
    );
    assert_eq!(header_count(&enc.frames[0]), 1);
}

/// `max_depth` above serde_json's own recursion limit acts as that limit:
/// JSON nested deeper than 127 levels is refused with `TooDeep` whatever
/// the setting (the parser never recurses further).
#[test]
fn json_depth_is_capped_by_the_parser() {
    let limits = Limits {
        max_depth: usize::MAX,
        ..Limits::default()
    };
    assert!(Packet::decode(&nested(127), &limits).is_ok());
    assert_eq!(
        Packet::decode(&nested(128), &limits).err(),
        Some(ParseError::TooDeep)
    );
    assert_eq!(
        Packet::decode(&nested(100_000), &limits).err(),
        Some(ParseError::TooDeep)
    );
}
