//! Helpers shared by the fuzz targets: a reader over the fuzzer's bytes, a
//! tiny WebSocket client codec, the frame of a decoded Engine.IO packet (for
//! round trips), in-process HTTP requests to an engine, and a current-thread
//! Tokio runtime with paused (virtual) time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rollcall::socketio::Limits;
use serde_json::Value;
use tokio::io::{AsyncRead, ReadBuf};

/// Reads values off the fuzzer's input; past the end every read yields zeros
/// or empty slices, so targets never have to check lengths.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed chunk: one length byte, then that many bytes.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.byte() as usize;
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

// The WebSocket client codec (masked client frames, parsing the server's
// frames) is the library's own test-support one.
pub use rollcall::engine::frame::testing::{client_frame, parse_server_frames, ServerFrame};
// So is re-encoding a decoded packet.
pub use rollcall::engine::packet::testing::reencode;

/// Socket.IO decoder limits chosen by the next four input bytes (the
/// `sio_packet` and `sio_msgpack` targets): up to 15 attachments, one of
/// seven ack id bounds, a namespace of up to 255 bytes, depth up to 39.
pub fn sio_limits(input: &mut Input) -> Limits {
    const ACK: [u64; 7] = [0, 1, 9, 99, u32::MAX as u64, (1 << 53) - 1, u64::MAX];
    Limits {
        max_attachments: input.byte() as usize % 16,
        max_ack_id: ACK[input.byte() as usize % ACK.len()],
        max_namespace_len: input.byte() as usize,
        max_depth: input.byte() as usize % 40,
    }
}

/// Limits that let anything the encoders write through.
pub fn open_limits() -> Limits {
    Limits {
        max_attachments: usize::MAX,
        max_ack_id: u64::MAX,
        max_namespace_len: usize::MAX,
        max_depth: usize::MAX,
    }
}

/// Nesting depth of a JSON value (scalars 0, `[]` 1, `[[]]` 2).
pub fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The `num`s of the binary placeholders in `v`, depth-first, the way the
/// encoder walks them (a valid placeholder is not descended into).
pub fn placeholders(v: &Value, out: &mut Vec<usize>) {
    if let Some(n) = rollcall::socketio::packet::placeholder_num(v) {
        out.push(n);
        return;
    }
    match v {
        Value::Array(a) => a.iter().for_each(|x| placeholders(x, out)),
        Value::Object(o) => o.values().for_each(|x| placeholders(x, out)),
        _ => {}
    }
}

/// A current-thread runtime with paused time: time only moves when every
/// task is idle (to the next timer) or when a target sleeps, so heartbeats
/// and timeouts are deterministic and instant.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Lets every task run until all are idle. Under paused time this returns
/// once nothing is runnable (the clock then moves by at most a millisecond).
pub async fn settle() {
    tokio::time::sleep(Duration::from_micros(1)).await;
}

/// Advances virtual time by `d`, running every timer due on the way.
pub async fn tick(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The peer address given to the engine.
pub fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

/// An in-process HTTP request to the engine.
pub fn request(
    method: &str,
    query: &str,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("/engine.io/?{query}"));
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    b.body(Full::new(Bytes::from(body))).expect("request")
}

/// Status and body of an engine response.
pub async fn read_response(res: http::Response<Full<Bytes>>) -> (u16, Bytes) {
    let status = res.status().as_u16();
    let body = match res.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => match e {},
    };
    (status, body)
}

/// The outcome of a non-blocking read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadState {
    /// Some bytes were appended.
    Data,
    /// Nothing available now.
    Pending,
    /// The other end is gone.
    Eof,
}

/// Reads whatever is available right now, without waiting.
pub async fn try_read<R: AsyncRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> ReadState {
    std::future::poll_fn(|cx| {
        let mut buf = [0u8; 8192];
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut *r).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(ReadState::Eof),
            Poll::Ready(Ok(())) => {
                out.extend_from_slice(rb.filled());
                Poll::Ready(ReadState::Data)
            }
            Poll::Ready(Err(_)) => Poll::Ready(ReadState::Eof),
            Poll::Pending => Poll::Ready(ReadState::Pending),
        }
    })
    .await
}

/// Reads until nothing more arrives (settling in between); returns whether
/// the other end is gone.
pub async fn read_all<R: AsyncRead + Unpin>(r: &mut R, out: &mut Vec<u8>) -> bool {
    loop {
        match try_read(r, out).await {
            ReadState::Data => continue,
            ReadState::Eof => return true,
            ReadState::Pending => {
                settle().await;
                match try_read(r, out).await {
                    ReadState::Data => continue,
                    ReadState::Eof => return true,
                    ReadState::Pending => return false,
                }
            }
        }
    }
}

/// Polls a future once: its output if it is ready now.
pub async fn now_or_never<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *f).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}
