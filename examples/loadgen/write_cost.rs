//! `write-cost`: what one small `write(2)` costs on a loopback TCP socket
//! (no server needed), the yardstick for the server's per-delivery cost.
//! Each measurement is a few rounds; the median is reported.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream as StdStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::args::Args;
use crate::clients::{connect_tcp, source};
use crate::emit;

/// Runs the `write-cost` measurements and prints their line.
pub(crate) fn write_cost(a: &Args) -> io::Result<()> {
    pin_current_thread(a.writer_cpu);
    let n = a.sockets.max(1);
    let (mut clients, mut servers) = socket_pairs(n)?;
    // A typical broadcast frame as the server writes it.
    let payload = br#"42["bcast",{"s":1,"t":123456789012}]"#;
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload);
    let mut sink = vec![0u8; 1 << 20];
    let rounds = a.rounds;

    // One message to each of n sockets (what a broadcast does).
    let rr = time_rounds(
        rounds,
        n,
        || {},
        || write_each(servers.iter_mut(), &frame),
        || drain(&mut clients, &mut sink),
    )?;
    // 1,000 messages to one socket, one write each.
    let k = 1000;
    let same = time_rounds(
        rounds,
        k,
        || {},
        || (0..k).try_for_each(|_| servers[0].write_all(&frame)),
        || drain(&mut clients, &mut sink),
    )?;
    // 64 messages per write (what a queue drained at once costs per message).
    let batch: Vec<u8> = frame.repeat(64);
    let batched = time_rounds(
        rounds,
        1000.min(n) * 64,
        || {},
        || write_each(servers.iter_mut().take(1000), &batch),
        || drain(&mut clients, &mut sink),
    )?;
    let woken = reader_waiting(a, clients, &mut servers, &frame)?;
    emit(json!({
        "scenario": "write-cost",
        "frame_bytes": frame.len(),
        "sockets": n,
        "rounds": a.rounds,
        "ns_per_write_round_robin": median(rr).round(),
        "ns_per_write_reader_waiting": median(woken).round(),
        "ns_per_write_same_socket": median(same).round(),
        "ns_per_msg_64_per_write": median(batched).round(),
        "writer_cpu": a.writer_cpu,
        "reader_cpu": a.reader_cpu,
    }));
    Ok(())
}

/// One message to each of n sockets while a reader thread on the other
/// core waits for them in epoll (what a broadcast to live clients costs:
/// each write also wakes the reader's thread). Ns per write of each round.
fn reader_waiting(
    a: &Args,
    clients: Vec<StdStream>,
    servers: &mut [StdStream],
    frame: &[u8],
) -> io::Result<Vec<f64>> {
    let n = servers.len();
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let received = received.clone();
        let reader_cpu = a.reader_cpu;
        std::thread::spawn(move || read_all(clients, reader_cpu, received, ready_tx))
    };
    let _ = ready_rx.recv();
    let mut expected = 0u64;
    let woken = time_rounds(
        a.rounds,
        n,
        // Let the reader go idle (asleep in epoll_wait) first.
        || std::thread::sleep(Duration::from_millis(50)),
        || write_each(servers.iter_mut(), frame),
        || {
            expected += (n * frame.len()) as u64;
            let until = Instant::now() + Duration::from_secs(10);
            while received.load(Ordering::Relaxed) < expected && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
        },
    )?;
    drop(reader);
    Ok(woken)
}

/// The reader thread of [`reader_waiting`]: reads every client on one
/// runtime pinned to `cpu`, adding the bytes to `received`; says when it is
/// ready and then serves reads until the process exits (bounded by the
/// global deadline).
fn read_all(
    clients: Vec<StdStream>,
    cpu: usize,
    received: Arc<AtomicU64>,
    ready: std::sync::mpsc::Sender<()>,
) -> io::Result<()> {
    pin_current_thread(cpu);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        for c in clients {
            c.set_nonblocking(true)?;
            let mut s = TcpStream::from_std(c)?;
            let received = received.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                while let Ok(k) = s.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    received.fetch_add(k as u64, Ordering::Relaxed);
                }
            });
        }
        let _ = ready.send(());
        // Serve reads until the writer is done (bounded by the global deadline).
        std::future::pending::<()>().await;
        Ok::<(), io::Error>(())
    })
}

/// `n` loopback connections: (client ends, non-blocking; server ends, blocking).
fn socket_pairs(n: usize) -> io::Result<(Vec<StdStream>, Vec<StdStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut clients = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    for i in 0..n {
        let s = connect_from(&rt, addr, source(i))?;
        clients.push(s);
        let (srv, _) = listener.accept()?;
        srv.set_nodelay(true)?;
        servers.push(srv);
    }
    for c in &clients {
        c.set_nonblocking(true)?;
    }
    Ok((clients, servers))
}

/// Times `rounds` (at least one) rounds of `write`, `per` messages each: ns
/// per message of each round. `before` and `after` run outside the timing.
fn time_rounds(
    rounds: usize,
    per: usize,
    mut before: impl FnMut(),
    mut write: impl FnMut() -> io::Result<()>,
    mut after: impl FnMut(),
) -> io::Result<Vec<f64>> {
    let mut out = Vec::new();
    for _ in 0..rounds.max(1) {
        before();
        let t = Instant::now();
        write()?;
        out.push(t.elapsed().as_nanos() as f64 / per as f64);
        after();
    }
    Ok(out)
}

/// Writes `bytes` once to each socket of `to`, in order.
fn write_each<'a>(to: impl Iterator<Item = &'a mut StdStream>, bytes: &[u8]) -> io::Result<()> {
    for s in to {
        s.write_all(bytes)?;
    }
    Ok(())
}

/// Reads whatever is waiting on each (non-blocking) client into `sink`.
fn drain(clients: &mut [StdStream], sink: &mut [u8]) {
    for c in clients.iter_mut() {
        while let Ok(k) = c.read(sink) {
            if k == 0 {
                break;
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|x, y| x.partial_cmp(y).unwrap());
    v[v.len() / 2]
}

/// Pins the calling thread to one CPU (with `taskset -p`; best effort).
fn pin_current_thread(cpu: usize) {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    let Some(tid) = link
        .file_name()
        .and_then(|t| t.to_str())
        .map(str::to_string)
    else {
        return;
    };
    let _ = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// A blocking loopback connection from source address `src` (std has no
/// bind-before-connect, so connect with tokio and convert).
fn connect_from(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    src: Ipv4Addr,
) -> io::Result<StdStream> {
    let s = rt.block_on(connect_tcp(addr, src))?;
    let std = s.into_std()?;
    std.set_nonblocking(false)?;
    std.set_nodelay(true)?;
    Ok(std)
}
