//! The one interface the rest of the Socket.IO layer uses for packets,
//! whatever the wire format: [`Parser`] encodes events, acks and control
//! packets, and a per-connection [`Decoder`] turns incoming Engine.IO
//! messages into complete [`Packet`]s.
//!
//! The parser is chosen per server (as the reference's `parser` option):
//! every connection of a server speaks the same format, so a broadcast is
//! still encoded once and its frames shared by every recipient. Each call
//! is one `match` on a two-variant `Copy` enum, taken once per packet or
//! broadcast, never per recipient: the JSON path costs what it did before.

use bytes::Bytes;
use serde_json::Value;

use super::{encode, msgpack, Encoded, Limits, Packet, PacketKind, ParseError, Payload};
use crate::engine::{Frame, Message};

/// The Socket.IO packet format of a server; set with
/// `SocketIoConfigBuilder::parser` (default [`Parser::Json`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Parser {
    /// The default `socket.io-parser` format: text packets, binary values
    /// as placeholders plus attachment messages.
    #[default]
    Json,
    /// npm `socket.io-msgpack-parser`: every packet one msgpack map in a
    /// binary message, binary values inside it (see [`msgpack`]). Clients
    /// must use the same parser.
    Msgpack,
}

impl Parser {
    /// Encodes an event (`name` first, then the arguments, then an optional
    /// extra trailing argument such as a recovery offset).
    pub fn encode_event(
        self,
        ns: &str,
        name: &str,
        payload: &Payload,
        id: Option<u64>,
        extra: Option<&str>,
    ) -> Encoded {
        match self {
            Parser::Json => encode::encode_event(ns, name, payload, id, extra),
            Parser::Msgpack => {
                msgpack::encode_array(PacketKind::Event, ns, Some(name), payload, id, extra)
            }
        }
    }

    /// Encodes an acknowledgement.
    pub fn encode_ack(self, ns: &str, id: u64, payload: &Payload) -> Encoded {
        match self {
            Parser::Json => encode::encode_ack(ns, id, payload),
            Parser::Msgpack => {
                msgpack::encode_array(PacketKind::Ack, ns, None, payload, Some(id), None)
            }
        }
    }

    /// Encodes a CONNECT answer, DISCONNECT or CONNECT_ERROR with optional data.
    pub fn encode_control(self, kind: PacketKind, ns: &str, data: Option<&Value>) -> Frame {
        match self {
            Parser::Json => encode::encode_control(kind, ns, data),
            Parser::Msgpack => msgpack::encode_control(kind, ns, data),
        }
    }
}

/// Decoding state of one connection: the JSON format spreads a binary
/// packet over several messages, so a packet waiting for its attachments
/// is kept here (msgpack packets are always complete).
#[derive(Debug, Default)]
pub struct Decoder {
    /// A binary packet waiting for its attachments, with its size so far.
    partial: Option<(Packet, usize)>,
    /// Counts the binary packets started, naming the pending one.
    started: u64,
}

impl Decoder {
    /// Feeds one Engine.IO message; returns a complete packet with its size
    /// on the wire (message and attachments), or `None` while attachments
    /// are still expected. An error means the connection must be closed.
    pub fn feed(
        &mut self,
        parser: Parser,
        msg: Message,
        limits: &Limits,
    ) -> Result<Option<(Packet, usize)>, ParseError> {
        match (parser, msg) {
            (Parser::Json, Message::Text(t)) => {
                if self.partial.is_some() {
                    return Err(ParseError::ExpectedAttachment);
                }
                let p = Packet::decode(t.as_str(), limits)?;
                if p.attachment_count > 0 {
                    self.started += 1;
                    self.partial = Some((p, t.len()));
                    Ok(None)
                } else {
                    Ok(Some((p, t.len())))
                }
            }
            (Parser::Json, Message::Binary(b)) => self.attachment(b),
            (Parser::Msgpack, Message::Binary(b)) => {
                msgpack::decode(&b, limits).map(|p| Some((p, b.len())))
            }
            (Parser::Msgpack, Message::Text(_)) => Err(ParseError::ExpectedMsgpack),
        }
    }

    /// The binary packet waiting for attachments, if any: its number (see
    /// the deadline in `handler`) and its size so far (text and attachments).
    pub fn pending(&self) -> Option<(u64, usize)> {
        self.partial.as_ref().map(|(_, size)| (self.started, *size))
    }

    fn attachment(&mut self, b: Bytes) -> Result<Option<(Packet, usize)>, ParseError> {
        let Some((p, size)) = self.partial.as_mut() else {
            return Err(ParseError::UnexpectedAttachment);
        };
        *size += b.len();
        p.attachments.push(b);
        if p.attachments.len() == p.attachment_count {
            Ok(self.partial.take())
        } else {
            Ok(None)
        }
    }
}
