//! Unit tests of the msgpack codec. The hex inputs are what
//! `notepack.io` (the npm parser's library) writes for the packets named.

use super::*;
use crate::engine::Frame;
use crate::socketio::packet::{Parser, Payload};
use serde_json::json;

fn hex(s: &str) -> Bytes {
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

fn dec(s: &str) -> Result<Packet, ParseError> {
    decode(&hex(s), &Limits::default())
}

fn hex_of(f: &Frame) -> String {
    assert!(f.is_binary());
    f.payload().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn decodes_what_socket_io_client_sends() {
    // {type:2, data:["hello",1,"x"], options:{compress:true}, nsp:"/"}
    let p = dec("84a47479706502a46461746193a568656c6c6f01a178a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f").unwrap();
    assert_eq!(
        (p.kind, p.ns.as_str(), p.id),
        (PacketKind::Event, "/", None)
    );
    assert_eq!(p.data, Some(json!(["hello", 1, "x"])));
    // {type:0, data:undefined, nsp:"/"}
    let p = dec("83a47479706500a464617461d40000a36e7370a12f").unwrap();
    assert_eq!((p.kind, p.data), (PacketKind::Connect, None));
    // {type:1, nsp:"/"}
    assert_eq!(
        dec("82a47479706501a36e7370a12f").unwrap().kind,
        PacketKind::Disconnect
    );
}

#[test]
fn binary_values_become_attachments_in_order() {
    // {type:2, data:["up", {file: Buffer[1,2,3], n:-5}, ArrayBuffer[9]], id:7, nsp:"/admin"}
    let p = dec("84a47479706502a46461746193a2757082a466696c65c403010203a16efbc7010009a2696407a36e7370a62f61646d696e").unwrap();
    assert_eq!(
        (p.kind, p.ns.as_str(), p.id, p.attachment_count),
        (PacketKind::BinaryEvent, "/admin", Some(7), 2)
    );
    let payload = p.into_payload();
    assert_eq!(payload.args[0]["n"], json!(-5));
    assert_eq!(
        &payload.binary(&payload.args[0]["file"]).unwrap()[..],
        b"\x01\x02\x03"
    );
    assert_eq!(&payload.binary(&payload.args[1]).unwrap()[..], b"\x09");
}

#[test]
fn dates_become_their_json_string() {
    // {type:2, data:["d", new Date(0)], nsp:"/"}
    let p = dec("83a47479706502a46461746192a164d7000000000000000000a36e7370a12f").unwrap();
    assert_eq!(p.data, Some(json!(["d", "1970-01-01T00:00:00.000Z"])));
    // new Date(1705314600123)
    let p = dec("83a47479706502a46461746192a164d7000000018d0cabc4bba36e7370a12f").unwrap();
    assert_eq!(p.data, Some(json!(["d", "2024-01-15T10:30:00.123Z"])));
}

#[test]
fn numbers_in_every_width() {
    // {type:3, data:[1.5, null, true, 300, -200, 70000, 2**40], id:12, nsp:"/"}
    let p = dec("84a47479706503a46461746197cb3ff8000000000000c0c3cd012cd1ff38ce00011170cf0000010000000000a269640ca36e7370a12f").unwrap();
    assert_eq!(p.id, Some(12));
    assert_eq!(
        p.data,
        Some(json!([1.5, null, true, 300, -200, 70000, 1u64 << 40]))
    );
}

#[test]
fn encodes_as_notepack_does() {
    // notepack.encode({type:3, data:[1.5,null,true,300,-200,70000,2**40], nsp:"/", id:12})
    // with the keys in our order.
    let payload = Payload::new(vec![
        json!(1.5),
        json!(null),
        json!(true),
        json!(300),
        json!(-200),
        json!(70000),
        json!(1u64 << 40),
    ]);
    let e = Parser::Msgpack.encode_ack("/", 12, &payload);
    assert_eq!(e.frames.len(), 1);
    assert_eq!(
        hex_of(&e.frames[0]),
        "84a47479706503a46461746197cb3ff8000000000000c0c3cd012cd1ff38ce00011170cf0000010000000000a36e7370a12fa269640c"
    );
    // {type:2, data:["s", "x"*40], nsp:"/"}: str 8 past 31 bytes.
    let e =
        Parser::Msgpack.encode_event("/", "s", &Payload::one(json!("x".repeat(40))), None, None);
    assert_eq!(
        hex_of(&e.frames[0]),
        "83a47479706502a46461746192a173d92878787878787878787878787878787878787878787878787878787878787878787878787878787878a36e7370a12f"
    );
    let c = Parser::Msgpack.encode_control(PacketKind::Disconnect, "/", None);
    assert_eq!(hex_of(&c), "82a47479706501a36e7370a12f");
}

#[test]
fn round_trips_binary_and_recovery_offsets() {
    let mut p = Payload::default();
    let ph = p.add_binary(Bytes::from_static(b"\x00\xff"));
    p.args.push(json!({"f": ph, "k": [1, "two"]}));
    let e = Parser::Msgpack.encode_event("/chat", "up", &p, Some(5), Some("off-1"));
    let back = decode(
        &Bytes::copy_from_slice(e.frames[0].payload()),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        (back.kind, back.ns.as_str(), back.id),
        (PacketKind::BinaryEvent, "/chat", Some(5))
    );
    assert_eq!(back.event_name().as_deref(), Some("up"));
    let got = back.into_payload();
    assert_eq!(got.args[1], json!("off-1"));
    assert_eq!(&got.binary(&got.args[0]["f"]).unwrap()[..], b"\x00\xff");
    assert_eq!(got.args[0]["k"], json!([1, "two"]));
}

#[test]
fn refuses_malformed() {
    use ParseError::*;
    let cases: &[(&str, ParseError)] = &[
        ("", InvalidMsgpack),
        ("93010203", UnknownType),
        ("81a36e7370a12f", UnknownType),
        ("82a47479706505a36e7370a12f", UnknownType),
        ("82a47479706504a36e7370a12f", NotAllowed),
        ("81a47479706502", BadNamespace),
        ("82a47479706501a36e737001", BadNamespace),
        // DISCONNECT with data, EVENT without an array, reserved name.
        ("83a47479706501a36e7370a12fa46461746190", BadPayload),
        ("83a47479706502a36e7370a12fa46461746180", BadPayload),
        (
            "83a47479706502a36e7370a12fa46461746191a7636f6e6e656374",
            BadPayload,
        ),
        // ACK without id; id negative.
        ("83a47479706503a36e7370a12fa46461746190", BadPayload),
        ("84a47479706503a36e7370a12fa46461746190a26964ff", BadAckId),
        // Truncated, trailing bytes, 0xc1, bad UTF-8, integer map key.
        ("82a47479706501a36e7370a1", InvalidMsgpack),
        ("82a47479706501a36e7370a12f00", InvalidMsgpack),
        ("82a474797065c1a36e7370a12f", InvalidMsgpack),
        ("82a47479706501a36e7370a1ff", InvalidMsgpack),
        (
            "83a47479706502a36e7370a12fa46461746192a165810100",
            InvalidMsgpack,
        ),
        // A Date before 1970 (fixext 8 type 0, -1 ms), another ext type.
        (
            "83a47479706502a46461746192a164d700ffffffffffffffffa36e7370a12f",
            UnsupportedMsgpackExt,
        ),
        (
            "83a47479706502a46461746192a164c7010509a36e7370a12f",
            UnsupportedMsgpackExt,
        ),
        // Duplicate key; a map shaped like a placeholder; binary in CONNECT.
        ("83a47479706501a47479706501a36e7370a12f", BadPayload),
        (
            "83a47479706502a36e7370a12fa46461746192a16582ac5f706c616365686f6c646572c3a36e756d00",
            BadPlaceholder,
        ),
        (
            "83a47479706500a36e7370a12fa46461746181a162c40101",
            BadPayload,
        ),
        // An array claiming more elements than bytes follow.
        (
            "83a47479706502a36e7370a12fa464617461ddffffffff",
            InvalidMsgpack,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(dec(input).as_ref().err(), Some(want), "input {input}");
    }
}

#[test]
fn enforces_the_limits() {
    let limits = Limits {
        max_depth: 3,
        max_attachments: 1,
        max_ack_id: 10,
        max_namespace_len: 4,
    };
    let d = |s: &str| decode(&hex(s), &limits).err();
    // data ["e", [[1]]] is 3 deep; ["e", [[[1]]]] is 4.
    assert_eq!(d("83a47479706502a36e7370a12fa46461746192a165919101"), None);
    assert_eq!(
        d("83a47479706502a36e7370a12fa46461746192a16591919101"),
        Some(ParseError::TooDeep)
    );
    // A binary value counts as a placeholder object: ["e", [[bin]]] is 4 deep.
    assert_eq!(
        d("83a47479706502a36e7370a12fa46461746192a1659191c40101"),
        Some(ParseError::TooDeep)
    );
    // Two binary values with max_attachments 1.
    assert_eq!(
        d("83a47479706502a36e7370a12fa46461746193a165c40101c40102"),
        Some(ParseError::TooManyAttachments)
    );
    assert_eq!(
        d("84a47479706503a36e7370a12fa46461746190a269640b"),
        Some(ParseError::BadAckId)
    );
    assert_eq!(
        d("82a47479706501a36e7370a52f61626364"),
        Some(ParseError::BadNamespace)
    );
    assert_eq!(d("82a47479706501a36e7370a42f616263"), None);
}

#[test]
fn nesting_is_capped_whatever_the_limit() {
    let limits = Limits {
        max_depth: usize::MAX,
        ..Limits::default()
    };
    let nested = |n: usize| {
        let mut b = hex("83a47479706502a36e7370a12fa46461746192a165").to_vec();
        b.extend(std::iter::repeat_n(0x91, n - 1));
        b.push(0x90);
        Bytes::from(b)
    };
    // The event array plus n levels.
    assert!(decode(&nested(126), &limits).is_ok());
    assert_eq!(
        decode(&nested(127), &limits).err(),
        Some(ParseError::TooDeep)
    );
    assert_eq!(
        decode(&nested(100_000), &limits).err(),
        Some(ParseError::TooDeep)
    );
}

#[test]
fn nested_length_claims_are_not_reserved_up_front() {
    // data: 30 nested arrays, each claiming as many elements as bytes
    // follow, then a megabyte of nils: only what really arrives is kept.
    let mut b = hex("83a47479706502a36e7370a12fa464617461").to_vec();
    const TOTAL: usize = 1 << 20;
    for level in 0..30 {
        let claim = (TOTAL - level * 5 - 5) as u32;
        b.push(0xdd);
        b.extend_from_slice(&claim.to_be_bytes());
    }
    b.resize(b.len() + TOTAL - 150, 0xc0);
    let started = std::time::Instant::now();
    assert_eq!(
        decode(&Bytes::from(b), &Limits::default()).err(),
        Some(ParseError::InvalidMsgpack)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
