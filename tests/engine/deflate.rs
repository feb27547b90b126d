//! permessage-deflate (SPEC 2.15), over real TCP with a raw WebSocket client
//! that offers the extension and reads the server's frames byte for byte:
//! the handshake answer, one compressed form per broadcast (the same bytes
//! for every recipient), the threshold, compressed client messages with and
//! without context takeover, the inflater's bound, and the upgrade path.

use flate2::{Compress, Compression, FlushCompress};
use rollcall::engine::deflate::Inflater;
use rollcall::engine::frame::testing::client_frame;
use rollcall::engine::Deflate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::*;

/// A raw WebSocket client: the handshake's answer and the frames as sent.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The `Sec-WebSocket-Extensions` answer, if any.
    extensions: Option<String>,
}

/// One server frame: its first byte (FIN, RSV1, opcode), its payload, and
/// every byte of it as it came off the wire.
struct RawFrame {
    first: u8,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

impl RawWs {
    /// Opens a WebSocket to `target` offering `offer` (if any) as extensions.
    async fn connect(addr: SocketAddr, target: &str, offer: Option<&str>) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let ext = offer.map_or(String::new(), |o| {
            format!("Sec-WebSocket-Extensions: {o}\r\n")
        });
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let head_end = timeout(WAIT, async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed during the handshake");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("no handshake answer");
        let head = parse_response(&buf[..head_end]);
        assert_eq!(head.status, 101);
        let extensions = head.header("sec-websocket-extensions").map(str::to_string);
        buf.drain(..head_end);
        RawWs {
            stream,
            buf,
            extensions,
        }
    }

    /// The next frame from the server.
    async fn frame(&mut self) -> RawFrame {
        timeout(WAIT, async {
            loop {
                if let Some(f) = take_frame(&mut self.buf) {
                    return f;
                }
                let mut chunk = [0u8; 16384];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed while waiting for a frame");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("no frame in time")
    }

    /// Sends a masked frame; `compressed` sets RSV1.
    async fn send(&mut self, opcode: u8, payload: &[u8], compressed: bool) {
        let mut f = client_frame(true, opcode, payload, [1, 2, 3, 4]);
        if compressed {
            f[0] |= 0x40;
        }
        self.stream.write_all(&f).await.unwrap();
    }
}

/// Takes one complete unmasked frame off the front of `buf`.
fn take_frame(buf: &mut Vec<u8>) -> Option<RawFrame> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are unmasked");
    let (len, h) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf.len() < h + len {
        return None;
    }
    let wire: Vec<u8> = buf.drain(..h + len).collect();
    Some(RawFrame {
        first: wire[0],
        payload: wire[h..].to_vec(),
        wire,
    })
}

/// Raw deflate of `data` with a sync flush, the trailing `00 00 ff ff`
/// removed (a client's compressed message), from compressor `c`.
fn client_deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

const OFFER: &str = "permessage-deflate; client_max_window_bits";
const WS: &str = "/engine.io/?EIO=4&transport=websocket";

fn deflate_on() -> EngineConfig {
    quiet()
        .per_message_deflate(Some(Deflate::default()))
        .build()
}

/// A 5 KB roster, as the attendance app broadcasts it.
fn roster() -> String {
    let rows: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "{{\"id\":\"s-{i:03}\",\"name\":\"Student {i}\",\"present\":{}}}",
                i % 3 == 0
            )
        })
        .collect();
    format!("[\"roster\",[{}]]", rows.join(","))
}

/// Sends every message to every open connection as one shared frame.
struct Broadcaster(Arc<Mutex<Vec<Arc<Connection>>>>);

impl EngineHandler for Broadcaster {
    type State = ();
    fn on_open(&self, conn: &Arc<Connection>) {
        self.0.lock().unwrap().push(conn.clone());
    }
    fn on_message(&self, _conn: &Arc<Connection>, _: &(), msg: Message) {
        let frame = match msg {
            Message::Text(t) => Frame::message(t.as_str()),
            Message::Binary(b) => Frame::binary(&b),
        };
        for c in self.0.lock().unwrap().iter() {
            let _ = c.send(frame.clone());
        }
    }
    fn on_close(&self, _: &Arc<Connection>, _: &(), _: CloseReason) {}
}

