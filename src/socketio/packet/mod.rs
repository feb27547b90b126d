//! The Socket.IO v5 packet codecs: the default JSON format and msgpack.
//!
//! JSON wire form (inside an Engine.IO `4` message):
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.
//!
//! Binary values travel as `{"_placeholder":true,"num":N}` in the JSON plus N
//! separate Engine.IO binary messages. [`Payload`] keeps the JSON with its
//! placeholders and the attachments beside it; encoding renumbers the
//! placeholders depth-first so attachments always go out in order.
//!
//! The types and the JSON decoder are here; the JSON encoder is in `encode`
//! (its functions are re-exported here). The msgpack codec is in
//! [`msgpack`]; [`Parser`] and [`Decoder`] (in `parser`) are the one
//! interface the rest of the Socket.IO layer uses, whichever the server's
//! format: both codecs produce and consume the same [`Packet`] and
//! [`Payload`].

mod encode;
pub mod msgpack;
mod parser;

use bytes::Bytes;
use serde_json::Value;

pub use encode::{encode_ack, encode_control, encode_event, Encoded};
pub use parser::{Decoder, Parser};

/// The seven Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0`: join a namespace (client) / accepted (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: an acknowledgement.
    Ack,
    /// `4`: a refused namespace connection (server only).
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketKind {
    fn from_char(c: u8) -> Option<PacketKind> {
        Some(match c {
            b'0' => PacketKind::Connect,
            b'1' => PacketKind::Disconnect,
            b'2' => PacketKind::Event,
            b'3' => PacketKind::Ack,
            b'4' => PacketKind::ConnectError,
            b'5' => PacketKind::BinaryEvent,
            b'6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    fn as_char(self) -> u8 {
        match self {
            PacketKind::Connect => b'0',
            PacketKind::Disconnect => b'1',
            PacketKind::Event => b'2',
            PacketKind::Ack => b'3',
            PacketKind::ConnectError => b'4',
            PacketKind::BinaryEvent => b'5',
            PacketKind::BinaryAck => b'6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// Why a Socket.IO packet was refused. Any of these closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// First character is not `0`-`6`.
    #[error("unknown packet type")]
    UnknownType,
    /// A binary packet without a valid `<count>-` header.
    #[error("bad attachment count")]
    BadAttachmentCount,
    /// More attachments than allowed.
    #[error("too many attachments")]
    TooManyAttachments,
    /// A namespace over the length limit or with bad characters.
    #[error("bad namespace")]
    BadNamespace,
    /// An ack id that does not fit the allowed range.
    #[error("bad ack id")]
    BadAckId,
    /// The JSON does not parse (or has trailing bytes).
    #[error("invalid JSON")]
    InvalidJson,
    /// JSON nested deeper than allowed.
    #[error("JSON nested too deep")]
    TooDeep,
    /// The JSON does not have the shape the packet type needs.
    #[error("wrong payload shape for the packet type")]
    BadPayload,
    /// A packet type a client may not send (CONNECT_ERROR).
    #[error("packet type not allowed from a client")]
    NotAllowed,
    /// A placeholder whose `num` is not an attachment index.
    #[error("bad attachment placeholder")]
    BadPlaceholder,
    /// A text packet arrived while attachments were expected.
    #[error("expected a binary attachment")]
    ExpectedAttachment,
    /// A binary message arrived with no binary packet pending.
    #[error("unexpected binary attachment")]
    UnexpectedAttachment,
    /// Msgpack parser: a text message (every packet is a binary message).
    #[error("expected a msgpack (binary) message")]
    ExpectedMsgpack,
    /// Msgpack parser: not well-formed msgpack (truncated, trailing bytes,
    /// the unused marker 0xc1, a string that is not UTF-8, a map key that
    /// is not a string).
    #[error("invalid msgpack")]
    InvalidMsgpack,
    /// Msgpack parser: an ext type other than binary (ext type 0),
    /// `undefined` (fixext 1 type 0) and a Date (fixext 8 type 0) from
    /// 1970 to 9999.
    #[error("unsupported msgpack ext type")]
    UnsupportedMsgpackExt,
}

/// Decoder limits; every one is checked before the data is kept. Set them
/// with `SocketIoConfigBuilder::limits`. A packet over any limit is a parse
/// error: the server closes the connection (Engine.IO close reason
/// `ParseError`, sockets see `DisconnectReason::ParseError`, the client
/// gets a `1` close packet). The size of a whole message is bounded below
/// this layer by the engine's `max_payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest attachment count of a binary packet (default 10); over it:
    /// [`ParseError::TooManyAttachments`].
    pub max_attachments: usize,
    /// Largest ack id (default 2^53 - 1, what JavaScript numbers hold
    /// exactly); over it, or over 20 digits: [`ParseError::BadAckId`].
    pub max_ack_id: u64,
    /// Longest namespace in bytes (default 256); over it, or with a control
    /// character: [`ParseError::BadNamespace`].
    pub max_namespace_len: usize,
    /// Deepest JSON nesting of a payload, the event's own array counting as
    /// one (default 32); over it: [`ParseError::TooDeep`]. The JSON parser
    /// itself stops at 127 levels, so larger values act as 127.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attachments: 10,
            max_ack_id: (1 << 53) - 1,
            max_namespace_len: 256,
            max_depth: 32,
        }
    }
}

/// Arguments of an event or ack: JSON values, with binary values as
/// placeholders that point into `attachments`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// The arguments.
    pub args: Vec<Value>,
    /// Binary attachments, indexed by the placeholders' `num`.
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// A payload of JSON arguments only.
    pub fn new(args: Vec<Value>) -> Payload {
        Payload {
            args,
            attachments: Vec::new(),
        }
    }

    /// A payload of one argument.
    pub fn one(arg: Value) -> Payload {
        Payload::new(vec![arg])
    }

    /// Adds a binary attachment and returns the placeholder value that stands
    /// for it; put that value anywhere in the arguments.
    pub fn add_binary(&mut self, data: Bytes) -> Value {
        let num = self.attachments.len();
        self.attachments.push(data);
        placeholder(num)
    }

    /// The attachment a placeholder value stands for.
    pub fn binary(&self, value: &Value) -> Option<&Bytes> {
        placeholder_num(value).and_then(|n| self.attachments.get(n))
    }

    /// Deserializes argument `i`.
    pub fn arg<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, serde_json::Error> {
        T::deserialize(self.args.get(i).unwrap_or(&Value::Null))
    }
}

