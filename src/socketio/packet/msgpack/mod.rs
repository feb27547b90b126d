//! The msgpack codec, for clients that use npm `socket.io-msgpack-parser`
//! (or python-socketio's `serializer='msgpack'`).
//!
//! Each Socket.IO packet is one msgpack map `{type, data, nsp, id}` sent as
//! one binary Engine.IO message. Binary values stay inside it as msgpack
//! `bin`: there are no attachments, no placeholders on the wire, and no
//! BINARY_EVENT / BINARY_ACK types (the npm parser refuses types above 4).
//!
//! Inside the server a decoded packet looks exactly like one from the JSON
//! codec: each `bin` becomes a placeholder pointing into
//! [`Packet::attachments`] (numbered depth-first, as the JSON encoder
//! numbers them), and the packet's kind is BINARY_EVENT / BINARY_ACK when
//! it carries any. So namespaces, acks, broadcasts, recovery and the
//! application work unchanged whatever the parser; the encoder turns each
//! placeholder that points at an attachment back into a `bin`.
//!
//! The value mapping follows what `notepack.io` (the npm parser's msgpack
//! library) writes and reads:
//!
//! - integers in their smallest encoding, other numbers as float 64,
//!   strings as `str`, binary as `bin`;
//! - ext type 0 with a payload (an `ArrayBuffer` from a browser) is binary;
//!   fixext 1 type 0 is `undefined`: a top-level field that is `undefined`
//!   or nil counts as absent, `undefined` in an array is null, in a map the
//!   key is dropped (what JSON.stringify does);
//! - fixext 8 type 0 (a notepack `Date`, years 1970 to 9999) becomes the
//!   ISO string JSON.stringify writes for it (`2024-01-15T10:30:00.123Z`);
//!   any other ext type is refused;
//! - NaN and the infinities become null (as JSON.stringify has them);
//! - map keys must be strings.
//!
//! The decoder checks every limit of [`Limits`] while it reads (nesting
//! before descending, bins as they are met), never reserves room for more
//! elements than the input could hold (nor more than a few dozen before they
//! arrive, since nested containers could each claim the whole message). It
//! refuses all the npm parser refuses, and then checks the packet as the
//! JSON decoder does (`Packet::validate`: payload shapes, reserved event
//! names), so a violation is handled the same way whatever the format.
//! Top-level keys other than the four are read (with the same limits) and
//! ignored: socket.io-client sends an `options` key with each event.

mod encode;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde_json::{Map, Number, Value};

use super::{placeholder, placeholder_num, Limits, Packet, PacketKind, ParseError};

pub(crate) use encode::{encode_array, encode_control, encode_value};

/// Deepest nesting read whatever `Limits::max_depth` says, as for the JSON
/// parser's own recursion limit (so the decoder's stack stays bounded).
const MAX_NESTING: usize = 127;

/// Most elements reserved up front for an array or map: a length prefix is
/// checked against the bytes left, but nested containers could each claim
/// most of the message, so beyond this they grow as elements really arrive.
const PREALLOC: usize = 64;

/// 9999-12-31T23:59:59.999Z: the last Date with a four-digit year.
const MAX_DATE_MS: u64 = 253_402_300_799_999;

struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
    limits: &'a Limits,
    max_depth: usize,
    /// Binary values met so far, in order: the packet's attachments.
    bins: Vec<Bytes>,
}

/// One decoded value; `None` is JavaScript's `undefined`.
type Decoded = Option<Value>;

