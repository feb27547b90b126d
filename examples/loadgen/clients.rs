//! Connection setup (allocations are fine here): the WebSocket upgrade and
//! the Socket.IO CONNECT of one client, the room join, the source address of
//! each connection, and windows that keep a bounded number of these in flight.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::wire::{client_frame, parse_frame};

/// One connected Socket.IO client: its stream and the bytes read past the
/// last frame handed out.
pub(crate) struct Client {
    stream: TcpStream,
    carry: Vec<u8>,
}

/// An `io::Error` carrying `msg` (every failure of the generator is one).
pub(crate) fn io_err(msg: &str) -> io::Error {
    io::Error::other(msg.to_string())
}

impl Client {
    /// Opens a WebSocket to the server and joins namespace `/`. With
    /// `deflate`, offers permessage-deflate without context takeover on the
    /// server side (each message compressed on its own, so one inflater can
    /// serve many receivers) and fails unless the server agrees.
    pub(crate) async fn open(addr: SocketAddr, src: Ipv4Addr, deflate: bool) -> io::Result<Client> {
        let mut stream = connect_tcp(addr, src).await?;
        stream.set_nodelay(true)?;
        let offer = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_max_window_bits\r\n"
        } else {
            ""
        };
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n{offer}\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut carry = Vec::with_capacity(512);
        let mut tmp = [0u8; 2048];
        loop {
            let n = stream.read(&mut tmp).await?;
            if n == 0 {
                return Err(io_err("closed during the HTTP upgrade"));
            }
            carry.extend_from_slice(&tmp[..n]);
            if let Some(i) = carry.windows(4).position(|w| w == b"\r\n\r\n") {
                if !carry.starts_with(b"HTTP/1.1 101") {
                    return Err(io_err("upgrade refused"));
                }
                let head = String::from_utf8_lossy(&carry[..i]).to_ascii_lowercase();
                if deflate && !head.contains("server_no_context_takeover") {
                    return Err(io_err("permessage-deflate not agreed"));
                }
                carry.drain(..i + 4);
                break;
            }
            if carry.len() > 16 * 1024 {
                return Err(io_err("HTTP response too large"));
            }
        }
        let mut c = Client { stream, carry };
        let open = c.next_text().await?;
        if open.first() != Some(&b'0') {
            return Err(io_err("no Engine.IO open packet"));
        }
        c.send(b"40").await?;
        loop {
            let p = c.next_text().await?;
            if p.starts_with(b"40") {
                break;
            }
            if p.starts_with(b"44") {
                return Err(io_err("CONNECT refused"));
            }
        }
        Ok(c)
    }

    /// Sends one text frame.
    async fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&client_frame(payload)).await
    }

    /// The next text frame (answering pings on the way).
    async fn next_text(&mut self) -> io::Result<Vec<u8>> {
        loop {
            while let Some((op, range, used)) = parse_frame(&self.carry) {
                let p = self.carry[range].to_vec();
                self.carry.drain(..used);
                match op {
                    1 if p == b"2" => self.send(b"3").await?,
                    1 => return Ok(p),
                    8 => return Err(io_err("closed by the server")),
                    _ => {}
                }
            }
            let mut tmp = [0u8; 2048];
            let n = self.stream.read(&mut tmp).await?;
            if n == 0 {
                return Err(io_err("closed by the server"));
            }
            self.carry.extend_from_slice(&tmp[..n]);
        }
    }

    /// The stream and the bytes already read from it (for the read loops).
    pub(crate) fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.carry)
    }

    /// Joins room `r` with an ack.
    async fn join(&mut self) -> io::Result<()> {
        self.send(br#"421["join","r"]"#).await?;
        loop {
            if self.next_text().await? == b"431[true]" {
                return Ok(());
            }
        }
    }
}

/// A TCP connection to `addr` from source address `src` (port chosen by the system).
pub(crate) async fn connect_tcp(addr: SocketAddr, src: Ipv4Addr) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src.into(), 0))?;
    sock.connect(addr).await
}

/// Source address of connection `i` (127.0.0.2 ..= 127.0.0.251).
pub(crate) fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8)
}

/// Runs `f(i)` for i in 0..n with at most `c` in flight; results in index order.
pub(crate) async fn run_window<T, F, Fut>(n: usize, c: usize, f: F) -> Vec<io::Result<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    let mut out: Vec<Option<io::Result<T>>> = (0..n).map(|_| None).collect();
    let mut next = 0;
    while next < n || !set.is_empty() {
        while next < n && set.len() < c.max(1) {
            let fut = f(next);
            let i = next;
            set.spawn(async move { (i, fut.await) });
            next += 1;
        }
        if let Some(r) = set.join_next().await {
            match r {
                Ok((i, v)) => out[i] = Some(v),
                Err(e) => return vec![Err(io_err(&format!("task failed: {e}")))],
            }
        }
    }
    out.into_iter()
        .map(|v| v.unwrap_or_else(|| Err(io_err("missing"))))
        .collect()
}

/// Joins every client to room `r` with at most `concurrency` joins in flight;
/// the clients in their original order, or the last error.
pub(crate) async fn join_all(clients: Vec<Client>, concurrency: usize) -> io::Result<Vec<Client>> {
    let mut set = tokio::task::JoinSet::new();
    let mut out: Vec<Option<Client>> = (0..clients.len()).map(|_| None).collect();
    let mut it = clients.into_iter().enumerate();
    let mut err = None;
    loop {
        while set.len() < concurrency {
            let Some((i, mut c)) = it.next() else { break };
            set.spawn(async move { c.join().await.map(|_| (i, c)) });
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok((i, c)))) => out[i] = Some(c),
            Some(Ok(Err(e))) => err = Some(e),
            Some(Err(e)) => err = Some(io_err(&e.to_string())),
        }
    }
    if let Some(e) = err {
        return Err(e);
    }
    Ok(out.into_iter().flatten().collect())
}