fn placeholder(num: usize) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("_placeholder".into(), Value::Bool(true));
    m.insert("num".into(), Value::from(num));
    Value::Object(m)
}

/// The `num` of a placeholder object, if `value` is one.
pub fn placeholder_num(value: &Value) -> Option<usize> {
    let obj = value.as_object()?;
    if obj.len() != 2 || obj.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    obj.get("num")?.as_u64().map(|n| n as usize)
}

/// A decoded Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The type.
    pub kind: PacketKind,
    /// The namespace (`/` when absent on the wire).
    pub ns: String,
    /// The ack id.
    pub id: Option<u64>,
    /// The JSON data (`None` when absent). For events: the array, name first.
    pub data: Option<Value>,
    /// Attachments expected (header count), then received.
    pub attachments: Vec<Bytes>,
    /// The header's attachment count.
    pub attachment_count: usize,
}

/// Event names a client may not send (the reference reserves them for its
/// own lifecycle events); an EVENT with one of them is a protocol violation.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl Packet {
    /// Decodes a text packet from a client. Binary packets come back with
    /// `attachment_count` set and no attachments yet.
    pub fn decode(text: &str, limits: &Limits) -> Result<Packet, ParseError> {
        let b = text.as_bytes();
        let Some(&first) = b.first() else {
            return Err(ParseError::Empty);
        };
        let kind = PacketKind::from_char(first).ok_or(ParseError::UnknownType)?;
        let mut pos = 1;
        let mut attachment_count = 0;
        if kind.is_binary() {
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            if pos == start || pos >= b.len() || b[pos] != b'-' || pos - start > 6 {
                return Err(ParseError::BadAttachmentCount);
            }
            attachment_count = text[start..pos]
                .parse::<usize>()
                .map_err(|_| ParseError::BadAttachmentCount)?;
            if attachment_count == 0 {
                return Err(ParseError::BadAttachmentCount);
            }
            if attachment_count > limits.max_attachments {
                return Err(ParseError::TooManyAttachments);
            }
            pos += 1;
        }
        let mut ns = "/".to_string();
        if b.get(pos) == Some(&b'/') {
            let end = b[pos..]
                .iter()
                .position(|&c| c == b',')
                .map_or(b.len(), |i| pos + i);
            let name = &text[pos..end];
            if name.len() > limits.max_namespace_len || name.chars().any(char::is_control) {
                return Err(ParseError::BadNamespace);
            }
            ns = name.to_string();
            pos = if end < b.len() { end + 1 } else { end };
        }
        let mut id = None;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos > start {
            let n = text[start..pos]
                .parse::<u64>()
                .map_err(|_| ParseError::BadAckId)?;
            if n > limits.max_ack_id {
                return Err(ParseError::BadAckId);
            }
            id = Some(n);
        }
        let rest = &text[pos..];
        let data = if rest.is_empty() {
            None
        } else {
            let v: Value = serde_json::from_str(rest).map_err(|e| {
                if e.to_string().contains("recursion limit") {
                    ParseError::TooDeep
                } else {
                    ParseError::InvalidJson
                }
            })?;
            if depth(&v) > limits.max_depth {
                return Err(ParseError::TooDeep);
            }
            Some(v)
        };
        let packet = Packet {
            kind,
            ns,
            id,
            data,
            attachments: Vec::new(),
            attachment_count,
        };
        packet.validate()?;
        Ok(packet)
    }

    fn validate(&self) -> Result<(), ParseError> {
        match self.kind {
            PacketKind::Connect => match &self.data {
                None | Some(Value::Object(_)) if self.id.is_none() => Ok(()),
                _ => Err(ParseError::BadPayload),
            },
            PacketKind::Disconnect => match (&self.data, self.id) {
                (None, None) => Ok(()),
                _ => Err(ParseError::BadPayload),
            },
            PacketKind::Event | PacketKind::BinaryEvent => match &self.data {
                Some(Value::Array(a)) => match a.first() {
                    Some(Value::String(s)) if !RESERVED_EVENTS.contains(&s.as_str()) => Ok(()),
                    Some(Value::Number(_)) => Ok(()),
                    _ => Err(ParseError::BadPayload),
                },
                _ => Err(ParseError::BadPayload),
            },
            PacketKind::Ack | PacketKind::BinaryAck => match (&self.data, self.id) {
                (Some(Value::Array(_)), Some(_)) => Ok(()),
                _ => Err(ParseError::BadPayload),
            },
            PacketKind::ConnectError => Err(ParseError::NotAllowed),
        }?;
        if self.kind.is_binary() {
            let mut bad = false;
            visit_placeholders(self.data.as_ref(), &mut |n| {
                bad |= n.is_none_or(|n| n >= self.attachment_count)
            });
            if bad {
                return Err(ParseError::BadPlaceholder);
            }
        }
        Ok(())
    }

    /// The event name (EVENT / BINARY_EVENT), numbers as their decimal text.
    pub fn event_name(&self) -> Option<String> {
        match self.data.as_ref()?.as_array()?.first()? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Turns an EVENT or ACK into its payload (event name removed).
    pub fn into_payload(self) -> Payload {
        let is_event = matches!(self.kind, PacketKind::Event | PacketKind::BinaryEvent);
        let mut args = match self.data {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        if is_event && !args.is_empty() {
            args.remove(0);
        }
        Payload {
            args,
            attachments: self.attachments,
        }
    }
}

/// Calls `f` with the `num` of every placeholder-shaped object (None when
/// `num` is not an index), depth-first in argument order.
fn visit_placeholders(v: Option<&Value>, f: &mut impl FnMut(Option<usize>)) {
    let Some(v) = v else { return };
    match v {
        Value::Array(a) => a.iter().for_each(|x| visit_placeholders(Some(x), f)),
        Value::Object(o) => {
            if o.get("_placeholder") == Some(&Value::Bool(true)) {
                f(placeholder_num(v));
            } else {
                o.values().for_each(|x| visit_placeholders(Some(x), f));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
