//! The WebSocket transport: the HTTP upgrade, then one task per connection
//! that reads client frames and writes queued [`Frame`]s.
//!
//! The task owns the socket. Reads go through an on-stack buffer so an idle
//! connection holds no read buffer; writes take everything queued for the
//! session and send it with one vectored write, so packets that pile up while
//! the socket is busy leave together.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::SessionLink;
use crate::engine::deflate::{negotiate, Agreed, Deflate};
use crate::engine::error::{CloseReason, HttpError, TransportFault};
use crate::engine::frame::{close_frame, pong_frame, WsDecoder, WsError, WsEvent};
use crate::engine::packet::{Frame, Packet, PacketType};
use crate::engine::session::Connection;
use crate::http::{response, Body, HttpStream};

/// The socket under an upgraded connection: the plain TCP stream when hyper
/// hands it back (the usual case), otherwise hyper's wrapper; or any byte
/// stream handed to the in-process test hook
/// ([`crate::engine::Engine::attach_websocket`]).
pub(crate) enum WsIo {
    /// The TCP stream, with the `101` response head that hyper wrote and
    /// [`crate::http::HttpStream`] held back, still to be sent.
    Tcp(TcpStream, Option<Bytes>),
    /// The TCP stream, shared with the session for direct writes
    /// ([`crate::engine::direct`]); only ever used through `&TcpStream`.
    Shared(Arc<TcpStream>),
    /// What hyper handed back when it was not the plain TCP stream.
    Other(TokioIo<Upgraded>),
    /// Any byte stream (the in-process test hook).
    Dyn(Box<dyn DynIo>),
}

/// A byte stream the WebSocket transport can run over.
pub(crate) trait DynIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> DynIo for T {}

impl WsIo {
    /// Takes the bytes owed to the stream before any frame (the `101` head).
    fn take_head(&mut self) -> Option<Bytes> {
        match self {
            WsIo::Tcp(_, head) => head.take(),
            _ => None,
        }
    }
}

