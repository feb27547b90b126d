//! Server side of RFC 6455 framing: an incremental decoder for the masked
//! frames clients send, and the few control frames the server writes.
//!
//! Data frames the server sends are pre-built [`super::Frame`]s; this module
//! only decodes, and builds close and pong frames. With permessage-deflate
//! agreed, a message whose first frame has RSV1 set is inflated (bounded by
//! the same maximum) once reassembled.

use bytes::{Buf, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::deflate::codec::{InflateError, RSV1};
use super::deflate::Inflater;

/// What a complete client frame (or reassembled message) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text message.
    Text(Utf8Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping control frame with its payload (to be answered with a pong).
    Ping(Bytes),
    /// A pong control frame.
    Pong,
    /// A close control frame with its status code, if any.
    Close(Option<u16>),
}

/// Why a client's frames were refused; each maps to a close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// The frame breaks RFC 6455 (unmasked, reserved bits, bad opcode, bad control frame).
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// A message larger than the configured maximum.
    #[error("websocket message too big")]
    TooBig,
    /// A text message that is not UTF-8.
    #[error("websocket text message is not valid UTF-8")]
    InvalidUtf8,
    /// A compressed message whose data is not valid DEFLATE.
    #[error("websocket message is not valid deflate data")]
    BadDeflate,
}

impl From<InflateError> for WsError {
    fn from(e: InflateError) -> WsError {
        match e {
            InflateError::TooBig => WsError::TooBig,
            InflateError::Corrupt => WsError::BadDeflate,
        }
    }
}

impl WsError {
    /// The close status code to send for this error.
    pub fn close_code(self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::TooBig => 1009,
            WsError::InvalidUtf8 | WsError::BadDeflate => 1007,
        }
    }
}

/// How far ahead of the bytes received the decoder reserves buffer room
/// for a frame in progress (beyond this, the buffer at most doubles at a time).
const RESERVE_AHEAD: usize = 16 * 1024;

/// Incremental decoder of client frames, with message reassembly.
///
/// Memory follows the data received, not the lengths announced: for a frame
/// still arriving, room is reserved in steps (at least 16 KiB ahead, at most
/// doubling), and a fragmented message is accumulated as its fragments
/// arrive.
#[derive(Debug)]
pub struct WsDecoder {
    max_message: usize,
    /// Opcode, compressed flag and data of a fragmented message in progress.
    partial: Option<(Start, BytesMut)>,
    /// The inflater, when permessage-deflate was agreed.
    inflater: Option<Inflater>,
}

/// How a data message started: its opcode, and whether it is compressed.
#[derive(Debug, Clone, Copy)]
struct Start {
    opcode: u8,
    compressed: bool,
}

impl WsDecoder {
    /// A decoder refusing messages larger than `max_message` bytes.
    pub fn new(max_message: usize) -> WsDecoder {
        WsDecoder {
            max_message,
            partial: None,
            inflater: None,
        }
    }

    /// A decoder for a connection that agreed permessage-deflate: messages
    /// with RSV1 set are inflated (their compressed and inflated sizes both
    /// limited to `max_message`), with a fresh context for each message when
    /// `client_no_context_takeover` was agreed.
    pub fn with_deflate(max_message: usize, client_no_context_takeover: bool) -> WsDecoder {
        WsDecoder {
            inflater: Some(Inflater::new(client_no_context_takeover)),
            ..WsDecoder::new(max_message)
        }
    }

