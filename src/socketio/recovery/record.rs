//! The byte layout of the durable recovery log's records: a kept packet
//! (keyed by its sequence number, big-endian, so sled's order is broadcast
//! order) and a kept session (keyed by its pid).
//!
//! A small length-prefixed binary layout rather than JSON: a packet's frames
//! are bytes (binary attachments, or a whole msgpack packet), and writing
//! them as they are keeps the one append per broadcast cheap. Every length
//! is a little-endian `u32`, every time a little-endian `u64` of Unix
//! milliseconds. A record that does not parse is reported as a
//! [`RecordError`] and skipped by the loader.

use std::sync::Arc;

use serde_json::Value;

use super::super::rooms::Room;
use crate::engine::{Frame, FrameBuilder, PacketType};

/// Why a stored record could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    /// The record ends before its last field.
    #[error("record truncated")]
    Truncated,
    /// A name or a text frame is not UTF-8, or a text frame is not a message.
    #[error("record holds a malformed string or frame")]
    Malformed,
    /// The session data is not JSON.
    #[error("session data is not JSON")]
    Json,
    /// Bytes follow the last field.
    #[error("trailing bytes after the record")]
    Trailing,
}

/// A packet as kept in the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PacketRecord {
    /// When it was broadcast (Unix ms).
    pub at: u64,
    /// The rooms it targeted (empty: the whole namespace).
    pub rooms: Vec<Room>,
    /// The rooms it excluded.
    pub except: Vec<Room>,
    /// Its frames, in sending order.
    pub frames: Vec<Frame>,
}

/// A session as kept in the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionRecord {
    /// When it was saved (Unix ms).
    pub at: u64,
    /// The socket id.
    pub sid: Arc<str>,
    /// Its rooms (its own id included).
    pub rooms: Vec<Room>,
    /// The `serde_json::Value` of its data, if it had one.
    pub data: Option<Value>,
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_rooms(out: &mut Vec<u8>, rooms: &[Room]) {
    put_len(out, rooms.len());
    for r in rooms {
        put_bytes(out, r.as_bytes());
    }
}

/// Encodes a packet record from its parts (no copy of the frames first).
pub(crate) fn encode_packet(at: u64, rooms: &[Room], except: &[Room], frames: &[Frame]) -> Vec<u8> {
    let size: usize = frames.iter().map(|f| f.len() + 5).sum::<usize>()
        + rooms
            .iter()
            .chain(except)
            .map(|r| r.len() + 4)
            .sum::<usize>()
        + 20;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&at.to_le_bytes());
    put_rooms(&mut out, rooms);
    put_rooms(&mut out, except);
    put_len(&mut out, frames.len());
    for f in frames {
        out.push(u8::from(f.is_binary()));
        put_bytes(&mut out, f.payload());
    }
    out
}

/// Encodes a session record.
pub(crate) fn encode_session(at: u64, sid: &str, rooms: &[Room], data: Option<&Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&at.to_le_bytes());
    put_bytes(&mut out, sid.as_bytes());
    put_rooms(&mut out, rooms);
    match data.map(serde_json::to_vec) {
        Some(Ok(json)) => {
            out.push(1);
            put_bytes(&mut out, &json);
        }
        _ => out.push(0),
    }
    out
}

/// Reads fields off a record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| RecordError::Truncated)?,
        ))
    }

    fn len(&mut self) -> Result<usize, RecordError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| RecordError::Truncated)?) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| RecordError::Malformed)
    }

    fn rooms(&mut self) -> Result<Vec<Room>, RecordError> {
        let n = self.len()?;
        // Each room takes at least its 4-byte length: bounds the allocation.
        if n > self.0.len() / 4 {
            return Err(RecordError::Truncated);
        }
        (0..n).map(|_| self.str().map(Room::from)).collect()
    }

    fn frame(&mut self) -> Result<Frame, RecordError> {
        let binary = self.u8()? != 0;
        let payload = self.bytes()?;
        if binary {
            return Ok(Frame::binary(payload));
        }
        let (&kind, text) = payload.split_first().ok_or(RecordError::Malformed)?;
        let kind = PacketType::from_char(kind).ok_or(RecordError::Malformed)?;
        let text = std::str::from_utf8(text).map_err(|_| RecordError::Malformed)?;
        let mut b = FrameBuilder::text(kind, text.len());
        b.buf().extend_from_slice(text.as_bytes());
        Ok(b.finish())
    }

    fn end(&self) -> Result<(), RecordError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Trailing)
        }
    }
}

