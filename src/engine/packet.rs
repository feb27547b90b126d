//! Engine.IO v4 packets: decoding what clients send, and [`Frame`], the
//! encoded form of what the server sends.
//!
//! A [`Frame`] is built once and can be queued on any number of connections:
//! its bytes are a complete, unmasked WebSocket frame whose payload is the
//! Engine.IO packet, so a WebSocket transport writes it as is and the
//! long-polling transport sends the payload part.

use std::sync::{Arc, OnceLock};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::deflate;
use super::error::DecodeError;

/// The seven Engine.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: sent by the server once, with the handshake data.
    Open,
    /// `1`: the session ends.
    Close,
    /// `2`: heartbeat request (from the server in v4; `2probe` from a client while upgrading).
    Ping,
    /// `3`: heartbeat answer (`3probe` from the server while upgrading).
    Pong,
    /// `4`: a message for the upper layer.
    Message,
    /// `5`: the client switches to the probed WebSocket.
    Upgrade,
    /// `6`: nothing; used to release a pending long-poll.
    Noop,
}

impl PacketType {
    /// The ASCII digit that starts a text packet of this type.
    pub const fn as_char(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    /// Parses the type digit of a text packet.
    pub const fn from_char(c: u8) -> Option<PacketType> {
        Some(match c {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// A packet received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` (never valid from a client; decoded so the session can refuse it).
    Open,
    /// `1`.
    Close,
    /// `2` with its data (`probe` during an upgrade).
    Ping(Utf8Bytes),
    /// `3` with its data.
    Pong(Utf8Bytes),
    /// `4` text message.
    Message(Utf8Bytes),
    /// A binary message (a binary WebSocket frame, or `b<base64>` on polling).
    Binary(Bytes),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// A message as handed to the upper layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (always valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Packet {
    /// Decodes one text packet (a WebSocket text frame, or one record of a
    /// long-polling payload). `b<base64>` is accepted only when `allow_base64`
    /// is set (long-polling).
    pub fn decode_text(data: Utf8Bytes, allow_base64: bool) -> Result<Packet, DecodeError> {
        let raw: Bytes = Bytes::from(data);
        let Some(&first) = raw.first() else {
            return Err(DecodeError::Empty);
        };
        if first == b'b' {
            if !allow_base64 {
                return Err(DecodeError::UnknownType(first));
            }
            return base64_decode(&raw[1..]).map(Packet::Binary);
        }
        let kind = PacketType::from_char(first).ok_or(DecodeError::UnknownType(first))?;
        let rest = || -> Utf8Bytes {
            // Slicing after the ASCII digit keeps the remainder valid UTF-8.
            Utf8Bytes::try_from(raw.slice(1..)).unwrap_or_default()
        };
        Ok(match kind {
            PacketType::Open => Packet::Open,
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(rest()),
            PacketType::Pong => Packet::Pong(rest()),
            PacketType::Message => Packet::Message(rest()),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }
}

/// Decodes standard base64 (with or without padding).
pub fn base64_decode(data: &[u8]) -> Result<Bytes, DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data))
        .map(Bytes::from)
        .map_err(|_| DecodeError::Base64)
}

/// Largest WebSocket frame header the server writes (unmasked, 64-bit length).
pub(crate) const MAX_HEADER: usize = 10;

/// The header of an unmasked WebSocket frame with `first_byte` (FIN, RSV,
/// opcode) and a payload of `len` bytes, and its length.
pub(crate) fn ws_header(first_byte: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = first_byte;
    let hlen = if len < 126 {
        header[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        header[1] = 126;
        header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, hlen)
}

/// An encoded outgoing Engine.IO packet, shareable between connections.
///
/// Cloning a `Frame` is a reference-count increment: a broadcast encodes one
/// `Frame` and queues clones of it on every recipient (8 bytes each). The
/// shared part also holds the slot for the frame's permessage-deflate form,
/// filled on first need for all its clones ([`super::deflate`]).
#[derive(Clone)]
pub struct Frame(Arc<FrameData>);

/// What the clones of a [`Frame`] share.
struct FrameData {
    /// A complete unmasked WebSocket frame; the Engine.IO packet starts at `start`.
    bytes: Bytes,
    start: u8,
    binary: bool,
    /// The compressed WebSocket frame (or `bytes` again, when compression
    /// does not pay), computed once for all recipients.
    deflated: OnceLock<Bytes>,
    /// When the packet was encoded (once for all recipients): the start of
    /// the delivery latency the engine's statistics sample.
    created: std::time::Instant,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        a.bytes == b.bytes && a.start == b.start && a.binary == b.binary
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("binary", &self.0.binary)
            .field("payload", &String::from_utf8_lossy(self.payload()))
            .finish()
    }
}

/// Builds a [`Frame`] in place: write the packet into [`FrameBuilder::buf`],
/// then call [`FrameBuilder::finish`]. The header space is reserved up front, so
/// the payload is written once and never copied.
pub struct FrameBuilder {
    buf: BytesMut,
    binary: bool,
}

impl FrameBuilder {
    /// Starts a text frame holding an Engine.IO packet of type `kind`.
    pub fn text(kind: PacketType, capacity: usize) -> FrameBuilder {
        let mut buf = BytesMut::with_capacity(MAX_HEADER + 1 + capacity);
        buf.put_bytes(0, MAX_HEADER);
        buf.put_u8(kind.as_char());
        FrameBuilder { buf, binary: false }
    }

    /// Starts a binary message frame (the raw bytes, no type digit).
    pub fn binary(capacity: usize) -> FrameBuilder {
        let mut buf = BytesMut::with_capacity(MAX_HEADER + capacity);
        buf.put_bytes(0, MAX_HEADER);
        FrameBuilder { buf, binary: true }
    }

    /// Starts a text `4` (message) frame.
    pub fn message(capacity: usize) -> FrameBuilder {
        FrameBuilder::text(PacketType::Message, capacity)
    }

    /// The buffer to append the packet's data to (for a text frame it must
    /// stay valid UTF-8).
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Completes the frame with its WebSocket header.
    pub fn finish(self) -> Frame {
        let first_byte = if self.binary { 0x82 } else { 0x81 };
        finish_frame(self.buf, first_byte, self.binary)
    }
}

fn finish_frame(mut buf: BytesMut, first_byte: u8, binary: bool) -> Frame {
    let len = buf.len() - MAX_HEADER;
    let (header, hlen) = ws_header(first_byte, len);
    let offset = MAX_HEADER - hlen;
    buf[offset..MAX_HEADER].copy_from_slice(&header[..hlen]);
    let mut bytes = buf.freeze();
    bytes.advance(offset);
    Frame(Arc::new(FrameData {
        bytes,
        start: hlen as u8,
        binary,
        deflated: OnceLock::new(),
        created: std::time::Instant::now(),
    }))
}

impl Frame {
    /// A text packet of type `kind` with `data` after the type digit.
    pub fn text(kind: PacketType, data: &str) -> Frame {
        let mut b = FrameBuilder::text(kind, data.len());
        b.buf().extend_from_slice(data.as_bytes());
        b.finish()
    }

    /// A `4` text message.
    pub fn message(data: &str) -> Frame {
        Frame::text(PacketType::Message, data)
    }

    /// A binary message.
    pub fn binary(data: &[u8]) -> Frame {
        let mut b = FrameBuilder::binary(data.len());
        b.buf().extend_from_slice(data);
        b.finish()
    }

    /// What is left of the WebSocket frame written with
    /// [`Frame::ws_bytes_for`]`(deflate_min)` after its first `written`
    /// bytes went out (only ever queued for the WebSocket transport, and
    /// never compressed again).
    pub(crate) fn ws_tail(&self, deflate_min: usize, written: usize) -> Frame {
        let bytes = self.ws_bytes_for(deflate_min).slice(written..);
        Frame(Arc::new(FrameData {
            // Its "compressed form" is itself: a tail is never compressed.
            deflated: OnceLock::from(bytes.clone()),
            bytes,
            start: 0,
            binary: self.0.binary,
            created: self.0.created,
        }))
    }

    /// When the packet was encoded.
    pub fn created(&self) -> std::time::Instant {
        self.0.created
    }

    /// The complete WebSocket frame.
    pub fn ws_bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// The WebSocket frame to write on a connection that compresses packets
    /// of at least `deflate_min` bytes (`usize::MAX`: the connection did not
    /// negotiate permessage-deflate): the compressed form, computed on the
    /// first call for all the frame's clones, or the frame as it is.
    #[inline]
    pub fn ws_bytes_for(&self, deflate_min: usize) -> &Bytes {
        if self.len() < deflate_min {
            return &self.0.bytes;
        }
        self.ws_deflated()
    }

    #[inline(never)]
    fn ws_deflated(&self) -> &Bytes {
        let d = &*self.0;
        d.deflated.get_or_init(|| {
            deflate::compress_message(d.bytes[0], self.payload()).unwrap_or_else(|| d.bytes.clone())
        })
    }

    /// The Engine.IO packet (text packets: type digit and data; binary: the raw bytes).
    pub fn payload(&self) -> &[u8] {
        &self.0.bytes[self.0.start as usize..]
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        self.0.binary
    }

    /// Length of the Engine.IO packet in bytes (what counts against queue limits).
    pub fn len(&self) -> usize {
        self.0.bytes.len() - self.0.start as usize
    }

    /// Whether the packet is empty (never true for a text packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends this packet as one record of a long-polling payload (binary as `b<base64>`).
    pub fn write_polling(&self, out: &mut Vec<u8>) {
        if self.0.binary {
            use base64::Engine as _;
            out.push(b'b');
            let start = out.len();
            let enc_len = base64::encoded_len(self.payload().len(), true).unwrap_or(0);
            out.resize(start + enc_len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(self.payload(), &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
        } else {
            out.extend_from_slice(self.payload());
        }
    }
}

/// The record separator between packets of a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// Encodes frames as one long-polling payload.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in frames.into_iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEPARATOR);
        }
        f.write_polling(&mut out);
    }
    out
}

/// Splits a long-polling payload into packets. Stops at the first bad
/// packet, returning the packets before it and the error.
pub fn decode_payload(body: Bytes) -> (Vec<Packet>, Option<DecodeError>) {
    let mut packets = Vec::new();
    let mut rest = body;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == RECORD_SEPARATOR)
            .unwrap_or(rest.len());
        let part = rest.split_to(end);
        let decoded = Utf8Bytes::try_from(part)
            .map_err(|_| DecodeError::InvalidUtf8)
            .and_then(|t| Packet::decode_text(t, true));
        match decoded {
            Ok(p) => packets.push(p),
            Err(e) => return (packets, Some(e)),
        }
        if rest.is_empty() {
            return (packets, None);
        }
        // Skip the separator itself.
        let _ = rest.split_to(1);
    }
}

