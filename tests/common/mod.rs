//! Shared fixtures of the integration tests: a raw HTTP/1.1 client (one
//! connection per request) and a WebSocket client with bounded waits.
//!
//! Every wait is bounded by [`WAIT`], so a broken server fails a test instead
//! of hanging it. Each test crate uses only part of this, hence the
//! `dead_code` allowance.

#![allow(dead_code)]

pub mod contract_ws;
pub mod redis_server;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// Upper bound of any single wait (a response, a frame, a close).
pub const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

/// A response read off the wire.
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body (cut to its `Content-Length`).
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let chunked = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
        if !chunked && (!body.is_empty() || method == "POST" || method == "PUT") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await.unwrap();
        let mut raw = Vec::new();
        // A server that answers without reading the body may reset the
        // connection after its response; keep whatever arrived.
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw)
    };
    timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {target}: no response within {WAIT:?}"))
}

/// Parses a whole HTTP/1.1 response (no chunked bodies).
pub fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    assert!(
        resp.header("transfer-encoding").is_none(),
        "chunked bodies are not expected"
    );
    if let Some(n) = resp
        .header("content-length")
        .map(|v| v.parse::<usize>().unwrap())
    {
        assert!(resp.body.len() >= n, "truncated body");
        resp.body.truncate(n);
    }
    resp
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/// A WebSocket client connection.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path_query` (e.g. `/engine.io/?EIO=4&transport=websocket`).
pub async fn ws_connect(addr: SocketAddr, path_query: &str) -> Result<Ws, tungstenite::Error> {
    timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}{path_query}")),
    )
    .await
    .expect("websocket handshake timed out")
    .map(|(ws, _)| ws)
}

/// The next frame, or `None` once the connection has ended.
pub async fn ws_next(ws: &mut Ws) -> Option<WsMessage> {
    match timeout(WAIT, ws.next())
        .await
        .expect("no websocket frame in time")
    {
        Some(Ok(m)) => Some(m),
        Some(Err(_)) | None => None,
    }
}

/// Sends a text frame.
pub async fn ws_send(ws: &mut Ws, text: &str) {
    ws_send_msg(ws, WsMessage::text(text)).await
}

/// Sends a frame.
pub async fn ws_send_msg(ws: &mut Ws, msg: WsMessage) {
    timeout(WAIT, ws.send(msg))
        .await
        .expect("websocket send timed out")
        .expect("websocket send failed");
}

/// The next text frame (it must be one).
pub async fn ws_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        Some(WsMessage::Text(t)) => t.as_str().to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next data frame, answering server pings (`2`) with pongs (`3`) on the way.
pub async fn ws_data(ws: &mut Ws) -> WsMessage {
    loop {
        match ws_next(ws).await {
            Some(WsMessage::Text(t)) if t.as_str() == "2" => ws_send(ws, "3").await,
            Some(m @ (WsMessage::Text(_) | WsMessage::Binary(_))) => return m,
            Some(_) => {}
            None => panic!("websocket closed while waiting for data"),
        }
    }
}

/// Reads until the server ends the connection; returns its close code, if it
/// sent a close frame. Data frames before the close are ignored.
pub async fn ws_closed(ws: &mut Ws) -> Option<u16> {
    let mut code = None;
    while let Some(m) = ws_next(ws).await {
        if let WsMessage::Close(frame) = m {
            code = frame.map(|f| u16::from(f.code));
        }
    }
    code
}

/// The next text frame that is not an Engine.IO ping (pings are answered
/// with pongs on the way; other frames are skipped); `None` once the server
/// closed the connection.
pub async fn ws_next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("no frame in time") {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => ws_send(ws, "3").await,
            Some(Ok(WsMessage::Text(t))) => return Some(t.as_str().to_string()),
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}
