//! The Socket.IO packet decoder: every type, namespaces, ack ids,
//! attachment counts, placeholders, and the decoder limits.
//!
//! Input: four bytes choosing the limits, then the packet text. A decoded
//! packet must respect every limit, and encoding it again (with stand-in
//! attachments) must decode to the same packet: same type, namespace, ack
//! id and JSON, with each binary placeholder still pointing at the same
//! attachment.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::socketio::packet::{
    encode_ack, encode_control, encode_event, placeholder_num, Encoded, Packet, PacketKind,
};
use rollcall_fuzz::{json_depth, open_limits, sio_limits, Input};
use serde_json::Value;

/// Replaces every placeholder that points into `atts` by the bytes it stands for.
fn resolve(v: &Value, atts: &[Bytes]) -> Value {
    if let Some(n) = placeholder_num(v) {
        if let Some(b) = atts.get(n) {
            return Value::String(format!("<binary {:?}>", &b[..]));
        }
    }
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, atts)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve(x, atts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Decodes what the encoder wrote: the text frame, then its binary frames.
fn redecode(enc: &Encoded) -> Packet {
    let (first, rest) = enc.frames.split_first().expect("no frame");
    assert!(!first.is_binary());
    assert_eq!(first.payload()[0], b'4');
    let text = std::str::from_utf8(&first.payload()[1..]).expect("encoder wrote invalid UTF-8");
    let mut q = Packet::decode(text, &open_limits())
        .unwrap_or_else(|e| panic!("encoder output {text:?} does not decode: {e}"));
    assert_eq!(
        rest.len(),
        q.attachment_count,
        "header announces {} attachments, {} binary frames follow: {text:?}",
        q.attachment_count,
        rest.len()
    );
    for f in rest {
        assert!(f.is_binary());
        q.attachments.push(Bytes::copy_from_slice(f.payload()));
    }
    q
}

/// The attachment count an encoded packet's header announces.
fn header_count(text: &str) -> usize {
    match text.as_bytes().first() {
        Some(b'5' | b'6') => text[1..]
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("binary header without a count"),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let limits = sio_limits(&mut input);
    let extra = input.byte() as usize % 4;
    let text = String::from_utf8_lossy(input.rest());
    let Ok(p) = Packet::decode(&text, &limits) else {
        return;
    };
    // Framing: whatever the arguments hold (placeholder look-alikes
    // included) and however many attachments the payload has, the header
    // announces exactly the binary frames that follow.
    if matches!(
        p.kind,
        PacketKind::Event | PacketKind::BinaryEvent | PacketKind::Ack | PacketKind::BinaryAck
    ) {
        let mut payload = p.clone().into_payload();
        payload.attachments = (0..extra).map(|i| Bytes::from(vec![i as u8])).collect();
        let enc = if p.id.is_some() && matches!(p.kind, PacketKind::Ack | PacketKind::BinaryAck) {
            encode_ack(&p.ns, p.id.unwrap_or(0), &payload)
        } else {
            encode_event(&p.ns, "e", &payload, p.id, None)
        };
        let first = std::str::from_utf8(&enc.frames[0].payload()[1..]).expect("UTF-8");
        assert_eq!(header_count(first), enc.frames.len() - 1, "{first:?}");
    }
    // Limits.
    let binary = matches!(p.kind, PacketKind::BinaryEvent | PacketKind::BinaryAck);
    assert_eq!(binary, p.attachment_count > 0);
    assert!(p.attachment_count <= limits.max_attachments);
    assert!(p.id.is_none_or(|id| id <= limits.max_ack_id));
    assert!(p.ns == "/" || p.ns.len() <= limits.max_namespace_len);
    assert!(p.ns.starts_with('/'));
    assert!(p
        .data
        .as_ref()
        .is_none_or(|d| json_depth(d) <= limits.max_depth));
    assert!(p.attachments.is_empty());

    // Encode again and decode.
    let atts: Vec<Bytes> = (0..p.attachment_count)
        .map(|i| Bytes::from(vec![i as u8; i + 1]))
        .collect();
    match p.kind {
        PacketKind::Connect | PacketKind::Disconnect => {
            let f = encode_control(p.kind, &p.ns, p.data.as_ref());
            let q = redecode(&Encoded { frames: vec![f] });
            assert_eq!(q, p);
        }
        PacketKind::Event | PacketKind::BinaryEvent => {
            let Some(Value::String(name)) = p.data.as_ref().and_then(|d| d.get(0)).cloned() else {
                // Numeric event names come back as strings; nothing to compare.
                let _ = p.event_name();
                return;
            };
            let mut with = p.clone();
            with.attachments = atts.clone();
            let payload = with.into_payload();
            let q = redecode(&encode_event(&p.ns, &name, &payload, p.id, None));
            check_same(&p, &atts, &q);
        }
        PacketKind::Ack | PacketKind::BinaryAck => {
            let mut with = p.clone();
            with.attachments = atts.clone();
            let payload = with.into_payload();
            let q = redecode(&encode_ack(&p.ns, p.id.expect("ack without id"), &payload));
            check_same(&p, &atts, &q);
        }
        PacketKind::ConnectError => panic!("a client CONNECT_ERROR was accepted"),
    }
});

fn check_same(p: &Packet, atts: &[Bytes], q: &Packet) {
    assert_eq!(q.ns, p.ns);
    assert_eq!(q.id, p.id);
    let plain = |k| match k {
        PacketKind::BinaryEvent => PacketKind::Event,
        PacketKind::BinaryAck => PacketKind::Ack,
        k => k,
    };
    assert_eq!(plain(q.kind), plain(p.kind));
    assert_eq!(q.kind != plain(q.kind), q.attachment_count > 0);
    let want = p.data.as_ref().map(|d| resolve(d, atts));
    let got = q.data.as_ref().map(|d| resolve(d, &q.attachments));
    assert_eq!(got, want, "placeholders or JSON changed on re-encoding");
}