/// One I/O step on a shared stream: wait until `ready`, then try `op`; a
/// `WouldBlock` (readiness was stale) clears it and waits again.
fn poll_shared<T>(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> Poll<std::io::Result<()>>,
    mut op: impl FnMut() -> std::io::Result<T>,
) -> Poll<std::io::Result<T>> {
    loop {
        ready!(ready(cx))?;
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return Poll::Ready(r),
        }
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s, _) => Pin::new(s).poll_read(cx, buf),
            WsIo::Shared(s) => {
                let n = ready!(poll_shared(
                    cx,
                    |cx| s.poll_read_ready(cx),
                    || s.try_read(buf.initialize_unfilled())
                ))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            WsIo::Other(s) => Pin::new(s).poll_read(cx, buf),
            WsIo::Dyn(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(s, _) => Pin::new(s).poll_write(cx, buf),
            WsIo::Shared(s) => poll_shared(cx, |cx| s.poll_write_ready(cx), || s.try_write(buf)),
            WsIo::Other(s) => Pin::new(s).poll_write(cx, buf),
            WsIo::Dyn(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            WsIo::Shared(s) => poll_shared(
                cx,
                |cx| s.poll_write_ready(cx),
                || s.try_write_vectored(bufs),
            ),
            WsIo::Other(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WsIo::Dyn(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            WsIo::Tcp(s, _) => s.is_write_vectored(),
            WsIo::Shared(_) => true,
            WsIo::Other(s) => s.is_write_vectored(),
            WsIo::Dyn(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s, _) => Pin::new(s).poll_flush(cx),
            WsIo::Shared(_) => Poll::Ready(Ok(())),
            WsIo::Other(s) => Pin::new(s).poll_flush(cx),
            WsIo::Dyn(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s, _) => Pin::new(s).poll_shutdown(cx),
            // Turned back into `Tcp` (see `unshare`) before the end; a
            // stream still shared closes when its last owner drops it.
            WsIo::Shared(_) => Poll::Ready(Ok(())),
            WsIo::Other(s) => Pin::new(s).poll_shutdown(cx),
            WsIo::Dyn(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A WebSocket handed over by hyper: the socket, any bytes already read,
/// and the permessage-deflate parameters agreed in the handshake.
pub(crate) type Accepted = (WsIo, BytesMut, Option<Agreed>);

/// Answers a WebSocket upgrade request with 101 (agreeing permessage-deflate
/// when `deflate` is on and the client offers something it can honour) and
/// runs `on_upgrade` with the socket once hyper hands it over, or with
/// `None` if the upgrade fails or is not handed over within `stall`.
pub(crate) fn accept<B, F, Fut>(
    mut req: Request<B>,
    deflate: Option<&Deflate>,
    stall: std::time::Duration,
    on_upgrade: F,
) -> Response<Body>
where
    B: Send + 'static,
    F: FnOnce(Option<Accepted>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (Some(key), true) = (key, version_ok) else {
        return HttpError::BadRequest.response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let agreed = deflate.and_then(|cfg| {
        let offers = req.headers().get_all(header::SEC_WEBSOCKET_EXTENSIONS);
        negotiate(cfg, offers.iter().map(HeaderValue::as_bytes))
    });
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = tokio::time::timeout(stall, on).await else {
            tracing::debug!("websocket upgrade stalled");
            return on_upgrade(None).await;
        };
        match upgraded {
            Ok(up) => {
                // The connection's place under the accept loop's cap is
                // held while the WebSocket runs.
                let mut _permit = None;
                let parts = match up.downcast::<TokioIo<HttpStream>>() {
                    Ok(p) => {
                        let (stream, head, permit) = p.io.into_inner().into_parts();
                        _permit = Some(permit);
                        let rbuf = BytesMut::from(&p.read_buf[..]);
                        (WsIo::Tcp(stream, head), rbuf, agreed)
                    }
                    Err(up) => (WsIo::Other(TokioIo::new(up)), BytesMut::new(), agreed),
                };
                on_upgrade(Some(parts)).await
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                on_upgrade(None).await
            }
        }
    });
    let mut res = response(101, None, Bytes::new());
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(v) = agreed.and_then(|a| HeaderValue::from_str(&a.response()).ok()) {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    res
}

/// Closes a WebSocket that may not join its session (a second one for the
/// same sid) with status 1008.
pub(crate) async fn refuse(mut io: WsIo) {
    let mut out: Vec<Bytes> = io.take_head().into_iter().collect();
    out.push(close_frame(1008));
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        let _ = write_all(&mut io, &out).await;
        let _ = io.shutdown().await;
    })
    .await;
}

/// How long the last writes to a closing WebSocket may take.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// How the connection task ended.
enum Outcome {
    /// The session closed (server side, parse error, client `1`).
    SessionClosed,
    /// The peer closed the WebSocket or the TCP stream.
    PeerClosed,
    /// A read or write failed.
    Io,
    /// The client broke the framing rules.
    Protocol(WsError),
    /// A probing WebSocket did something other than probe and upgrade, or took too long.
    ProbeAbandoned,
    /// The session closed while a write was waiting for the client: the
    /// socket may end in the middle of a frame, so nothing more (not even a
    /// close frame) may be written to it.
    Interrupted,
}

/// Runs one WebSocket connection of a session until it ends. With `probing`,
/// the socket is an upgrade candidate of a polling session: it answers
/// `2probe` and takes over the session on `5`. With `deflate`, the client's
/// compressed messages are inflated and, once the socket is the session's
/// transport, packets over the threshold are written compressed.
pub(crate) async fn run<L: SessionLink>(link: L, up: Accepted, probing: bool) {
    let (mut io, mut rbuf, deflate) = up;
    let conn = link.conn();
    let max = conn.config().max_payload;
    let mut dec = match deflate {
        Some(a) => WsDecoder::with_deflate(max, a.client_no_context_takeover),
        None => WsDecoder::new(max),
    };
    let threshold = deflate.and(conn.config().deflate.as_ref().map(|d| d.threshold));
    if let (Some(t), false) = (threshold, probing) {
        conn.use_deflate(t);
    }
    let mut active = !probing;
    let probe_deadline = Instant::now() + conn.config().upgrade_timeout;
    // The `101` goes out with the first frames (the open packet, or at once
    // for a probe, whose client speaks first).
    let mut ctrl: Vec<Bytes> = io.take_head().into_iter().collect();
    let outcome = 'conn: loop {
        loop {
            let event = match dec.decode(&mut rbuf) {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => break 'conn Outcome::Protocol(e),
            };
            let step = if active {
                on_active_event(&link, event, &mut ctrl)
            } else {
                let step = on_probe_event(conn, event, &mut ctrl, &mut active);
                if active {
                    if let Some(t) = threshold {
                        // Upgraded: before the first write of the session's queue.
                        conn.use_deflate(t);
                    }
                    link.on_upgraded();
                }
                step
            };
            if let Some(o) = step {
                break 'conn o;
            }
        }
        if rbuf.is_empty() && rbuf.capacity() > 0 {
            rbuf = BytesMut::new();
        }
        if active {
            share(&mut io, conn);
        }
        let mut out = std::mem::take(&mut ctrl);
        let closing = if active {
            conn.take_for_write(&mut out)
        } else {
            conn.is_closed()
        };
        let wrote = !out.is_empty();
        if wrote {
            let write = write_all(&mut io, &out);
            tokio::pin!(write);
            // The last flush of a closed session (its `1`) gets the same
            // bound as `finish`: a client that stopped reading must not
            // keep the task and its socket forever (no heartbeat is left
            // to end it).
            let flush_bound = tokio::time::sleep(CLOSE_FLUSH);
            tokio::pin!(flush_bound);
            let done = loop {
                tokio::select! {
                    r = &mut write => break r.is_ok(),
                    _ = conn.ws_wakeup() => {
                        if conn.is_closed() && !closing {
                            break false;
                        }
                    }
                    _ = &mut flush_bound, if closing => break false,
                }
            };
            if !done {
                break if conn.is_closed() {
                    Outcome::Interrupted
                } else {
                    Outcome::Io
                };
            }
        }
        if closing {
            break Outcome::SessionClosed;
        }
        if wrote {
            // Packets queued while the write was pending woke `ws_notify`,
            // and the select above consumed that wake-up; later pushes onto
            // the non-empty queue wake no one. Look at the queue again
            // before waiting on the socket, or they would sit there until
            // the client happens to send something.
            continue;
        }
        let read = if active {
            tokio::select! {
                r = read_some(&mut io, &mut rbuf) => r,
                _ = conn.ws_wakeup() => continue,
            }
        } else {
            tokio::select! {
                r = read_some(&mut io, &mut rbuf) => r,
                _ = conn.ws_wakeup() => continue,
                _ = tokio::time::sleep_until(probe_deadline) => break Outcome::ProbeAbandoned,
            }
        };
        match read {
            Ok(0) => break Outcome::PeerClosed,
            Ok(n) => conn.stats().received[1].bytes.add(n as u64),
            Err(_) => break Outcome::Io,
        }
    };
    finish(conn, io, outcome, active).await;
}

/// Shares the TCP stream of the active WebSocket with its session, so that
/// senders can write to it directly while it is idle
/// ([`crate::engine::direct`]).
fn share(io: &mut WsIo, conn: &Connection) {
    if !matches!(io, WsIo::Tcp(_, None)) {
        return;
    }
    conn.share_stream(|| {
        let empty = WsIo::Dyn(Box::new(tokio::io::empty()));
        let WsIo::Tcp(stream, None) = std::mem::replace(io, empty) else {
            unreachable!("checked above");
        };
        let stream = Arc::new(stream);
        *io = WsIo::Shared(stream.clone());
        stream
    });
}

/// Takes the stream back from the session (under its lock, so no direct
/// write can start afterwards) to own it again for the last writes and the
/// shutdown.
fn unshare(io: WsIo, conn: &Connection) -> WsIo {
    conn.unshare_stream();
    match io {
        WsIo::Shared(s) => match Arc::try_unwrap(s) {
            Ok(s) => WsIo::Tcp(s, None),
            Err(s) => WsIo::Shared(s),
        },
        other => other,
    }
}

/// Handles an event on the session's active WebSocket; `Some` ends the connection.
fn on_active_event<L: SessionLink>(
    link: &L,
    event: WsEvent,
    ctrl: &mut Vec<Bytes>,
) -> Option<Outcome> {
    let packet = match event {
        WsEvent::Text(t) => match Packet::decode_text(t, false) {
            Ok(p) => p,
            Err(_) => {
                link.conn().close_with(CloseReason::ParseError);
                return Some(Outcome::SessionClosed);
            }
        },
        WsEvent::Binary(b) => Packet::Binary(b),
        WsEvent::Ping(p) => {
            ctrl.push(pong_frame(&p));
            return None;
        }
        WsEvent::Pong => return None,
        WsEvent::Close(_) => return Some(Outcome::PeerClosed),
    };
    link.conn().stats().received[1].packets.inc();
    if link.on_packet(packet) {
        None
    } else {
        Some(Outcome::SessionClosed)
    }
}

/// Handles an event on a probing WebSocket; `Some` ends the probe.
fn on_probe_event(
    conn: &Connection,
    event: WsEvent,
    ctrl: &mut Vec<Bytes>,
    active: &mut bool,
) -> Option<Outcome> {
    let text = match event {
        WsEvent::Text(t) => t,
        WsEvent::Ping(p) => {
            ctrl.push(pong_frame(&p));
            return None;
        }
        WsEvent::Pong => return None,
        WsEvent::Close(_) => return Some(Outcome::PeerClosed),
        WsEvent::Binary(_) => return Some(Outcome::ProbeAbandoned),
    };
    match text.as_str() {
        "2probe" => {
            ctrl.push(Frame::text(PacketType::Pong, "probe").ws_bytes().clone());
            conn.probe_received();
            None
        }
        "5" => {
            if !conn.complete_upgrade() {
                return Some(Outcome::SessionClosed);
            }
            *active = true;
            None
        }
        _ => Some(Outcome::ProbeAbandoned),
    }
}

/// Ends the connection: records why on the session, sends a close frame when
/// the socket is still usable, and shuts the socket down.
async fn finish(conn: &Connection, io: WsIo, outcome: Outcome, active: bool) {
    let mut out: Vec<Bytes> = Vec::new();
    let mut io = unshare(io, conn);
    if active {
        let reason = match outcome {
            Outcome::SessionClosed | Outcome::ProbeAbandoned | Outcome::Interrupted => None,
            Outcome::PeerClosed => Some(CloseReason::TransportClose),
            Outcome::Io => Some(CloseReason::TransportError(TransportFault::Io)),
            Outcome::Protocol(WsError::TooBig) => Some(CloseReason::PayloadTooLarge),
            Outcome::Protocol(_) => Some(CloseReason::TransportError(
                TransportFault::WebSocketProtocol,
            )),
        };
        // Whatever is still queued (e.g. the `1` of a server close) goes out first.
        conn.end_websocket(reason, &mut out);
    } else {
        conn.probe_ended();
    }
    if matches!(outcome, Outcome::Io | Outcome::Interrupted) {
        return;
    }
    let code = match outcome {
        Outcome::Protocol(e) => e.close_code(),
        _ => 1000,
    };
    out.push(close_frame(code));
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        let _ = write_all(&mut io, &out).await;
        let _ = io.shutdown().await;
    })
    .await;
}

/// Reads what is available into `rbuf`. Small reads go through a stack
/// buffer, so an idle connection keeps no heap buffer; a large frame in
/// progress (for which the decoder reserved room) is read in place.
async fn read_some(io: &mut WsIo, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    if rbuf.capacity() - rbuf.len() >= 4096 {
        return io.read_buf(rbuf).await;
    }
    std::future::poll_fn(|cx| {
        let mut stack = [0u8; 4096];
        let mut rb = ReadBuf::new(&mut stack);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut rb))?;
        rbuf.extend_from_slice(rb.filled());
        Poll::Ready(Ok(rb.filled().len()))
    })
    .await
}

/// Writes all buffers, many at a time with vectored writes.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    io: &mut W,
    bufs: &[Bytes],
) -> std::io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    while idx < bufs.len() {
        // The slices live only inside one poll, so the task does not keep
        // them (a kilobyte) while it waits.
        let mut written = std::future::poll_fn(|cx| {
            const MAX_SLICES: usize = 64;
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (i, b) in bufs[idx..].iter().take(MAX_SLICES).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &b[off..] } else { &b[..] });
                n += 1;
            }
            Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n])
        })
        .await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 && idx < bufs.len() {
            let left = bufs[idx].len() - off;
            if written >= left {
                written -= left;
                idx += 1;
                off = 0;
            } else {
                off += written;
                written = 0;
            }
        }
    }
    io.flush().await
}