impl<'a> Reader<'a> {
    fn new(src: &'a Bytes, limits: &'a Limits) -> Reader<'a> {
        Reader {
            src,
            pos: 0,
            limits,
            max_depth: limits.max_depth.min(MAX_NESTING),
            bins: Vec::new(),
        }
    }

    fn remaining(&self) -> usize {
        self.src.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(ParseError::InvalidMsgpack);
        }
        let src: &'a Bytes = self.src;
        let s = &src[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian unsigned integer of `n` (1, 2, 4 or 8) bytes.
    fn be(&mut self, n: usize) -> Result<u64, ParseError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, ParseError> {
        usize::try_from(self.be(n)?).map_err(|_| ParseError::InvalidMsgpack)
    }

    fn str(&mut self, len: usize) -> Result<String, ParseError> {
        let b = self.take(len)?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| ParseError::InvalidMsgpack)
    }

    fn bin(&mut self, len: usize, depth: usize) -> Result<Decoded, ParseError> {
        // A binary value stands as a placeholder object, one level deep.
        if depth > self.max_depth {
            return Err(ParseError::TooDeep);
        }
        if len > self.remaining() {
            return Err(ParseError::InvalidMsgpack);
        }
        if self.bins.len() >= self.limits.max_attachments {
            return Err(ParseError::TooManyAttachments);
        }
        let data = self.src.slice(self.pos..self.pos + len);
        self.pos += len;
        self.bins.push(data);
        Ok(Some(placeholder(self.bins.len() - 1)))
    }

    /// An ext value of `len` bytes: type 0 is binary, anything else refused.
    fn ext(&mut self, len: usize, depth: usize) -> Result<Decoded, ParseError> {
        match self.byte()? {
            0 => self.bin(len, depth),
            _ => Err(ParseError::UnsupportedMsgpackExt),
        }
    }

    /// A notepack Date (fixext 8 type 0: signed milliseconds since the
    /// epoch) as the string JSON.stringify would make of it.
    fn date(&mut self) -> Result<String, ParseError> {
        let t = self.byte()?;
        let ms = self.be(8)? as i64;
        match u64::try_from(ms) {
            Ok(ms) if t == 0 && ms <= MAX_DATE_MS => Ok(crate::util::format_rfc3339(ms)),
            _ => Err(ParseError::UnsupportedMsgpackExt),
        }
    }

    /// A map key: a string.
    fn key(&mut self) -> Result<String, ParseError> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return Err(ParseError::InvalidMsgpack),
        };
        self.str(len)
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Decoded, ParseError> {
        if depth > self.max_depth {
            return Err(ParseError::TooDeep);
        }
        // Every element takes at least one byte.
        if len > self.remaining() {
            return Err(ParseError::InvalidMsgpack);
        }
        let mut a = Vec::with_capacity(len.min(PREALLOC));
        for _ in 0..len {
            a.push(self.value(depth + 1)?.unwrap_or(Value::Null));
        }
        Ok(Some(Value::Array(a)))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Decoded, ParseError> {
        if depth > self.max_depth {
            return Err(ParseError::TooDeep);
        }
        // Every entry takes at least two bytes.
        if len > self.remaining() / 2 {
            return Err(ParseError::InvalidMsgpack);
        }
        let mut m = Map::with_capacity(len.min(PREALLOC));
        for _ in 0..len {
            let k = self.key()?;
            if let Some(v) = self.value(depth + 1)? {
                m.insert(k, v);
            }
        }
        let v = Value::Object(m);
        // A map shaped like a placeholder would be taken for a binary value.
        if placeholder_num(&v).is_some() {
            return Err(ParseError::BadPlaceholder);
        }
        Ok(Some(v))
    }

    /// One value; `depth` is the nesting level a container here would have.
    fn value(&mut self, depth: usize) -> Result<Decoded, ParseError> {
        let m = self.byte()?;
        let v = match m {
            0x00..=0x7f => Value::from(m),
            0x80..=0x8f => return self.map(usize::from(m & 0x0f), depth),
            0x90..=0x9f => return self.array(usize::from(m & 0x0f), depth),
            0xa0..=0xbf => Value::String(self.str(usize::from(m & 0x1f))?),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => return self.len(1).and_then(|n| self.bin(n, depth)),
            0xc5 => return self.len(2).and_then(|n| self.bin(n, depth)),
            0xc6 => return self.len(4).and_then(|n| self.bin(n, depth)),
            0xc7 => return self.len(1).and_then(|n| self.ext(n, depth)),
            0xc8 => return self.len(2).and_then(|n| self.ext(n, depth)),
            0xc9 => return self.len(4).and_then(|n| self.ext(n, depth)),
            0xca => float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => float(f64::from_bits(self.be(8)?)),
            0xcc => Value::from(self.be(1)?),
            0xcd => Value::from(self.be(2)?),
            0xce => Value::from(self.be(4)?),
            0xcf => Value::from(self.be(8)?),
            0xd0 => Value::from(self.be(1)? as u8 as i8),
            0xd1 => Value::from(self.be(2)? as u16 as i16),
            0xd2 => Value::from(self.be(4)? as u32 as i32),
            0xd3 => Value::from(self.be(8)? as i64),
            // fixext 1 type 0: undefined.
            0xd4 => {
                let t = self.take(2)?;
                return match t[0] {
                    0 => Ok(None),
                    _ => Err(ParseError::UnsupportedMsgpackExt),
                };
            }
            // fixext 8 type 0: a notepack Date.
            0xd7 => Value::String(self.date()?),
            // fixext 2, 4, 16: no type we accept.
            0xd5 | 0xd6 | 0xd8 => return Err(ParseError::UnsupportedMsgpackExt),
            0xd9 => Value::String(self.len(1).and_then(|n| self.str(n))?),
            0xda => Value::String(self.len(2).and_then(|n| self.str(n))?),
            0xdb => Value::String(self.len(4).and_then(|n| self.str(n))?),
            0xdc => return self.len(2).and_then(|n| self.array(n, depth)),
            0xdd => return self.len(4).and_then(|n| self.array(n, depth)),
            0xde => return self.len(2).and_then(|n| self.map(n, depth)),
            0xdf => return self.len(4).and_then(|n| self.map(n, depth)),
            0xe0..=0xff => Value::from(m as i8),
            // 0xc1 is never used.
            0xc1 => return Err(ParseError::InvalidMsgpack),
        };
        Ok(Some(v))
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Decodes one binary message from a client as a Socket.IO packet (with
/// its binary values as attachments; see the [module docs](self)).
pub fn decode(msg: &Bytes, limits: &Limits) -> Result<Packet, ParseError> {
    let mut r = Reader::new(msg, limits);
    let len = match r.byte()? {
        m @ 0x80..=0x8f => usize::from(m & 0x0f),
        0xde => r.len(2)?,
        0xdf => r.len(4)?,
        // Not a map: no packet type (what the npm parser reports).
        _ => return Err(ParseError::UnknownType),
    };
    let (mut kind, mut ns, mut id, mut data) = (None, None, None, None);
    let mut seen = [false; 4];
    for _ in 0..len {
        let key = r.key()?;
        let slot = ["type", "nsp", "id", "data"].iter().position(|k| *k == key);
        if let Some(i) = slot {
            if std::mem::replace(&mut seen[i], true) {
                return Err(ParseError::BadPayload);
            }
        }
        match slot {
            Some(0) => kind = Some(packet_kind(r.value(1)?)?),
            Some(1) => ns = Some(namespace(r.value(1)?, limits)?),
            Some(2) => id = ack_id(r.value(1)?, limits)?,
            Some(3) => data = r.value(1)?.filter(|v| !v.is_null()),
            _ => {
                // Ignored, but read within the limits; its binary values
                // are not the packet's.
                let mark = r.bins.len();
                r.value(1)?;
                r.bins.truncate(mark);
            }
        }
    }
    if r.remaining() > 0 {
        return Err(ParseError::InvalidMsgpack);
    }
    let mut kind = kind.ok_or(ParseError::UnknownType)?;
    let ns = ns.ok_or(ParseError::BadNamespace)?;
    let attachments = r.bins;
    if !attachments.is_empty() {
        kind = match kind {
            PacketKind::Event => PacketKind::BinaryEvent,
            PacketKind::Ack => PacketKind::BinaryAck,
            _ => return Err(ParseError::BadPayload),
        };
    }
    let packet = Packet {
        kind,
        ns,
        id,
        data,
        attachment_count: attachments.len(),
        attachments,
    };
    packet.validate()?;
    Ok(packet)
}

/// Decodes one msgpack value that is not a Socket.IO packet (a cluster
/// adapter's envelope), with the same value mapping and limits: its binary
/// values become placeholders pointing into the returned attachments
/// (numbered depth-first). Trailing bytes are refused.
pub fn decode_value(msg: &Bytes, limits: &Limits) -> Result<(Value, Vec<Bytes>), ParseError> {
    let mut r = Reader::new(msg, limits);
    let v = r.value(0)?.unwrap_or(Value::Null);
    if r.remaining() > 0 {
        return Err(ParseError::InvalidMsgpack);
    }
    Ok((v, r.bins))
}

fn packet_kind(v: Decoded) -> Result<PacketKind, ParseError> {
    match v.as_ref().and_then(Value::as_u64) {
        Some(0) => Ok(PacketKind::Connect),
        Some(1) => Ok(PacketKind::Disconnect),
        Some(2) => Ok(PacketKind::Event),
        Some(3) => Ok(PacketKind::Ack),
        Some(4) => Err(ParseError::NotAllowed),
        _ => Err(ParseError::UnknownType),
    }
}

fn namespace(v: Decoded, limits: &Limits) -> Result<String, ParseError> {
    match v {
        Some(Value::String(s))
            if s.len() <= limits.max_namespace_len && !s.chars().any(char::is_control) =>
        {
            Ok(s)
        }
        _ => Err(ParseError::BadNamespace),
    }
}

fn ack_id(v: Decoded, limits: &Limits) -> Result<Option<u64>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= limits.max_ack_id => Ok(Some(n)),
            _ => Err(ParseError::BadAckId),
        },
    }
}
