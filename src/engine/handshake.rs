//! What the upper layer may know about the request that opened a session,
//! and the query-string parsing the router and [`HandshakeInfo::query`] share.
//!
//! Kept apart from the session so that the session's state machine and the
//! router both depend on it without depending on each other.

use std::net::SocketAddr;
use std::time::SystemTime;

/// The request headers a session keeps from its handshake (lowercase):
/// credentials (`authorization`, `cookie`), who the client is
/// (`user-agent`, `origin`, `referer`, `accept-language`, `host`) and where
/// it is behind a proxy (`x-forwarded-for`, `x-real-ip`, `forwarded`,
/// `cf-connecting-ip`). Nothing else above the engine reads headers.
pub const KEPT_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "user-agent",
    "origin",
    "referer",
    "accept-language",
    "host",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "cf-connecting-ip",
];

/// What the upper layer may know about the request that opened a session.
#[derive(Debug)]
pub struct HandshakeInfo {
    /// The request URI (path and query).
    pub uri: http::Uri,
    /// The request headers in [`KEPT_HEADERS`], within the engine's
    /// handshake byte budget (SPEC.md §2.16).
    pub headers: http::HeaderMap,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// When the session was opened.
    pub time: SystemTime,
}

impl HandshakeInfo {
    /// The handshake of request `parts`, copied into allocations of its own.
    /// (hyper parses the URI and header values as slices of the connection's
    /// read buffer: keeping clones would pin that 8 KiB buffer for the whole
    /// life of the session.)
    ///
    /// Only the headers in [`KEPT_HEADERS`] are kept, in request order, while
    /// they fit in `budget` bytes together with the URI (name + value
    /// lengths); the rest are dropped. A session thus costs at most about
    /// `budget` bytes of handshake however large its request was. (The
    /// router refuses a URI over the budget before this.)
    pub(crate) fn detached(
        parts: &http::request::Parts,
        remote_addr: SocketAddr,
        budget: usize,
    ) -> Self {
        let uri_text = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = http::Uri::try_from(uri_text).unwrap_or_default();
        let mut left = budget.saturating_sub(uri_text.len());
        let mut headers = http::HeaderMap::new();
        for (name, value) in &parts.headers {
            if !KEPT_HEADERS.contains(&name.as_str()) {
                continue;
            }
            let cost = name.as_str().len() + value.len();
            if cost > left {
                continue;
            }
            left -= cost;
            if let Ok(v) = http::HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(name.clone(), v);
            }
        }
        HandshakeInfo {
            uri,
            headers,
            remote_addr,
            time: SystemTime::now(),
        }
    }

    /// The handshake of a WebSocket attached in process (no HTTP request:
    /// see [`super::Engine::attach_websocket`]).
    pub(crate) fn in_process() -> Self {
        HandshakeInfo {
            uri: http::Uri::from_static("/?EIO=4&transport=websocket"),
            headers: http::HeaderMap::new(),
            remote_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            time: SystemTime::now(),
        }
    }

    /// The value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.uri.query().unwrap_or(""), name)
    }
}

/// Reads query parameter `name` from a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_keeps_selected_headers_within_budget() {
        let req = http::Request::get("/socket.io/?EIO=4&transport=polling")
            .header("user-agent", "ua")
            .header("x-junk", "x".repeat(1000))
            .header("authorization", "Bearer abc")
            .header("cookie", "c".repeat(5000))
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let info = HandshakeInfo::detached(&parts, SocketAddr::from(([127, 0, 0, 1], 1)), 200);
        assert_eq!(info.query("EIO").as_deref(), Some("4"));
        assert_eq!(info.headers["user-agent"], "ua");
        assert_eq!(info.headers["authorization"], "Bearer abc");
        assert!(info.headers.get("x-junk").is_none());
        assert!(info.headers.get("cookie").is_none(), "over the budget");
    }

    #[test]
    fn query_parsing() {
        let q = "EIO=4&transport=polling&t=N8hyd6w&sid=a%2Bb";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "sid").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("x=%zz%", "x").as_deref(), Some("%zz%"));
        assert_eq!(query_param("x=%4", "x").as_deref(), Some("%4"));
    }
}
