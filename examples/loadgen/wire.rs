//! The client side of the wire: masked client frames, parsing the server's
//! frames, and the allocation-free scan that counts `bcast` frames (the hot
//! path of every receiver: no allocation per message, only sampled
//! receivers parse the send timestamp). The per-read entry points are
//! `#[inline]` so that splitting the generator into modules adds no call on
//! that path.

use std::cell::RefCell;

use rollcall::engine::deflate::Inflater;

use crate::meter::now_ns;
use crate::stats::{Shared, MAX_SCEN};

thread_local! {
    static MASK_STATE: RefCell<u32> = const { RefCell::new(0x9e37_79b9) };
    /// The sampled receivers' inflater: the server agreed not to carry
    /// context between messages, so every message inflates on its own and
    /// one inflater serves every receiver of the thread.
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new(false));
}

/// RSV1: the frame is compressed (permessage-deflate).
const RSV1: u8 = 0x40;

fn next_mask() -> [u8; 4] {
    MASK_STATE.with(|s| {
        let mut x = *s.borrow();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s.borrow_mut() = x;
        x.to_ne_bytes()
    })
}

/// Appends a masked client text frame carrying `payload` to `out`.
fn put_client_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = next_mask();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// One masked client text frame carrying `payload`.
pub(crate) fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 14);
    put_client_frame(&mut v, payload);
    v
}

/// Parses one complete server frame at the start of `buf`: (opcode, payload range, length used).
pub(crate) fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, mut h) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        h += 4; // servers do not mask, but be tolerant
    }
    if buf.len() < h + len {
        return None;
    }
    Some((op, h..h + len, h + len))
}

/// Appends one `broadcast` emit for scenario `scen`, stamped with the send
/// time; `roster` (from [`roster`], may be empty) rides along in the payload.
pub(crate) fn broadcast_frame(out: &mut Vec<u8>, scen: usize, roster: &str) {
    let payload = if roster.is_empty() {
        format!(r#"42["broadcast","r",{{"s":{scen},"t":{}}}]"#, now_ns())
    } else {
        format!(
            r#"42["broadcast","r",{{"s":{scen},"t":{},"roster":{roster}}}]"#,
            now_ns()
        )
    };
    put_client_frame(out, payload.as_bytes());
}

/// A JSON roster of about `bytes` bytes (an attendance list: ids, names,
/// presence), or an empty string for 0.
pub(crate) fn roster(bytes: usize) -> String {
    if bytes == 0 {
        return String::new();
    }
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() + 2 < bytes {
        if i > 0 {
            s.push(',');
        }
        let present = ["true", "false", "\"late\""][i % 3];
        s.push_str(&format!(
            r#"{{"id":"s-{i:04}","name":"Student {i}","present":{present}}}"#
        ));
        i += 1;
    }
    s.push(']');
    s
}

/// What the server sends for each broadcast: `42["bcast",{"s":` then the tag digit.
const BCAST_PREFIX: &[u8] = br#"42["bcast",{"s":"#;

/// Per-read tally of one receiver.
#[derive(Default)]
pub(crate) struct Tally {
    counts: [u32; MAX_SCEN],
    /// Compressed text frames a bulk receiver counted without inflating
    /// (the broadcasts of the armed scenario: nothing else is that long).
    compressed: u32,
    /// Bytes read.
    bytes: u64,
    lat: Vec<(u8, u64)>,
    ping: bool,
    closed: bool,
}

impl Tally {
    /// Whether a ping arrived since the last call (answer it once).
    #[inline]
    pub(crate) fn take_ping(&mut self) -> bool {
        std::mem::take(&mut self.ping)
    }

    /// Whether the server closed the connection (a close frame or an Engine.IO close).
    #[inline]
    pub(crate) fn closed(&self) -> bool {
        self.closed
    }

    /// Hands the counts and latencies gathered so far to `sh` and resets them.
    #[inline]
    pub(crate) fn flush(&mut self, sh: &Shared) {
        let now = now_ns();
        if self.compressed > 0 {
            sh.add(sh.armed(), std::mem::take(&mut self.compressed) as u64, now);
        }
        sh.add_bytes(std::mem::take(&mut self.bytes));
        for (s, c) in self.counts.iter_mut().enumerate() {
            if *c > 0 {
                sh.add(s, *c as u64, now);
                *c = 0;
            }
        }
        if !self.lat.is_empty() {
            sh.add_latencies(&mut self.lat);
        }
    }
}

/// Parses the `"t":<digits>` that follows the tag in a sampled payload.
fn parse_t(rest: &[u8]) -> Option<u64> {
    let i = rest.windows(4).position(|w| w == b"\"t\":")? + 4;
    let mut v: u64 = 0;
    let mut any = false;
    for &c in &rest[i..] {
        if c.is_ascii_digit() {
            v = v * 10 + (c - b'0') as u64;
            any = true;
        } else {
            break;
        }
    }
    any.then_some(v)
}

fn classify(op: u8, p: &[u8], sampled: bool, now: u64, t: &mut Tally) {
    match op {
        1 => {
            if p.len() > BCAST_PREFIX.len() && p.starts_with(BCAST_PREFIX) {
                let s = p[BCAST_PREFIX.len()].wrapping_sub(b'0') as usize;
                if s < MAX_SCEN {
                    t.counts[s] += 1;
                    if sampled {
                        if let Some(ts) = parse_t(&p[BCAST_PREFIX.len() + 1..]) {
                            t.lat.push((s as u8, now.saturating_sub(ts)));
                        }
                    }
                }
            } else if p == b"2" {
                t.ping = true;
            } else if p.first() == Some(&b'1') {
                t.closed = true;
            }
        }
        8 => t.closed = true,
        _ => {}
    }
}

/// A compressed frame: sampled receivers inflate it and classify what it
/// holds; the others count it (see [`Tally::compressed`]).
#[cold]
fn compressed(op: u8, p: &[u8], sampled: bool, now: u64, t: &mut Tally) {
    if !sampled {
        t.compressed += u32::from(op == 1);
        return;
    }
    match INFLATER.with(|i| i.borrow_mut().inflate(p, 64 << 20)) {
        Ok(plain) => classify(op, &plain, sampled, now, t),
        Err(_) => t.closed = true,
    }
}

/// Counts `n` bytes read off the socket.
#[inline]
pub(crate) fn count_bytes(t: &mut Tally, n: usize) {
    t.bytes += n as u64;
}

/// Scans complete frames in `buf`; returns the bytes used.
#[inline]
pub(crate) fn scan(buf: &[u8], sampled: bool, now: u64, t: &mut Tally) -> usize {
    let mut pos = 0;
    while let Some((op, range, used)) = parse_frame(&buf[pos..]) {
        let p = &buf[pos..][range];
        if buf[pos] & RSV1 != 0 {
            compressed(op, p, sampled, now, t);
        } else {
            classify(op, p, sampled, now, t);
        }
        pos += used;
    }
    pos
}