/// Test support for the fuzz targets and property tests: encoding a decoded
/// packet back the way the server would send it. Not a stable API.
#[doc(hidden)]
pub mod testing {
    use super::{Frame, Packet, PacketType};

    /// How the server would send packet `p` (the inverse of decoding it).
    pub fn reencode(p: &Packet) -> Frame {
        match p {
            Packet::Open => Frame::text(PacketType::Open, ""),
            Packet::Close => Frame::text(PacketType::Close, ""),
            Packet::Ping(d) => Frame::text(PacketType::Ping, d.as_str()),
            Packet::Pong(d) => Frame::text(PacketType::Pong, d.as_str()),
            Packet::Message(d) => Frame::message(d.as_str()),
            Packet::Binary(b) => Frame::binary(b),
            Packet::Upgrade => Frame::text(PacketType::Upgrade, ""),
            Packet::Noop => Frame::text(PacketType::Noop, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_for_all_length_classes() {
        for len in [0usize, 1, 124, 125, 126, 65535, 65536, 70000] {
            let data = "x".repeat(len);
            let f = Frame::message(&data);
            let total = len + 1;
            let ws = f.ws_bytes();
            assert_eq!(ws[0], 0x81);
            let (hlen, plen) = match ws[1] {
                126 => (4, u16::from_be_bytes([ws[2], ws[3]]) as usize),
                127 => (
                    10,
                    u64::from_be_bytes(ws[2..10].try_into().unwrap()) as usize,
                ),
                n => (2, n as usize),
            };
            assert_eq!(plen, total);
            assert_eq!(ws.len(), hlen + total);
            assert_eq!(f.payload()[0], b'4');
            assert_eq!(f.len(), total);
        }
        let b = Frame::binary(&[1, 2, 3]);
        assert_eq!(&b.ws_bytes()[..], &[0x82, 3, 1, 2, 3]);
        assert!(b.is_binary());
    }

    #[test]
    fn payload_roundtrip_text_and_binary() {
        let frames = [
            Frame::message("hello"),
            Frame::binary(&[0, 1, 2, 255]),
            Frame::text(PacketType::Ping, ""),
        ];
        let body = encode_payload(&frames);
        assert_eq!(body, b"4hello\x1ebAAEC/w==\x1e2");
        let (packets, err) = decode_payload(Bytes::from(body));
        assert!(err.is_none());
        assert_eq!(
            packets,
            vec![
                Packet::Message("hello".into()),
                Packet::Binary(Bytes::from_static(&[0, 1, 2, 255])),
                Packet::Ping("".into()),
            ]
        );
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(
            Packet::decode_text("7x".into(), true),
            Err(DecodeError::UnknownType(b'7'))
        );
        assert_eq!(
            Packet::decode_text("".into(), true),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            Packet::decode_text("bAAA".into(), false),
            Err(DecodeError::UnknownType(b'b'))
        );
        assert_eq!(
            Packet::decode_text("b!!".into(), true),
            Err(DecodeError::Base64)
        );
        let (ok, err) = decode_payload(Bytes::from_static(b"4a\x1e9\x1e4b"));
        assert_eq!(ok, vec![Packet::Message("a".into())]);
        assert_eq!(err, Some(DecodeError::UnknownType(b'9')));
        let (_, err) = decode_payload(Bytes::from_static(b"4a\x1e"));
        assert_eq!(err, Some(DecodeError::Empty));
    }

    #[test]
    fn a_shared_frame_is_compressed_once_for_all_its_clones() {
        let roster = "{\"name\":\"Ada\",\"present\":true},".repeat(200);
        let frame = Frame::message(&roster);
        let clones: Vec<Frame> = (0..8).map(|_| frame.clone()).collect();
        // Eight senders race to need the compressed form: one computes it,
        // all get the very same buffer.
        let ptrs: Vec<(usize, usize)> = std::thread::scope(|s| {
            let hs: Vec<_> = clones
                .iter()
                .map(|f| {
                    s.spawn(move || {
                        let b = f.ws_bytes_for(100);
                        (b.as_ptr() as usize, b.len())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ptrs.iter().all(|p| *p == ptrs[0]), "{ptrs:?}");
        let z = frame.ws_bytes_for(100);
        assert_eq!(z.as_ptr() as usize, ptrs[0].0);
        assert_eq!(z[0], 0xc1, "FIN, RSV1, text");
        assert!(z.len() < roster.len() / 10);
        // Below the threshold, or on a connection without the extension,
        // the frame goes as it is.
        assert_eq!(frame.ws_bytes_for(usize::MAX), frame.ws_bytes());
        assert_eq!(frame.ws_bytes_for(roster.len() + 2), frame.ws_bytes());
        let small = Frame::message("hi");
        assert_eq!(small.ws_bytes_for(0), small.ws_bytes());
        // A partial write's tail is cut from the compressed form.
        assert_eq!(&frame.ws_tail(100, 3).ws_bytes()[..], &z[3..]);
    }

    #[test]
    fn empty_message_is_legal() {
        assert_eq!(
            Packet::decode_text("4".into(), false),
            Ok(Packet::Message("".into()))
        );
    }
}
