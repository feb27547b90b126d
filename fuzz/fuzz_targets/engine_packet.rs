//! The Engine.IO packet decoder, text and binary.
//!
//! Input: one mode byte, then the packet. Mode 0 decodes a WebSocket text
//! frame's payload (no `b` packets), mode 1 one record of a long-polling
//! payload (`b<base64>` allowed), mode 2 raw base64. Whatever decodes must
//! re-encode to an equivalent packet: text packets byte for byte, binary
//! packets to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::packet::{base64_decode, decode_payload};
use rollcall::engine::{Frame, Packet, Utf8Bytes};
use rollcall_fuzz::reencode;

/// The frame's WebSocket header must announce exactly its payload.
fn check_frame(f: &Frame) {
    let ws = f.ws_bytes();
    assert_eq!(ws[0], if f.is_binary() { 0x82 } else { 0x81 });
    let (hlen, len) = match ws[1] {
        126 => (4, u16::from_be_bytes([ws[2], ws[3]]) as usize),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&ws[2..10]);
            (10, u64::from_be_bytes(n) as usize)
        }
        n => (2, n as usize),
    };
    assert_eq!(ws.len(), hlen + len);
    assert_eq!(&ws[hlen..], f.payload());
    assert_eq!(f.len(), len);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 | 1 => {
            let allow_base64 = mode % 3 == 1;
            let Ok(text) = Utf8Bytes::try_from(Bytes::copy_from_slice(rest)) else {
                return;
            };
            let Ok(p) = Packet::decode_text(text, allow_base64) else {
                return;
            };
            let f = reencode(&p);
            check_frame(&f);
            match &p {
                // Packets with data keep it verbatim.
                Packet::Ping(_) | Packet::Pong(_) | Packet::Message(_) => {
                    assert_eq!(f.payload(), rest)
                }
                Packet::Binary(_) => assert!(allow_base64 && rest[0] == b'b'),
                _ => assert_eq!(f.payload()[0], rest[0]),
            }
            // Through a long-polling payload and back.
            let mut body = Vec::new();
            f.write_polling(&mut body);
            let (again, err) = decode_payload(Bytes::from(body));
            if !matches!(&p, Packet::Message(t) | Packet::Ping(t) | Packet::Pong(t) if t.as_str().contains('\u{1e}'))
            {
                assert_eq!(err, None);
                assert_eq!(again, vec![p]);
            }
        }
        _ => {
            if let Ok(b) = base64_decode(rest) {
                let f = Frame::binary(&b);
                check_frame(&f);
                let mut body = Vec::new();
                f.write_polling(&mut body);
                let (again, err) = decode_payload(Bytes::from(body));
                assert_eq!(err, None);
                assert_eq!(again, vec![Packet::Binary(b)]);
            }
        }
    }
});
