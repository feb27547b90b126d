//! In-process broadcast to 10,000 sockets: the queue cost without the network.
//!
//! `cargo bench --bench broadcast`. Three measurements of one `bcast` event
//! sent to a room of 10,000 sockets:
//!
//! - `emit_polling_10k`: the real `Namespace::to(room).emit(..)` path
//!   (encode once, room snapshot, `Connection::send_many` on each socket),
//!   with sessions opened in-process through [`SocketIo::handle`] on the
//!   long-polling transport. Only the emit is timed; the queues are emptied
//!   by long-poll GETs between batches, untimed. Nothing is woken (no GET is
//!   pending), so this is the pure queueing cost.
//! - `emit_ws_duplex_10k`: the whole server-side WebSocket path in process:
//!   10,000 WebSocket sessions served by hyper over `tokio::io::duplex` pipes
//!   (no kernel sockets), timed from the emit until every client pipe holds the
//!   frame: queueing, waking 10,000 writer tasks, their drain and write.
//! - `floor_clone_push_10k`: the floor of the design with public types only:
//!   one encode, then per recipient a `Frame` clone pushed on a
//!   `Mutex<VecDeque<Frame>>` and a `Notify::notify_one`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rollcall::engine::Frame;
use rollcall::socketio::packet::encode_event;
use rollcall::socketio::{Namespace, Payload, SocketIo, SocketIoConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

mod common;

const N: usize = 10_000;
const ROOM: &str = "bench";

fn payload() -> Payload {
    Payload::one(json!({"s": 1, "t": 123456789012u64}))
}

fn server() -> (SocketIo, Arc<Namespace>) {
    let io = SocketIo::new(
        SocketIoConfig::builder()
            .engine(|e| {
                e.ping_interval(Duration::from_secs(3600))
                    .ping_timeout(Duration::from_secs(3600))
            })
            .connect_timeout(Duration::from_secs(3600))
            .build(),
    );
    let ns = io.ns("/", |socket| socket.join(ROOM));
    (io, ns)
}

/// The broadcast group: 10 samples, 500 ms warm-up, `measure` of
/// measurement, throughput in recipients.
fn group<'a>(c: &'a mut Criterion, measure: Duration) -> BenchmarkGroup<'a, WallTime> {
    let mut g = common::group(c, "broadcast", 10, Duration::from_millis(500), measure);
    g.throughput(Throughput::Elements(N as u64));
    g
}

fn addr() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

async fn request(io: &SocketIo, method: &str, uri: &str, body: &'static str) -> Bytes {
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let res = io.handle(req, addr()).await;
    res.into_body().collect().await.unwrap().to_bytes()
}

/// Opens a polling session and connects it to `/`; returns its sid.
async fn polling_socket(io: &SocketIo) -> String {
    let open = request(io, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let text = std::str::from_utf8(&open).unwrap();
    let start = text.find("\"sid\":\"").unwrap() + 7;
    let sid = text[start..start + text[start..].find('"').unwrap()].to_string();
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let ok = request(io, "POST", &uri, "40").await;
    assert_eq!(&ok[..], b"ok");
    // The CONNECT answer is waiting: take it.
    let answer = request(io, "GET", &uri, "").await;
    assert!(answer.starts_with(b"40"));
    sid
}

fn emit_polling(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (io, ns) = server();
    let sids: Vec<String> = rt.block_on(async {
        let mut v = Vec::with_capacity(N);
        for _ in 0..N {
            v.push(polling_socket(&io).await);
        }
        v
    });
    assert_eq!(ns.rooms().len(ROOM), N);
    let uris: Vec<String> = sids
        .iter()
        .map(|s| format!("/socket.io/?EIO=4&transport=polling&sid={s}"))
        .collect();
    let drain = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            for u in &uris {
                let body = request(&io, "GET", u, "").await;
                debug_assert!(body.starts_with(b"42[\"bcast\""));
            }
        })
    };
    let p = payload();
    let mut g = group(c, Duration::from_secs(3));
    g.bench_function("emit_polling_10k", |b| {
        b.iter_custom(|iters| {
            common::batched(
                iters,
                64,
                || assert_eq!(ns.to(ROOM).emit("bcast", &p), N),
                || drain(&rt),
            )
        })
    });
    g.finish();
}

