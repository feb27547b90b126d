//! The server's WebSocket frame decoder (masking, lengths, fragmentation,
//! control frames, UTF-8, the message size limit).
//!
//! Input: two bytes of message limit, one byte of chunking seed, then the
//! raw bytes a client sends. The bytes are decoded once whole and once in
//! chunks; both must give the same events and the same error, and every
//! event must respect the limits.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::frame::{WsDecoder, WsError, WsEvent};
use rollcall_fuzz::Input;

fn run(
    max: usize,
    data: &[u8],
    chunks: &mut dyn FnMut() -> usize,
) -> (Vec<WsEvent>, Option<WsError>) {
    let mut dec = WsDecoder::new(max);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => {
                check_event(max, &ev);
                events.push(ev);
            }
            Ok(None) => {
                if fed == data.len() {
                    return (events, None);
                }
                let n = chunks().clamp(1, data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => return (events, Some(e)),
        }
    }
}

fn check_event(max: usize, ev: &WsEvent) {
    match ev {
        WsEvent::Text(t) => assert!(t.len() <= max),
        WsEvent::Binary(b) => assert!(b.len() <= max),
        WsEvent::Ping(p) => assert!(p.len() <= 125),
        WsEvent::Pong | WsEvent::Close(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = input.u16() as usize;
    let seed = input.byte();
    let raw = input.rest();
    let whole = run(max, raw, &mut || usize::MAX);
    let mut state = seed as usize;
    let chunked = run(max, raw, &mut || {
        state = state.wrapping_mul(31).wrapping_add(7);
        1 + state % 17
    });
    assert_eq!(whole, chunked);
});
