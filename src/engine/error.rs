//! Typed errors and close reasons of the Engine.IO layer.

/// Why a packet from a client could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An empty packet (no type digit).
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type (`0`-`6`, or `b` on polling).
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A `b` packet whose data is not base64.
    #[error("invalid base64 in binary packet")]
    Base64,
    /// A text payload that is not UTF-8.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
}

/// Rate limit of the refusal log lines.
static REFUSAL_LOG: std::sync::LazyLock<crate::util::counter::LogLimiter> =
    std::sync::LazyLock::new(|| {
        crate::util::counter::LogLimiter::new(std::time::Duration::from_secs(1), 20)
    });

/// Refusal log lines held back so far.
pub fn refusal_log_suppressed() -> u64 {
    REFUSAL_LOG.suppressed()
}

/// The HTTP-level refusals of the protocol, answered with status 400 (403
/// for [`HttpError::Forbidden`], 429 and 503 for the abuse limits, with
/// `Retry-After`) and a JSON body `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Code 0: `transport` missing or unknown.
    #[error("Transport unknown")]
    UnknownTransport,
    /// Code 1: `sid` unknown (never existed or closed).
    #[error("Session ID unknown")]
    UnknownSid,
    /// Code 2: a handshake that is not a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: a request that does not fit the session (wrong transport, duplicate, ...).
    #[error("Bad request")]
    BadRequest,
    /// Code 4: refused by the `allow_request` hook, or a WebSocket from an
    /// origin that is not allowed.
    #[error("Forbidden")]
    Forbidden,
    /// Code 5: `EIO` missing or not 4.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// Code 6 (status 429): this address opens sessions faster than allowed.
    #[error("Too many requests")]
    TooManyRequests,
    /// Code 7 (status 503): the server holds as many sessions as allowed.
    #[error("Server busy")]
    ServerBusy,
}

impl HttpError {
    /// The protocol's numeric error code.
    pub fn code(self) -> u8 {
        match self {
            HttpError::UnknownTransport => 0,
            HttpError::UnknownSid => 1,
            HttpError::BadHandshakeMethod => 2,
            HttpError::BadRequest => 3,
            HttpError::Forbidden => 4,
            HttpError::UnsupportedProtocolVersion => 5,
            HttpError::TooManyRequests => 6,
            HttpError::ServerBusy => 7,
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Forbidden => 403,
            HttpError::TooManyRequests => 429,
            HttpError::ServerBusy => 503,
            _ => 400,
        }
    }

    /// The JSON body of the refusal.
    pub fn body(self) -> String {
        format!("{{\"code\":{},\"message\":\"{}\"}}", self.code(), self)
    }

    /// The `Retry-After` seconds of a refusal that clears by itself.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            HttpError::TooManyRequests => Some(1),
            HttpError::ServerBusy => Some(5),
            _ => None,
        }
    }

    /// The HTTP response of the refusal: its status and JSON body. Each
    /// refusal is logged with its code (at most 20 lines a second).
    pub(crate) fn response(self) -> http::Response<crate::http::Body> {
        if let Some(suppressed) = REFUSAL_LOG.allow() {
            tracing::info!(
                code = self.code(),
                status = self.status(),
                suppressed,
                "engine.io request refused"
            );
        }
        let mut res = crate::http::response(self.status(), Some("application/json"), self.body());
        if let Some(secs) = self.retry_after() {
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        res
    }
}

/// Why a session ended; handed to the upper layer exactly once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The client sent a `1` close packet.
    #[error("client close")]
    ClientClose,
    /// The transport went away (WebSocket closed, TCP reset).
    #[error("transport close")]
    TransportClose,
    /// The transport broke a rule (duplicate poll, WebSocket protocol error, I/O error).
    #[error("transport error: {0}")]
    TransportError(TransportFault),
    /// The client sent something that is not an Engine.IO packet, or a packet
    /// it must not send (a v4 client never pings).
    #[error("parse error")]
    ParseError,
    /// No pong within `pingTimeout`.
    #[error("ping timeout")]
    PingTimeout,
    /// A polling session whose client made no request after the handshake
    /// within the first-exchange timeout.
    #[error("first exchange timeout")]
    FirstExchangeTimeout,
    /// The server (upper layer or application) closed the session.
    #[error("forced close")]
    ForcedClose,
    /// The outbound queue overflowed and the policy is to disconnect.
    #[error("outbound buffer full")]
    BufferFull,
    /// A message or request body over `maxPayload`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The upper layer refused the session after it opened (e.g. a connect timeout).
    #[error("{0}")]
    Upper(&'static str),
}

/// The transport faults that end a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportFault {
    /// A second GET while one was pending.
    #[error("overlapping GET requests")]
    DuplicateGet,
    /// A second POST while one was running.
    #[error("overlapping POST requests")]
    DuplicatePost,
    /// A POST with a binary content type (v4 clients send base64 text).
    #[error("unsupported content type")]
    BadContentType,
    /// A WebSocket framing violation.
    #[error("websocket protocol violation")]
    WebSocketProtocol,
    /// A read or write failed.
    #[error("i/o error")]
    Io,
    /// A polling POST body arrived slower than the rate floor allows.
    #[error("request body too slow")]
    SlowBody,
}

/// Why an outgoing packet was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The outbound queue is full (the packet was dropped; under the
    /// disconnect policy the session is now closing).
    #[error("outbound queue full")]
    QueueFull,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_error_bodies() {
        assert_eq!(
            HttpError::UnknownTransport.body(),
            r#"{"code":0,"message":"Transport unknown"}"#
        );
        assert_eq!(HttpError::Forbidden.status(), 403);
        assert_eq!(
            HttpError::TooManyRequests.body(),
            r#"{"code":6,"message":"Too many requests"}"#
        );
        assert_eq!(HttpError::ServerBusy.status(), 503);
        let res = HttpError::TooManyRequests.response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "1");
    }
}