    /// Decodes the next event from `buf`, consuming the bytes it used.
    /// Returns `Ok(None)` when `buf` holds no complete frame yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<WsEvent>, WsError> {
        loop {
            let Some((fin, rsv1, opcode, payload)) = self.next_frame(buf)? else {
                return Ok(None);
            };
            if rsv1 && (opcode == 0 || opcode >= 8) {
                return Err(WsError::Protocol("RSV1 on a continuation or control frame"));
            }
            if opcode >= 8 {
                return control_event(opcode, payload).map(Some);
            }
            match (opcode, self.partial.take()) {
                (0, None) => return Err(WsError::Protocol("continuation without a start")),
                (0, Some((start, mut acc))) => {
                    if acc.len() + payload.len() > self.max_message {
                        return Err(WsError::TooBig);
                    }
                    acc.extend_from_slice(&payload);
                    if fin {
                        return self.message(start, acc.freeze()).map(Some);
                    }
                    self.partial = Some((start, acc));
                }
                (1 | 2, Some(_)) => {
                    return Err(WsError::Protocol("new message inside a fragmented one"))
                }
                (1 | 2, None) => {
                    let start = Start {
                        opcode,
                        compressed: rsv1,
                    };
                    if fin {
                        return self.message(start, payload).map(Some);
                    }
                    self.partial = Some((start, BytesMut::from(&payload[..])));
                }
                _ => return Err(WsError::Protocol("reserved opcode")),
            }
        }
    }

    /// A complete data message: inflated if compressed, then checked.
    fn message(&mut self, start: Start, payload: Bytes) -> Result<WsEvent, WsError> {
        let payload = match (&mut self.inflater, start.compressed) {
            (Some(inf), true) => inf.inflate(&payload, self.max_message)?,
            _ => payload,
        };
        data_event(start.opcode, payload)
    }

    /// Parses one raw frame (fin, RSV1, opcode, unmasked payload) if complete.
    #[allow(clippy::type_complexity)]
    fn next_frame(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<(bool, bool, u8, Bytes)>, WsError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let b0 = buf[0];
        let b1 = buf[1];
        // RSV1 means "compressed" once permessage-deflate is agreed.
        let allowed = if self.inflater.is_some() { RSV1 } else { 0 };
        if b0 & 0x70 & !allowed != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frame not masked"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        let (len, mut pos) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4usize)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(b);
                if n >> 63 != 0 {
                    return Err(WsError::Protocol("length with the top bit set"));
                }
                (n, 10usize)
            }
            n => (n as u64, 2usize),
        };
        if opcode >= 8 && (!fin || len > 125) {
            return Err(WsError::Protocol("bad control frame"));
        }
        let already = self.partial.as_ref().map_or(0, |(_, a)| a.len()) as u64;
        if len.saturating_add(already) > self.max_message as u64 {
            return Err(WsError::TooBig);
        }
        let len = len as usize;
        let total = pos + 4 + len;
        if buf.len() < total {
            // Make room for the rest of the frame in steps that follow the
            // data that actually arrives (at least `RESERVE_AHEAD`, at most
            // what is buffered already, so the buffer grows geometrically),
            // never the whole announced length at once: a peer announcing
            // a large frame and sending nothing must not cost `max_message`
            // bytes of memory.
            let want = (total - buf.len()).min(RESERVE_AHEAD.max(buf.len()));
            buf.reserve(want);
            return Ok(None);
        }
        let mask = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        buf.advance(pos);
        let mut payload = buf.split_to(len);
        unmask(&mut payload, mask);
        Ok(Some((fin, b0 & RSV1 != 0, opcode, payload.freeze())))
    }
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

