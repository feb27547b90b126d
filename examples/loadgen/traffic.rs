//! The tasks that run once the clients are in the room: the receivers' read
//! loops (one shared read buffer per runtime thread, bytes scanned in place)
//! and the sender, driven by commands from the scenarios.
//!
//! Placement: a sample of receivers spread evenly over the join order, and
//! the sender, run on the mostly idle *probe* runtime (so their timestamps do
//! not queue behind the bulk reads); the rest run on the calling (*bulk*)
//! runtime.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::clients::{io_err, Client};
use crate::meter::now_ns;
use crate::stats::Shared;
use crate::wire::{broadcast_frame, client_frame, count_bytes, roster, scan, Tally};

thread_local! {
    /// The read buffer shared by every receiver of a runtime thread.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 256 * 1024]);
}

/// A receiver's read loop: count `bcast` frames, answer pings, until the peer closes.
async fn recv_loop(mut stream: TcpStream, mut carry: Vec<u8>, sampled: bool, sh: Arc<Shared>) {
    let mut tally = Tally::default();
    if !carry.is_empty() {
        let used = scan(&carry, sampled, now_ns(), &mut tally);
        carry.drain(..used);
    }
    loop {
        let eof = READ_BUF.with(|b| -> io::Result<bool> {
            let mut b = b.borrow_mut();
            loop {
                match stream.try_read(&mut b[..]) {
                    Ok(0) => return Ok(true),
                    Ok(n) => {
                        let now = now_ns();
                        count_bytes(&mut tally, n);
                        if carry.is_empty() {
                            let used = scan(&b[..n], sampled, now, &mut tally);
                            carry.extend_from_slice(&b[used..n]);
                        } else {
                            carry.extend_from_slice(&b[..n]);
                            let used = scan(&carry, sampled, now, &mut tally);
                            carry.drain(..used);
                        }
                        if n < b.len() {
                            return Ok(false);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
        });
        tally.flush(&sh);
        if carry.is_empty() && carry.capacity() > 4096 {
            carry = Vec::new();
        }
        let eof = eof.unwrap_or(true);
        if tally.take_ping() {
            sh.note_ping();
            if stream.write_all(&client_frame(b"3")).await.is_err() {
                sh.note_closed();
                return;
            }
        }
        if eof || tally.closed() {
            sh.note_closed();
            return;
        }
        if stream.readable().await.is_err() {
            sh.note_closed();
            return;
        }
    }
}

/// Starts the read loops of the joined receivers: every `stride`-th of the
/// first `sample` on `probe` (recording latencies), the rest here. Returns
/// how many were sampled.
pub(crate) fn spawn_receivers(
    joined: Vec<Client>,
    sample: usize,
    stride: usize,
    sh: &Arc<Shared>,
    probe: &tokio::runtime::Handle,
) -> io::Result<usize> {
    let mut sampled = 0;
    for (i, c) in joined.into_iter().enumerate() {
        let is_sample = sampled < sample && i % stride == 0;
        let (stream, carry) = c.into_parts();
        if is_sample {
            sampled += 1;
            let std = stream.into_std()?;
            let sh = sh.clone();
            probe.spawn(async move {
                match TcpStream::from_std(std) {
                    Ok(s) => recv_loop(s, carry, true, sh).await,
                    Err(_) => sh.note_closed(),
                }
            });
        } else {
            tokio::spawn(recv_loop(stream, carry, false, sh.clone()));
        }
    }
    Ok(sampled)
}

enum Cmd {
    /// Emit `m` broadcasts at once (one write); answers the send time.
    Burst {
        scen: usize,
        m: usize,
        done: oneshot::Sender<u64>,
    },
    /// Emit `count` broadcasts at `rate` per second; answers when the last is sent.
    Rate {
        scen: usize,
        rate: f64,
        count: usize,
        done: oneshot::Sender<u64>,
    },
}

/// The scenarios' handle on the sender task (on the probe runtime).
pub(crate) struct Sender {
    tx: mpsc::Sender<Cmd>,
}

impl Sender {
    /// Moves the sender client to `probe` and starts its task; every
    /// broadcast carries a roster of about `payload_bytes` bytes.
    pub(crate) fn spawn(
        client: Client,
        sh: &Arc<Shared>,
        probe: &tokio::runtime::Handle,
        payload_bytes: usize,
    ) -> io::Result<Sender> {
        let (tx, rx) = mpsc::channel::<Cmd>(4);
        let (stream, carry) = client.into_parts();
        let std = stream.into_std()?;
        let sh = sh.clone();
        probe.spawn(async move {
            if let Ok(s) = TcpStream::from_std(std) {
                sender_task(s, carry, rx, sh, roster(payload_bytes)).await;
            }
        });
        Ok(Sender { tx })
    }

    /// Emits `m` broadcasts of scenario `scen` in one write; the send time.
    pub(crate) async fn burst(&self, scen: usize, m: usize) -> io::Result<u64> {
        let (done, drx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Burst { scen, m, done }).await;
        drx.await.map_err(|_| io_err("sender gone"))
    }

    /// Emits `count` broadcasts of scenario `scen` at `rate` per second; when the last was sent.
    pub(crate) async fn rate(&self, scen: usize, rate: f64, count: usize) -> io::Result<u64> {
        let (done, drx) = oneshot::channel();
        let cmd = Cmd::Rate {
            scen,
            rate,
            count,
            done,
        };
        let _ = self.tx.send(cmd).await;
        drx.await.map_err(|_| io_err("sender gone"))
    }
}

async fn sender_task(
    mut stream: TcpStream,
    mut carry: Vec<u8>,
    mut rx: mpsc::Receiver<Cmd>,
    sh: Arc<Shared>,
    roster: String,
) {
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Burst { scen, m, done }) => {
                    let mut buf = Vec::with_capacity(m * (48 + roster.len()));
                    let t0 = now_ns();
                    for _ in 0..m {
                        broadcast_frame(&mut buf, scen, &roster);
                    }
                    let _ = stream.write_all(&buf).await;
                    let _ = done.send(t0);
                }
                Some(Cmd::Rate { scen, rate, count, done }) => {
                    let start = tokio::time::Instant::now();
                    let period = Duration::from_secs_f64(1.0 / rate);
                    let mut buf = Vec::with_capacity(64);
                    for i in 0..count {
                        tokio::time::sleep_until(start + period * i as u32).await;
                        buf.clear();
                        broadcast_frame(&mut buf, scen, &roster);
                        if stream.write_all(&buf).await.is_err() {
                            break;
                        }
                    }
                    let _ = done.send(now_ns());
                }
            },
            r = stream.readable() => {
                if r.is_err() {
                    return;
                }
                let mut tmp = [0u8; 4096];
                match stream.try_read(&mut tmp) {
                    Ok(0) => return,
                    Ok(n) => {
                        carry.extend_from_slice(&tmp[..n]);
                        let used = scan(&carry, false, now_ns(), &mut tally);
                        carry.drain(..used);
                        if tally.take_ping() {
                            sh.note_ping();
                            let _ = stream.write_all(&client_frame(b"3")).await;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
}