/// Decodes a packet record.
pub(crate) fn decode_packet(b: &[u8]) -> Result<PacketRecord, RecordError> {
    let mut r = Reader(b);
    let at = r.u64()?;
    let rooms = r.rooms()?;
    let except = r.rooms()?;
    let n = r.len()?;
    if n > r.0.len() / 5 {
        return Err(RecordError::Truncated);
    }
    let frames = (0..n).map(|_| r.frame()).collect::<Result<_, _>>()?;
    r.end()?;
    Ok(PacketRecord {
        at,
        rooms,
        except,
        frames,
    })
}

/// Decodes a session record.
pub(crate) fn decode_session(b: &[u8]) -> Result<SessionRecord, RecordError> {
    let mut r = Reader(b);
    let at = r.u64()?;
    let sid = Arc::from(r.str()?);
    let rooms = r.rooms()?;
    let data = match r.u8()? {
        0 => None,
        _ => Some(serde_json::from_slice(r.bytes()?).map_err(|_| RecordError::Json)?),
    };
    r.end()?;
    Ok(SessionRecord {
        at,
        sid,
        rooms,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packet_round_trip() {
        let frames = vec![Frame::message("2[\"e\",1]"), Frame::binary(&[0, 1, 255])];
        let rooms: Vec<Room> = vec!["a".into(), "é".into()];
        let except: Vec<Room> = vec!["sid".into()];
        let b = encode_packet(42, &rooms, &except, &frames);
        let p = decode_packet(&b).unwrap();
        assert_eq!(
            p,
            PacketRecord {
                at: 42,
                rooms,
                except,
                frames
            }
        );
    }

    #[test]
    fn session_round_trip() {
        let rooms: Vec<Room> = vec!["x".into()];
        for data in [None, Some(json!({"user": "a", "n": [1, 2]}))] {
            let b = encode_session(7, "sid1", &rooms, data.as_ref());
            let s = decode_session(&b).unwrap();
            assert_eq!((s.at, &*s.sid, &s.rooms, s.data), (7, "sid1", &rooms, data));
        }
    }

    proptest::proptest! {
        #[test]
        fn packets_round_trip_and_garbage_never_panics(
            at: u64,
            rooms in proptest::collection::vec("\\PC{0,8}", 0..4),
            texts in proptest::collection::vec("\\PC{0,40}", 0..3),
            bins in proptest::collection::vec(proptest::collection::vec(0u8.., 0..40), 0..3),
            garbage in proptest::collection::vec(0u8.., 0..64),
        ) {
            let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(r.as_str())).collect();
            let frames: Vec<Frame> = texts
                .iter()
                .map(|t| Frame::message(t))
                .chain(bins.iter().map(|b| Frame::binary(b)))
                .collect();
            let b = encode_packet(at, &rooms, &rooms, &frames);
            let p = decode_packet(&b).unwrap();
            let got = (p.at, &p.rooms, &p.except, &p.frames);
            proptest::prop_assert_eq!(got, (at, &rooms, &rooms, &frames));
            let _ = decode_packet(&garbage);
            let _ = decode_session(&garbage);
        }
    }

    #[test]
    fn truncated_and_trailing_records_are_errors() {
        let b = encode_packet(1, &["r".into()], &[], &[Frame::message("2[]")]);
        for cut in 0..b.len() {
            assert!(decode_packet(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(decode_packet(&long), Err(RecordError::Trailing));
        // A huge room count is refused before allocating.
        let mut bad = 1u64.to_le_bytes().to_vec();
        bad.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_packet(&bad), Err(RecordError::Truncated));
    }
}
