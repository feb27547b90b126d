//! The long-polling payload decoder: record separators, `b<base64>`
//! packets, empty and huge parts.
//!
//! Odd mode byte: raw bytes as a POST body. The decoder returns the packets
//! before the first bad record and its error; a clean payload has one packet
//! per record and re-encodes to a payload that decodes to the same packets.
//!
//! Even mode byte: a payload built from parts (text, binary, control, empty,
//! huge text or binary), checked against the packets it was built from.
#![no_main]

use base64::Engine as _;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::packet::{decode_payload, encode_payload, RECORD_SEPARATOR};
use rollcall::engine::{DecodeError, Frame, Packet};
use rollcall_fuzz::{reencode, Input};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\u{1e}', "")
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte();
    if mode & 1 == 1 {
        let raw = input.rest();
        let records = raw.iter().filter(|&&b| b == RECORD_SEPARATOR).count() + 1;
        let (packets, err) = decode_payload(Bytes::copy_from_slice(raw));
        assert!(packets.len() <= records);
        if err.is_none() {
            assert_eq!(packets.len(), records);
            let frames: Vec<Frame> = packets.iter().map(reencode).collect();
            let body = encode_payload(&frames);
            let (again, err) = decode_payload(Bytes::from(body));
            assert_eq!(err, None);
            assert_eq!(again, packets);
        } else {
            assert!(packets.len() < records);
        }
        return;
    }
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut expected: Vec<Packet> = Vec::new();
    let mut expected_err = None;
    // Huge parts share a budget, so one input stays a few MB at most.
    let mut budget: usize = 4 << 20;
    while !input.is_empty() && parts.len() < 256 {
        let (part, packet) = match input.byte() % 7 {
            0 => {
                let t = text(input.chunk());
                (
                    format!("4{t}").into_bytes(),
                    Some(Packet::Message(t.into())),
                )
            }
            1 => {
                let b = input.chunk().to_vec();
                let enc = base64::engine::general_purpose::STANDARD.encode(&b);
                // Padding is optional on the way in.
                let enc = if input.byte() & 1 == 1 {
                    enc.trim_end_matches('=').to_string()
                } else {
                    enc
                };
                (
                    format!("b{enc}").into_bytes(),
                    Some(Packet::Binary(Bytes::from(b))),
                )
            }
            2 => {
                let t = text(input.chunk());
                match input.byte() % 6 {
                    0 => (format!("2{t}").into_bytes(), Some(Packet::Ping(t.into()))),
                    1 => (format!("3{t}").into_bytes(), Some(Packet::Pong(t.into()))),
                    2 => (b"1".to_vec(), Some(Packet::Close)),
                    3 => (b"5".to_vec(), Some(Packet::Upgrade)),
                    4 => (b"6".to_vec(), Some(Packet::Noop)),
                    _ => (b"0".to_vec(), Some(Packet::Open)),
                }
            }
            3 => (Vec::new(), None),
            4 => {
                let n = (1 + input.byte() as usize * 1024).min(budget);
                budget -= n;
                let c = (b'a' + input.byte() % 26) as char;
                let t = c.to_string().repeat(n);
                (
                    format!("4{t}").into_bytes(),
                    Some(Packet::Message(t.into())),
                )
            }
            5 => {
                let n = (1 + input.byte() as usize * 768).min(budget);
                budget -= n;
                let b = vec![input.byte(); n];
                let enc = base64::engine::general_purpose::STANDARD.encode(&b);
                (
                    format!("b{enc}").into_bytes(),
                    Some(Packet::Binary(Bytes::from(b))),
                )
            }
            _ => {
                // An unknown type digit.
                let c = b"789ac"[input.byte() as usize % 5];
                (vec![c], None)
            }
        };
        if expected_err.is_none() {
            match packet {
                Some(p) => expected.push(p),
                None if part.is_empty() => expected_err = Some(DecodeError::Empty),
                None => expected_err = Some(DecodeError::UnknownType(part[0])),
            }
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return;
    }
    let body = parts.join(&RECORD_SEPARATOR);
    let (packets, err) = decode_payload(Bytes::from(body));
    assert_eq!(err, expected_err);
    assert_eq!(packets, expected);
});
