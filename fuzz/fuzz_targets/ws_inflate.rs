//! The permessage-deflate inflater (`engine::deflate::Inflater`) and the
//! decoder path that uses it (`WsDecoder::with_deflate`): arbitrary DEFLATE
//! data, zip bombs, truncated and corrupt streams, messages that refer back
//! to earlier ones (context takeover).
//!
//! Input: two bytes of inflated-size limit, one flag byte (bit 0:
//! `client_no_context_takeover`), one byte where the data splits into two
//! messages, then the raw DEFLATE data of the client's messages.
//!
//! Checks: the bounded inflater agrees with an unbounded one (same output
//! when it fits, `TooBig` exactly when it does not); nothing over the limit
//! is ever returned; the decoder, given the same messages as RSV1 frames,
//! yields the same messages or stops at the same error; and anything the
//! server compresses inflates back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::deflate::{compress_message, Inflater};
use rollcall::engine::frame::{WsDecoder, WsError, WsEvent};
use rollcall_fuzz::{client_frame, Input};

/// Far above any limit the input can choose, so "unbounded" here.
const HUGE: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = input.u16() as usize;
    let no_ctx = input.byte() & 1 == 1;
    let split = input.byte() as usize;
    let raw = input.rest();
    let cut = split.min(raw.len());
    let messages = [&raw[..cut], &raw[cut..]];

    // The bounded inflater against an unbounded one, message by message.
    let mut bounded = Inflater::new(no_ctx);
    let mut unbounded = Inflater::new(no_ctx);
    let mut expected = Vec::new();
    for m in messages {
        let full = unbounded.inflate(m, HUGE);
        let got = bounded.inflate(m, max);
        match (&full, &got) {
            (Ok(f), Ok(g)) => assert_eq!(f, g),
            (Ok(f), Err(e)) => {
                assert!(f.len() > max, "refused {} bytes under {max}: {e:?}", f.len());
            }
            (Err(_), Ok(g)) => panic!("bounded inflated {} bytes of a bad stream", g.len()),
            (Err(_), Err(_)) => {}
        }
        if let Ok(g) = &got {
            assert!(g.len() <= max);
        }
        expected.push(got.map_err(WsError::from));
        if full.is_err() || expected.last().is_some_and(Result::is_err) {
            break;
        }
    }

    // The decoder path: the same messages as compressed binary frames
    // (while their compressed size is within the limit too).
    let mut dec_max = WsDecoder::with_deflate(max, no_ctx);
    let mut buf = BytesMut::new();
    for m in messages {
        let mut f = client_frame(true, 2, m, [9, 8, 7, 6]);
        f[0] |= 0x40;
        buf.extend_from_slice(&f);
    }
    if raw.len() <= max {
        for want in &expected {
            let ev = dec_max.decode(&mut buf);
            match (want, ev) {
                (Ok(w), Ok(Some(WsEvent::Binary(b)))) => assert_eq!(w, &b),
                (Err(w), Err(e)) => assert_eq!(*w, e),
                (w, e) => panic!("decoder {e:?}, inflater {w:?}"),
            }
        }
    }

    // What the server compresses inflates back, with or without context.
    if let Some(frame) = compress_message(0x82, raw) {
        assert_eq!(frame[0], 0xc2);
        let hlen = match frame[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        assert!(frame.len() - hlen < raw.len());
        for ctx in [false, true] {
            let back = Inflater::new(ctx).inflate(&frame[hlen..], raw.len()).unwrap();
            assert_eq!(&back[..], raw);
        }
    }
});