fn data_event(opcode: u8, payload: Bytes) -> Result<WsEvent, WsError> {
    if opcode == 1 {
        Utf8Bytes::try_from(payload)
            .map(WsEvent::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(WsEvent::Binary(payload))
    }
}

fn control_event(opcode: u8, payload: Bytes) -> Result<WsEvent, WsError> {
    match opcode {
        8 => {
            let code = match payload.len() {
                0 => None,
                1 => return Err(WsError::Protocol("close payload of one byte")),
                _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
            };
            Ok(WsEvent::Close(code))
        }
        9 => Ok(WsEvent::Ping(payload)),
        10 => Ok(WsEvent::Pong),
        _ => Err(WsError::Protocol("reserved control opcode")),
    }
}

/// A close frame with a status code.
pub fn close_frame(code: u16) -> Bytes {
    let c = code.to_be_bytes();
    Bytes::copy_from_slice(&[0x88, 2, c[0], c[1]])
}

/// A pong answering a ping with `payload` (at most 125 bytes, checked by the decoder).
pub fn pong_frame(payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(2 + payload.len());
    v.push(0x8a);
    v.push(payload.len() as u8);
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// The client side of the framing, for tests and fuzz targets: encoding
/// masked client frames and parsing what the server wrote. Not a stable API.
#[doc(hidden)]
pub mod testing {
    /// A masked client frame, as a WebSocket client writes it (the opcode is
    /// truncated to 4 bits; the length uses the shortest encoding).
    pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut v = Vec::with_capacity(payload.len() + 14);
        v.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
        let len = payload.len();
        if len < 126 {
            v.push(0x80 | len as u8);
        } else if len <= 0xffff {
            v.push(0x80 | 126);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            v.push(0x80 | 127);
            v.extend_from_slice(&(len as u64).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    /// One frame written by the server.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ServerFrame {
        /// The opcode (1 text, 2 binary, 8 close, 10 pong).
        pub opcode: u8,
        /// The payload.
        pub payload: Vec<u8>,
    }

    /// Takes the complete frames off the front of `buf` (what a server
    /// wrote), leaving an incomplete last frame in place. Panics if the
    /// server broke RFC 6455: a masked or fragmented frame, reserved bits,
    /// or a control frame over 125 bytes.
    pub fn parse_server_frames(buf: &mut Vec<u8>) -> Vec<ServerFrame> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let b = &buf[pos..];
            if b.len() < 2 {
                break;
            }
            assert_eq!(b[0] & 0xf0, 0x80, "server frame: FIN unset or RSV bits set");
            assert_eq!(b[1] & 0x80, 0, "server frame is masked");
            let opcode = b[0] & 0x0f;
            let (len, hlen) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if opcode >= 8 {
                assert!(len <= 125, "server control frame over 125 bytes");
            }
            if b.len() < hlen + len {
                break;
            }
            out.push(ServerFrame {
                opcode,
                payload: b[hlen..hlen + len].to_vec(),
            });
            pos += hlen + len;
        }
        buf.drain(..pos);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame with a fixed mask.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        testing::client_frame(fin, opcode, payload, [0x12, 0x34, 0x56, 0x78])
    }

    #[test]
    fn announced_length_is_not_reserved_up_front() {
        const MAX: usize = 1_000_000;
        let mut d = WsDecoder::new(MAX);
        let frame = client_frame(true, 2, &vec![7u8; MAX]);
        // Header (2 + 8 length bytes) and mask only: nothing of the payload.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&frame[..14]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= RESERVE_AHEAD + 64,
            "reserved {} bytes for a frame that has not arrived",
            buf.capacity()
        );
        // Arriving in reads of 4 KiB, the buffer stays within a small
        // multiple of what arrived (geometric growth), and the frame still
        // decodes whole.
        let mut fed = 14;
        loop {
            let n = 4096.min(frame.len() - fed);
            buf.extend_from_slice(&frame[fed..fed + n]);
            fed += n;
            let ev = d.decode(&mut buf).unwrap();
            if fed == frame.len() {
                assert!(
                    matches!(ev, Some(WsEvent::Binary(b)) if b.len() == MAX && b.iter().all(|&x| x == 7))
                );
                break;
            }
            assert_eq!(ev, None);
            assert!(
                buf.capacity() <= 4 * buf.len() + 2 * RESERVE_AHEAD,
                "capacity {} with {} bytes received",
                buf.capacity(),
                buf.len()
            );
        }
    }

    #[test]
    fn decodes_text_binary_and_fragments() {
        let mut d = WsDecoder::new(1000);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&client_frame(true, 1, b"4hello"));
        buf.extend_from_slice(&client_frame(false, 2, &[1, 2]));
        buf.extend_from_slice(&client_frame(true, 9, b"p"));
        buf.extend_from_slice(&client_frame(true, 0, &[3]));
        assert_eq!(d.decode(&mut buf), Ok(Some(WsEvent::Text("4hello".into()))));
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(WsEvent::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            d.decode(&mut buf),
            Ok(Some(WsEvent::Binary(Bytes::from_static(&[1, 2, 3]))))
        );
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn partial_input_waits() {
        let mut d = WsDecoder::new(100_000);
        let frame = client_frame(true, 2, &[7u8; 70_000]);
        let mut buf = BytesMut::new();
        for chunk in frame.chunks(1000) {
            assert!(matches!(d.decode(&mut buf), Ok(None)));
            buf.extend_from_slice(chunk);
        }
        assert!(matches!(d.decode(&mut buf), Ok(Some(WsEvent::Binary(b))) if b.len() == 70_000));
    }

    #[test]
    fn refuses_bad_frames() {
        let mut d = WsDecoder::new(10);
        let mut buf = BytesMut::from(&client_frame(true, 1, b"01234567890")[..]);
        assert_eq!(d.decode(&mut buf), Err(WsError::TooBig));
        let mut buf = BytesMut::from(&[0x81u8, 0x01, b'x'][..]);
        assert_eq!(
            WsDecoder::new(10).decode(&mut buf),
            Err(WsError::Protocol("client frame not masked"))
        );
        let mut buf = BytesMut::from(&client_frame(true, 3, b"")[..]);
        assert!(WsDecoder::new(10).decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&client_frame(true, 1, &[0xff, 0xfe])[..]);
        assert_eq!(
            WsDecoder::new(10).decode(&mut buf),
            Err(WsError::InvalidUtf8)
        );
        let mut buf = BytesMut::from(&client_frame(false, 9, b"")[..]);
        assert!(WsDecoder::new(10).decode(&mut buf).is_err());
    }

    #[test]
    fn compressed_messages_need_the_extension_and_are_bounded() {
        let text = "4".to_string() + &"present,".repeat(500);
        let z = crate::engine::deflate::compress_message(0x81, text.as_bytes()).unwrap();
        let hlen = if z[1] == 126 { 4 } else { 2 };
        let zpayload = &z[hlen..];
        // A client frame with RSV1: the same compressed payload, masked.
        let mut frame = client_frame(true, 1, zpayload);
        frame[0] |= RSV1;
        // Without the extension, RSV1 is a protocol error.
        let mut buf = BytesMut::from(&frame[..]);
        assert!(matches!(
            WsDecoder::new(100_000).decode(&mut buf),
            Err(WsError::Protocol(_))
        ));
        // With it, the message is inflated, also when fragmented (RSV1 on the
        // first fragment only).
        let mut d = WsDecoder::with_deflate(100_000, false);
        let mut buf = BytesMut::from(&frame[..]);
        let mut first = client_frame(false, 1, &zpayload[..10]);
        first[0] |= RSV1;
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&client_frame(true, 0, &zpayload[10..]));
        for _ in 0..2 {
            assert_eq!(
                d.decode(&mut buf),
                Ok(Some(WsEvent::Text(text.as_str().into())))
            );
        }
        // RSV1 on a continuation frame is refused.
        let mut cont = client_frame(true, 0, b"x");
        cont[0] |= RSV1;
        let mut buf = BytesMut::from(&client_frame(false, 1, b"4")[..]);
        buf.extend_from_slice(&cont);
        assert!(matches!(d.decode(&mut buf), Err(WsError::Protocol(_))));
        // Inflating past the maximum is TooBig (close 1009), not memory.
        let mut d = WsDecoder::with_deflate(1000, true);
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(d.decode(&mut buf), Err(WsError::TooBig));
        // Garbage is 1007.
        let mut bad = client_frame(true, 2, &[0xff; 20]);
        bad[0] |= RSV1;
        let mut buf = BytesMut::from(&bad[..]);
        let err = WsDecoder::with_deflate(1000, true)
            .decode(&mut buf)
            .unwrap_err();
        assert_eq!((err, err.close_code()), (WsError::BadDeflate, 1007));
    }
}
