//! What the upper layer may know about the request that opened a session,
//! and the query-string parsing the router and [`HandshakeInfo::query`] share.
//!
//! Kept apart from the session so that the session's state machine and the
//! router both depend on it without depending on each other.

use std::net::SocketAddr;
use std::time::SystemTime;

/// What the upper layer may know about the request that opened a session.
#[derive(Debug)]
pub struct HandshakeInfo {
    /// The request URI (path and query).
    pub uri: http::Uri,
    /// The request headers.
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
    pub(crate) fn detached(parts: &http::request::Parts, remote_addr: SocketAddr) -> Self {
        let uri = http::Uri::try_from(parts.uri.to_string()).unwrap_or_default();
        let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            // The WebSocket handshake's own headers say nothing the upper
            // layers can use; not keeping them saves memory per connection.
            let n = name.as_str();
            if n.starts_with("sec-websocket-") || n == "upgrade" || n == "connection" {
                continue;
            }
            let name = http::HeaderName::from_bytes(name.as_str().as_bytes());
            let value = http::HeaderValue::from_bytes(value.as_bytes());
            if let (Ok(n), Ok(v)) = (name, value) {
                headers.append(n, v);
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
    fn query_parsing() {
        let q = "EIO=4&transport=polling&t=N8hyd6w&sid=a%2Bb";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "sid").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param("x=%zz%", "x").as_deref(), Some("%zz%"));
        assert_eq!(query_param("x=%4", "x").as_deref(), Some("%4"));
    }
}
