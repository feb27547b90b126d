//! Raw DEFLATE for permessage-deflate (RFC 7692 section 7.2): compressing
//! one outgoing message on its own, and the bounded inflater of a
//! connection's incoming messages.
//!
//! A compressed message is the deflate data of the payload, flushed with a
//! sync flush, without the trailing `00 00 ff ff` that the flush ends with;
//! the receiver appends those four bytes back before inflating.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::engine::packet::{ws_header, MAX_HEADER};

/// The end of a sync flush, stripped from each compressed message.
const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// RSV1: the "per-message compressed" bit of a message's first frame.
pub const RSV1: u8 = 0x40;

thread_local! {
    /// One deflater per thread, reset for each message (it holds a few
    /// hundred KB of tables: allocating one per message would cost more
    /// than compressing a small message).
    static DEFLATER: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
}

/// Compresses `payload` as one message on its own (no context carried over)
/// and returns the complete unmasked WebSocket frame, RSV1 set, with
/// `first_byte` (FIN and opcode) otherwise; `None` when compression would
/// not make the payload shorter (the frame is then sent as it is).
pub fn compress_message(first_byte: u8, payload: &[u8]) -> Option<Bytes> {
    DEFLATER.with(|d| {
        let mut d = d.borrow_mut();
        d.reset();
        // Header room first; compression stops once it is no shorter than the payload.
        let budget = MAX_HEADER + payload.len() + SYNC_TAIL.len();
        let mut out = Vec::with_capacity(budget);
        out.resize(MAX_HEADER, 0);
        loop {
            let (in0, out0) = (d.total_in(), d.total_out());
            let rest = &payload[in0 as usize..];
            d.compress_vec(rest, &mut out, FlushCompress::Sync).ok()?;
            let done = d.total_in() as usize == payload.len() && out.len() < out.capacity();
            if done {
                break;
            }
            if out.len() >= budget || (d.total_in() == in0 && d.total_out() == out0) {
                return None;
            }
        }
        if !out.ends_with(&SYNC_TAIL) {
            return None;
        }
        out.truncate(out.len() - SYNC_TAIL.len());
        let len = out.len() - MAX_HEADER;
        if len >= payload.len() {
            return None;
        }
        let (header, hlen) = ws_header(first_byte | RSV1, len);
        let offset = MAX_HEADER - hlen;
        out[offset..MAX_HEADER].copy_from_slice(&header[..hlen]);
        Some(Bytes::from(out).slice(offset..))
    })
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The inflated message would be larger than the limit.
    #[error("inflated message too big")]
    TooBig,
    /// The data is not valid DEFLATE.
    #[error("invalid deflate data")]
    Corrupt,
}

/// A connection's inflater for the messages its client compressed.
///
/// The DEFLATE state (a 32 KB window and tables) exists only while needed:
/// created on the first compressed message, kept across messages when the
/// client uses context takeover, dropped after each message when it agreed
/// not to.
#[derive(Debug)]
pub struct Inflater {
    no_context_takeover: bool,
    state: Option<Decompress>,
}

impl Inflater {
    /// An inflater; with `no_context_takeover`, each message is inflated on its own.
    pub fn new(no_context_takeover: bool) -> Inflater {
        Inflater {
            no_context_takeover,
            state: None,
        }
    }

    /// Inflates one compressed message (the payloads of its frames, joined),
    /// refusing with [`InflateError::TooBig`] as soon as the output would
    /// pass `max` bytes: memory stays within `max` whatever the input.
    pub fn inflate(&mut self, data: &[u8], max: usize) -> Result<Bytes, InflateError> {
        let res = self.inflate_inner(data, max);
        if self.no_context_takeover || res.is_err() {
            self.state = None;
        }
        res
    }