/// Client side of one in-process WebSocket: handshake, CONNECT, then the read half.
async fn ws_client(io: SocketIo) -> tokio::io::DuplexStream {
    let (mut client, server_side) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let io = io.clone();
            async move { Ok::<_, Infallible>(io.handle(req, addr()).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .serve_connection(TokioIo::new(server_side), svc)
            .with_upgrades()
            .await;
    });
    client
        .write_all(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    // The 101 response, then frames: the open packet, then (after CONNECT,
    // masked with a zero key) the CONNECT answer `40{"sid":..}`.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 1024];
    loop {
        let n = client.read(&mut tmp).await.unwrap();
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"));
            buf.drain(..i + 4);
            break;
        }
    }
    let mut sent_connect = false;
    loop {
        // Complete frames in `buf` (server frames: unmasked, short here).
        while buf.len() >= 2 {
            let (len, h) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                126 => break,
                n => (n as usize, 2),
            };
            if buf.len() < h + len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..h + len).skip(h).collect();
            if frame.starts_with(b"0") && !sent_connect {
                client
                    .write_all(&[0x81, 0x82, 0, 0, 0, 0, b'4', b'0'])
                    .await
                    .unwrap();
                sent_connect = true;
            } else if frame.starts_with(b"40") {
                return client;
            }
        }
        let n = client.read(&mut tmp).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn emit_ws_duplex(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (io, ns) = server();
    let received = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(AtomicUsize::new(usize::MAX));
    let all_in = Arc::new(Notify::new());
    rt.block_on(async {
        for _ in 0..N {
            let mut client = ws_client(io.clone()).await;
            let (received, target, all_in) = (received.clone(), target.clone(), all_in.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let now = received.fetch_add(n, Ordering::AcqRel) + n;
                            if now >= target.load(Ordering::Acquire) {
                                all_in.notify_one();
                            }
                        }
                    }
                }
            });
        }
    });
    assert_eq!(ns.rooms().len(ROOM), N);
    let p = payload();
    let frame_len = encode_event("/", "bcast", &p, None, None).frames[0]
        .ws_bytes()
        .len();
    let mut g = group(c, Duration::from_secs(5));
    g.bench_function("emit_ws_duplex_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    // Let stray bytes (if any) land before arming.
                    tokio::task::yield_now().await;
                    let base = received.load(Ordering::Acquire);
                    target.store(base + N * frame_len, Ordering::Release);
                    let t = Instant::now();
                    let wait = all_in.notified();
                    tokio::pin!(wait);
                    wait.as_mut().enable();
                    assert_eq!(ns.to(ROOM).emit("bcast", &p), N);
                    wait.await;
                    total += t.elapsed();
                });
            }
            total
        })
    });
    g.finish();
}

fn floor(c: &mut Criterion) {
    let queues: Vec<(Mutex<VecDeque<Frame>>, Notify)> = (0..N)
        .map(|_| (Mutex::new(VecDeque::new()), Notify::new()))
        .collect();
    let p = payload();
    let mut g = group(c, Duration::from_secs(2));
    g.bench_function("floor_clone_push_10k", |b| {
        b.iter_custom(|iters| {
            common::batched(
                iters,
                64,
                || {
                    let enc = encode_event("/", "bcast", &p, None, None);
                    for (q, n) in &queues {
                        q.lock().push_back(enc.frames[0].clone());
                        n.notify_one();
                    }
                },
                || {
                    for (q, _) in &queues {
                        q.lock().clear();
                    }
                },
            )
        })
    });
    g.finish();
}

criterion_group!(benches, floor, emit_polling, emit_ws_duplex);
criterion_main!(benches);
