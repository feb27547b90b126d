//! Sockets as the admin UI reads them (`SerializedSocket` of
//! `@socket.io/admin-ui`): `{id, clientId, transport, nsp, data,
//! handshake, rooms}`.
//!
//! Credentials never leave the server this way: the `authorization`,
//! `proxy-authorization` and `cookie` headers are replaced by
//! `[redacted]`, and the CONNECT payload (`auth`, where the attendance
//! application's clients put their token) is not part of it.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::engine::{HandshakeInfo, TransportKind};
use crate::socketio::{FetchedSocket, Socket};

/// Headers shown as `[redacted]`.
const REDACTED: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The transport's name on the wire.
pub(crate) fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Polling => "polling",
        TransportKind::WebSocket => "websocket",
    }
}

/// The handshake part: address, headers (credentials redacted), query,
/// issued (ms), secure, time, url, xdomain.
fn handshake(h: &HandshakeInfo) -> Value {
    let mut headers = Map::new();
    for (name, value) in &h.headers {
        let v = if REDACTED.contains(&name.as_str()) {
            "[redacted]".to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        // Repeated headers are joined as Node joins them.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let mut query = Map::new();
    for pair in h
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if let Some(v) = h.query(key) {
            query.entry(key.to_string()).or_insert(Value::String(v));
        }
    }
    let header = |n: &str| h.headers.get(n).and_then(|v| v.to_str().ok());
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .map(str::to_string)
        .unwrap_or_else(|| h.remote_addr.ip().to_string());
    let issued = h
        .time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    json!({
        "address": address,
        "headers": headers,
        "query": query,
        "issued": issued,
        "secure": false,
        "time": crate::util::format_rfc3339(issued),
        "url": h.uri.to_string(),
        "xdomain": h.headers.contains_key("origin"),
    })
}

/// A socket of this node.
pub(crate) fn local_socket(s: &Socket) -> Value {
    let conn = s.conn();
    let client_id: String = conn.id().chars().take(12).collect();
    let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    json!({
        "id": s.id(),
        "clientId": client_id,
        "transport": transport_name(conn.transport()),
        "nsp": s.ns().name(),
        "data": s.data().get::<Value>().unwrap_or_else(|| json!({})),
        "handshake": handshake(s.handshake()),
        "rooms": rooms,
    })
}

/// A socket found by `fetch_sockets` in namespace `nsp`: this node's, or
/// another node's as that node described it (its `clientId` and
/// `transport` are read from `data._admin`, where Node's admin UI keeps
/// them, and left out when absent).
pub(crate) fn fetched_socket(f: &FetchedSocket, nsp: &str) -> Value {
    let r = match f {
        FetchedSocket::Local(s) => return local_socket(s),
        FetchedSocket::Remote(r) => r,
    };
    let mut data = r.data.clone();
    let admin = data.as_object_mut().and_then(|m| m.remove("_admin"));
    let mut out = json!({
        "id": &*r.id,
        "nsp": nsp,
        "data": data,
        "handshake": r.handshake,
        "rooms": r.rooms.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
    });
    for key in ["clientId", "transport"] {
        if let Some(v) = admin.as_ref().and_then(|a| a.get(key)) {
            out[key] = v.clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_redacts_credentials() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer abc.def".parse().unwrap());
        headers.insert("cookie", "sid=1".parse().unwrap());
        headers.insert("user-agent", "test".parse().unwrap());
        headers.insert("x-forwarded-for", "10.0.0.7".parse().unwrap());
        let h = HandshakeInfo {
            uri: "/socket.io/?EIO=4&transport=polling&t=a%20b"
                .parse()
                .unwrap(),
            headers,
            remote_addr: "127.0.0.1:5000".parse().unwrap(),
            time: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
        };
        let v = handshake(&h);
        assert_eq!(v["headers"]["authorization"], "[redacted]");
        assert_eq!(v["headers"]["cookie"], "[redacted]");
        assert_eq!(v["headers"]["user-agent"], "test");
        assert!(!v.to_string().contains("abc.def"));
        assert_eq!(v["address"], "10.0.0.7");
        assert_eq!(
            v["query"],
            json!({"EIO": "4", "transport": "polling", "t": "a b"})
        );
        assert_eq!(v["issued"], 1_700_000_000_123u64);
        assert_eq!(v["xdomain"], false);
    }
}
