//! Unit tests of the JSON codec.

use super::*;
use crate::engine::Frame;
use serde_json::json;

#[test]
fn reserved_events_are_the_references() {
    assert_eq!(
        RESERVED_EVENTS,
        [
            "connect",
            "connect_error",
            "disconnect",
            "disconnecting",
            "newListener",
            "removeListener"
        ]
    );
}

fn dec(s: &str) -> Result<Packet, ParseError> {
    Packet::decode(s, &Limits::default())
}

fn text(f: &Frame) -> String {
    String::from_utf8(f.payload()[1..].to_vec()).unwrap()
}

#[test]
fn decodes_every_type() {
    let p = dec("0").unwrap();
    assert_eq!(
        (p.kind, p.ns.as_str(), p.data),
        (PacketKind::Connect, "/", None)
    );
    let p = dec("0/admin,{\"token\":\"x\"}").unwrap();
    assert_eq!(p.ns, "/admin");
    assert_eq!(p.data, Some(json!({"token": "x"})));
    assert_eq!(dec("0/custom").unwrap().ns, "/custom");
    assert_eq!(dec("1/admin,").unwrap().kind, PacketKind::Disconnect);
    assert_eq!(dec("1/admin").unwrap().ns, "/admin");
    let p = dec("2[\"hello\",1]").unwrap();
    assert_eq!(p.event_name().as_deref(), Some("hello"));
    let p = dec("2/chat,12[\"hi\"]").unwrap();
    assert_eq!((p.ns.as_str(), p.id), ("/chat", Some(12)));
    assert_eq!(dec("3/chat,7[]").unwrap().id, Some(7));
    let p = dec("51-[\"up\",{\"_placeholder\":true,\"num\":0}]").unwrap();
    assert_eq!((p.kind, p.attachment_count), (PacketKind::BinaryEvent, 1));
    let p = dec("62-/x,9[{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]")
        .unwrap();
    assert_eq!(
        (p.kind, p.id, p.attachment_count),
        (PacketKind::BinaryAck, Some(9), 2)
    );
    assert!(dec("2[1,\"x\"]").is_ok());
}

#[test]
fn refuses_malformed() {
    use ParseError::*;
    let cases: &[(&str, ParseError)] = &[
        ("", Empty),
        ("7", UnknownType),
        ("abc", UnknownType),
        ("0[]", BadPayload),
        ("0\"x\"", BadPayload),
        ("1{}", BadPayload),
        ("2{}", BadPayload),
        ("2[]", BadPayload),
        ("2[\"connect\"]", BadPayload),
        ("2[\"disconnecting\"]", BadPayload),
        ("2[null]", BadPayload),
        ("2abc[\"x\"]", InvalidJson),
        ("2[\"x\"]x", InvalidJson),
        ("3[]", BadPayload),
        ("31{}", BadPayload),
        ("4{\"message\":\"x\"}", NotAllowed),
        ("5[\"x\"]", BadAttachmentCount),
        ("50-[\"x\"]", BadAttachmentCount),
        ("511-[\"x\"]", TooManyAttachments),
        (
            "51-[\"x\",{\"_placeholder\":true,\"num\":1}]",
            BadPlaceholder,
        ),
        (
            "51-[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]",
            BadPlaceholder,
        ),
        ("299999999999999999999[\"x\"]", BadAckId),
    ];
    for (input, want) in cases {
        assert_eq!(dec(input).as_ref().err(), Some(want), "input {input:?}");
    }
    let deep = format!("2[\"x\",{}{}]", "[".repeat(40), "]".repeat(40));
    assert_eq!(dec(&deep).err(), Some(TooDeep));
    let long_ns = format!("0/{},", "a".repeat(300));
    assert_eq!(dec(&long_ns).err(), Some(BadNamespace));
}

#[test]
fn keeps_key_order_and_number_spelling() {
    let p = dec("2[\"m\",{\"b\":1,\"a\":1.50,\"3\":[true]},1e+21,-0.0]").unwrap();
    let payload = p.into_payload();
    let e = encode_event("/", "m", &payload, None, None);
    assert_eq!(
        text(&e.frames[0]),
        "2[\"m\",{\"b\":1,\"a\":1.50,\"3\":[true]},1e+21,-0.0]"
    );
}

#[test]
fn encodes_namespaces_acks_and_binary() {
    let mut p = Payload::default();
    let ph = p.add_binary(Bytes::from_static(b"\x01\x02"));
    p.args.push(json!({"file": ph, "n": 1}));
    let e = encode_event("/admin", "up", &p, Some(3), None);
    assert_eq!(
        text(&e.frames[0]),
        "51-/admin,3[\"up\",{\"file\":{\"_placeholder\":true,\"num\":0},\"n\":1}]"
    );
    assert_eq!(e.frames[1].payload(), b"\x01\x02");
    assert!(e.frames[1].is_binary());
    let a = encode_ack("/", 5, &Payload::default());
    assert_eq!(text(&a.frames[0]), "35[]");
    let c = encode_control(PacketKind::Connect, "/x", Some(&json!({"sid": "abc"})));
    assert_eq!(text(&c), "0/x,{\"sid\":\"abc\"}");
    let d = encode_control(PacketKind::Disconnect, "/", None);
    assert_eq!(text(&d), "1");
    let r = encode_event("/", "e", &Payload::one(json!(1)), None, Some("off1"));
    assert_eq!(text(&r.frames[0]), "2[\"e\",1,\"off1\"]");
}

#[test]
fn placeholder_shaped_data_without_attachments_stays_text() {
    let p = dec("2[\"x\",{\"_placeholder\":true,\"num\":0}]").unwrap();
    let e = encode_event("/", "x", &p.into_payload(), None, None);
    assert_eq!(e.frames.len(), 1);
    assert_eq!(
        text(&e.frames[0]),
        "2[\"x\",{\"_placeholder\":true,\"num\":0}]"
    );
}

#[test]
fn renumbers_out_of_order_placeholders() {
    let mut p =
        dec("52-[\"x\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]")
            .unwrap();
    p.attachments = vec![Bytes::from_static(b"A"), Bytes::from_static(b"B")];
    let payload = p.into_payload();
    let e = encode_event("/", "x", &payload, None, None);
    assert_eq!(
        text(&e.frames[0]),
        "52-[\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"
    );
    assert_eq!(e.frames[1].payload(), b"B");
    assert_eq!(e.frames[2].payload(), b"A");
}