#[tokio::test]
async fn handshake_answers_only_when_on_and_offered() {
    let (on, _) = start(deflate_on()).await;
    let ws = RawWs::connect(on, WS, Some(OFFER)).await;
    assert_eq!(
        ws.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    assert_eq!(RawWs::connect(on, WS, None).await.extensions, None);
    let small_window = "permessage-deflate; server_max_window_bits=10";
    assert_eq!(
        RawWs::connect(on, WS, Some(small_window)).await.extensions,
        None
    );
    // Off by default: an offer gets no answer, and frames stay uncompressed.
    let (off, _) = start(quiet().build()).await;
    let mut ws = RawWs::connect(off, WS, Some(OFFER)).await;
    assert_eq!(ws.extensions, None);
    assert_eq!(ws.frame().await.first, 0x81, "open packet");
}

#[tokio::test]
async fn a_broadcast_is_compressed_once_and_identical_for_every_recipient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let engine = Engine::new(deflate_on(), Broadcaster(conns.clone()));
    tokio::spawn(engine.serve(listener));
    let mut zipped = Vec::new();
    for _ in 0..4 {
        zipped.push(RawWs::connect(addr, WS, Some(OFFER)).await);
    }
    let mut plain = RawWs::connect(addr, WS, None).await;
    for ws in zipped.iter_mut().chain([&mut plain]) {
        assert_eq!(ws.frame().await.first & 0x0f, 1, "open packet");
    }
    let text = roster();
    assert!(text.len() > 4000 && text.len() < 6000, "{}", text.len());
    zipped[0]
        .send(1, format!("4{text}").as_bytes(), false)
        .await;
    let mut wires = Vec::new();
    for ws in &mut zipped {
        let f = ws.frame().await;
        assert_eq!(f.first, 0xc1, "FIN, RSV1, text");
        let inflated = Inflater::new(true).inflate(&f.payload, 1 << 20).unwrap();
        assert_eq!(&inflated[..], format!("4{text}").as_bytes());
        assert!(f.wire.len() < text.len() / 3, "{} bytes", f.wire.len());
        wires.push(f.wire);
    }
    assert!(
        wires.iter().all(|w| *w == wires[0]),
        "same compressed bytes for all"
    );
    // The connection without the extension gets the frame as it is.
    let f = plain.frame().await;
    assert_eq!(
        (f.first, &f.payload[..]),
        (0x81, format!("4{text}").as_bytes())
    );
    // Below the threshold (1024 bytes) nothing is compressed.
    zipped[1].send(1, b"4small", false).await;
    for ws in zipped.iter_mut().chain([&mut plain]) {
        let f = ws.frame().await;
        assert_eq!((f.first, &f.payload[..]), (0x81, &b"4small"[..]));
    }
    // Binary: compressed with the binary opcode.
    let bin: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8).collect();
    zipped[2].send(2, &bin, false).await;
    for ws in &mut zipped {
        let f = ws.frame().await;
        assert_eq!(f.first, 0xc2);
        let inflated = Inflater::new(true).inflate(&f.payload, 1 << 20).unwrap();
        assert_eq!(&inflated[..], &bin[..]);
    }
    let f = plain.frame().await;
    assert_eq!((f.first, &f.payload[..]), (0x82, &bin[..]));
    // After a quiet spell the sender writes to the idle sockets itself
    // (direct writes, SPEC 2.6, as far as the socket takes them): the same
    // compressed form goes out.
    tokio::time::sleep(Duration::from_millis(250)).await;
    plain.send(1, format!("4{text}").as_bytes(), false).await;
    for ws in &mut zipped {
        assert_eq!(
            ws.frame().await.wire,
            wires[0],
            "direct writes send the shared form"
        );
    }
    assert_eq!(plain.frame().await.first, 0x81);
}

#[tokio::test]
async fn compressed_client_messages_with_and_without_context_takeover() {
    let (addr, _) = start(deflate_on()).await;
    for (offer, takeover) in [
        (OFFER, true),
        ("permessage-deflate; client_no_context_takeover", false),
    ] {
        let mut ws = RawWs::connect(addr, WS, Some(offer)).await;
        assert_eq!(
            ws.extensions
                .as_deref()
                .is_some_and(|e| e.contains("client_no_context_takeover")),
            !takeover
        );
        ws.frame().await;
        let mut c = Compress::new(Compression::default(), false);
        let text = format!("4{}", roster());
        for round in 0..3 {
            if !takeover {
                c.reset();
            }
            let z = client_deflate(&mut c, text.as_bytes());
            ws.send(1, &z, true).await;
            let f = ws.frame().await;
            assert_eq!(f.first, 0xc1, "round {round}: the echo is compressed");
            let back = Inflater::new(true).inflate(&f.payload, 1 << 20).unwrap();
            assert_eq!(&back[..], text.as_bytes(), "round {round}");
        }
        // Uncompressed messages still work on the same connection.
        ws.send(1, b"4plain", false).await;
        assert_eq!(ws.frame().await.payload, b"4plain");
    }
}

#[tokio::test]
async fn a_zip_bomb_gets_the_max_payload_close() {
    let (addr, rec) = start(
        quiet()
            .max_payload(100_000)
            .per_message_deflate(Some(Deflate::default()))
            .build(),
    )
    .await;
    let mut ws = RawWs::connect(addr, WS, Some(OFFER)).await;
    ws.frame().await;
    // 50 MB of one letter: about 50 KB compressed, under maxPayload.
    let mut c = Compress::new(Compression::best(), false);
    let mut bomb = Vec::with_capacity(100_000);
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..50 {
        c.compress_vec(&chunk, &mut bomb, FlushCompress::None)
            .unwrap();
    }
    c.compress_vec(&[], &mut bomb, FlushCompress::Sync).unwrap();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    ws.send(1, &bomb[..bomb.len() - 4], true).await;
    let f = ws.frame().await;
    assert_eq!(
        (f.first, &f.payload[..]),
        (0x88, &1009u16.to_be_bytes()[..])
    );
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PayloadTooLarge]);
}

#[tokio::test]
async fn an_upgraded_session_compresses_after_the_switch() {
    let (addr, _) = start(deflate_on()).await;
    let (sid, _) = handshake(addr).await;
    let target = format!("{WS}&sid={sid}");
    let mut ws = RawWs::connect(addr, &target, Some(OFFER)).await;
    assert!(ws.extensions.is_some());
    ws.send(1, b"2probe", false).await;
    assert_eq!(ws.frame().await.payload, b"3probe");
    ws.send(1, b"5", false).await;
    let text = format!("4{}", roster());
    ws.send(1, text.as_bytes(), false).await;
    let f = ws.frame().await;
    assert_eq!(f.first, 0xc1);
    let mut inf = Inflater::new(false);
    assert_eq!(
        &inf.inflate(&f.payload, 1 << 20).unwrap()[..],
        text.as_bytes()
    );
}
