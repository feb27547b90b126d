//! HTTP plumbing shared by every server in the crate: the accept loop over
//! hyper's HTTP/1 connections (with upgrades, for WebSocket) and the response
//! body type; the accept loop's admission limits (`guard`, on the
//! per-address buckets and caps of `rate`).

use std::convert::Infallible;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

mod guard;
mod rate;

pub use guard::{refused_connections, ConnLimits};
pub use rate::{addr_key, AddrBuckets, Bucket, Gauge, Permit, Rate};

/// The response body type used by all handlers.
pub type Body = Full<Bytes>;

/// Builds a response with a status, a content type and a body.
pub fn response(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type {
        if let Ok(v) = http::HeaderValue::from_str(ct) {
            res.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
    }
    res
}

/// How many connections may wait to be accepted (the `listen` backlog) with
/// [`bind`]. The system caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Binds a listening TCP socket on `host:port` (the first address `host`
/// resolves to) with a backlog of [`DEFAULT_BACKLOG`]. (Binding with
/// `TcpListener::bind` gives a backlog of 128: a burst of connections
/// overflows it and the clients retry after a second.)
pub async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(DEFAULT_BACKLOG))
        {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into()))
}

/// Failed accepts, every listener of the process.
static ACCEPT_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// At most 5 "accept failed" lines a second (a descriptor shortage fails
/// every accept until it ends).
static ACCEPT_LOG: std::sync::LazyLock<crate::util::counter::LogLimiter> =
    std::sync::LazyLock::new(|| crate::util::counter::LogLimiter::new(Duration::from_secs(1), 5));

/// Number of failed accepts so far (all listeners).
pub fn accept_errors() -> u64 {
    ACCEPT_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// "accept failed" log lines held back so far.
pub fn accept_log_suppressed() -> u64 {
    ACCEPT_LOG.suppressed()
}

/// Accepts connections on `listener` forever and answers each request with
/// `handler(request, peer address)`, under the default [`ConnLimits`].
/// Accept errors (e.g. too many open files) are counted, logged
/// (rate-limited) and retried after a short pause; they never end the loop.
pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, ConnLimits::default(), handler).await
}

/// [`serve`] under `limits`: connections over the per-address rate or the
/// global cap are refused at accept time (SPEC.md §1.1).
pub async fn serve_with<F, Fut>(listener: TcpListener, limits: ConnLimits, handler: F)
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let guard = guard::ConnGuard::new(&limits);
    let header_timeout = limits.header_read_timeout;
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                ACCEPT_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Some(suppressed) = ACCEPT_LOG.allow() {
                    tracing::warn!(error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(permit) = guard.admit(&stream, addr.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let fut = handler(req, addr);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(HttpStream::new(stream, permit)), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
}

/// The TCP stream under one HTTP connection. It passes everything through,
/// except that it holds back a `101 Switching Protocols` response head: the
/// upgraded protocol takes it with [`HttpStream::into_parts`] and sends it
/// together with its own first bytes (for WebSocket, the Engine.IO open
/// packet), saving a write and a wake-up of the client per connection.
/// It also carries the connection's place under the global cap, which an
/// upgraded protocol keeps for as long as it runs.
#[derive(Debug)]
pub(crate) struct HttpStream {
    stream: TcpStream,
    held: Option<Bytes>,
    permit: Permit,
}

impl HttpStream {
    fn new(stream: TcpStream, permit: Permit) -> HttpStream {
        HttpStream {
            stream,
            held: None,
            permit,
        }
    }

    /// The stream, the `101` head held back, if any, and the connection's
    /// place under the global cap.
    pub(crate) fn into_parts(self) -> (TcpStream, Option<Bytes>, Permit) {
        (self.stream, self.held, self.permit)
    }

    /// Holds `buf` if it is a complete `101` response head (and nothing else).
    fn hold(&mut self, buf: &[u8]) -> bool {
        let is_101 = buf.starts_with(b"HTTP/1.1 101 ") && buf.ends_with(b"\r\n\r\n");
        if is_101 && self.held.is_none() {
            self.held = Some(Bytes::copy_from_slice(buf));
            return true;
        }
        false
    }
}

impl AsyncRead for HttpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HttpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.hold(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let nonempty: Vec<&IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).collect();
        if let [only] = nonempty[..] {
            if this.hold(only) {
                return Poll::Ready(Ok(only.len()));
            }
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