    fn inflate_inner(&mut self, data: &[u8], max: usize) -> Result<Bytes, InflateError> {
        let d = self.state.get_or_insert_with(|| Decompress::new(false));
        // One byte past the limit, to tell "exactly max" from "more".
        let limit = max.saturating_add(1);
        let mut out = Vec::with_capacity(data.len().saturating_mul(4).max(256).min(limit));
        for input in [data, &SYNC_TAIL[..]] {
            let mut pos = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() >= limit {
                        return Err(InflateError::TooBig);
                    }
                    out.reserve_exact(out.capacity().max(1024).min(limit - out.len()));
                }
                let (in0, out0) = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Corrupt)?;
                pos += (d.total_in() - in0) as usize;
                if out.len() > max {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A final block: the stream is over, whatever follows is
                    // ignored and the next message starts a new one.
                    self.state = None;
                    return Ok(Bytes::from(out));
                }
                if out.len() < out.capacity() {
                    if pos == input.len() {
                        break;
                    }
                    if d.total_in() == in0 && d.total_out() == out0 {
                        return Err(InflateError::Corrupt);
                    }
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compressed payload of a frame built by [`compress_message`].
    fn payload_of(frame: &[u8]) -> &[u8] {
        let hlen = match frame[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        &frame[hlen..]
    }

    #[test]
    fn compressed_messages_inflate_back() {
        let text: Vec<u8> = (0..20_000).map(|i| b"roster:ada,sam;"[i % 15]).collect();
        let frame = compress_message(0x81, &text).expect("repetitive text compresses");
        assert_eq!(frame[0], 0x81 | RSV1);
        assert!(frame.len() < text.len() / 10, "{} bytes", frame.len());
        for no_ctx in [false, true] {
            let mut inf = Inflater::new(no_ctx);
            // Twice: each message is independent, so it inflates with or
            // without the context of the one before.
            for _ in 0..2 {
                assert_eq!(
                    &inf.inflate(payload_of(&frame), 1 << 20).unwrap()[..],
                    &text[..]
                );
            }
        }
    }

    #[test]
    fn incompressible_payloads_are_left_alone() {
        assert_eq!(compress_message(0x81, b"4short"), None);
        // xorshift64: bytes with no redundancy for DEFLATE to find.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(compress_message(0x82, &noise), None);
    }

    #[test]
    fn context_takeover_keeps_the_window_between_messages() {
        // A client with context takeover refers back to its previous message.
        let mut c = Compress::new(Compression::default(), false);
        let mut msgs = Vec::new();
        for _ in 0..2 {
            let mut out = Vec::with_capacity(4096);
            let before = c.total_out();
            c.compress_vec(&[b'x'; 2000], &mut out, FlushCompress::Sync)
                .unwrap();
            assert_eq!(c.total_out() - before, out.len() as u64);
            out.truncate(out.len() - 4);
            msgs.push(out);
        }
        assert!(
            msgs[1].len() < msgs[0].len(),
            "second message uses the window"
        );
        let mut inf = Inflater::new(false);
        for m in &msgs {
            assert_eq!(&inf.inflate(m, 10_000).unwrap()[..], &[b'x'; 2000][..]);
        }
        // Without the window, the second message cannot be inflated right.
        let mut fresh = Inflater::new(true);
        assert_ne!(
            fresh.inflate(&msgs[1], 10_000).ok().as_deref(),
            Some(&[b'x'; 2000][..])
        );
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        // 100 MB of zeros compress to about 100 KB.
        let mut c = Compress::new(Compression::best(), false);
        let zeros = vec![0u8; 1 << 20];
        let mut bomb = Vec::with_capacity(200_000);
        for _ in 0..100 {
            c.compress_vec(&zeros, &mut bomb, FlushCompress::None)
                .unwrap();
        }
        c.compress_vec(&[], &mut bomb, FlushCompress::Sync).unwrap();
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let mut inf = Inflater::new(false);
        assert_eq!(inf.inflate(&bomb, 1_000_000), Err(InflateError::TooBig));
        // Exactly at the limit is fine; one byte more is not.
        let mut c = Compress::new(Compression::default(), false);
        let mut exact = Vec::with_capacity(10_000);
        c.compress_vec(&[7u8; 50_000], &mut exact, FlushCompress::Sync)
            .unwrap();
        assert_eq!(inf.inflate(&exact, 50_000).map(|b| b.len()), Ok(50_000));
        let mut inf = Inflater::new(false);
        assert_eq!(inf.inflate(&exact, 49_999), Err(InflateError::TooBig));
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        let mut inf = Inflater::new(false);
        assert_eq!(inf.inflate(&[0xff; 64], 1000), Err(InflateError::Corrupt));
        // And the inflater works again afterwards.
        let frame = compress_message(0x81, &[b'a'; 3000]).unwrap();
        assert_eq!(
            inf.inflate(payload_of(&frame), 5000).map(|b| b.len()),
            Ok(3000)
        );
    }
}
