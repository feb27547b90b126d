//! Load generator for the conformance contract (`examples/conformance.rs`,
//! `benches/node/conformance.mjs`): real WebSocket clients over loopback,
//! one JSON line per scenario on stdout.
//!
//! ```text
//! loadgen all --addr 127.0.0.1:3000 --n 10000 --server-pid PID --label rollcall
//! loadgen write-cost --sockets 10000
//! ```
//!
//! Modes:
//! - `connect`: N WebSocket clients join the Socket.IO namespace `/`
//!   (connections per second), server RSS before and after (KB per connection).
//! - `throughput`: N receivers in room `r`, one sender emits M `broadcast`
//!   events at once; deliveries/s = N*M / time from the first send to the
//!   last delivery, and the loss.
//! - `latency`: broadcasts at a fixed rate for a fixed time; p50/p99/p999/max
//!   delivery latency over a sample of receivers, delivered fraction over all.
//! - `all`: connect, then throughput, then latency at each of `--rates`, on
//!   the same connections.
//! - `write-cost`: the cost of one small `write(2)` on a loopback TCP socket
//!   (no server needed).
//!
//! Efficiency: two single-threaded tokio runtimes in one process (pin it to
//! one core with taskset). The *bulk* runtime owns most receivers: they only
//! count `bcast` frames by scanning bytes (one shared read buffer, no
//! allocation per message). The *probe* runtime owns the sender and a sample
//! of receivers spread evenly over the join order; only those parse the send
//! timestamp carried in the payload. A mostly idle probe thread is woken
//! ahead of the busy bulk thread, so the sampled latencies do not queue
//! behind the bulk reads.
//!
//! Bounds: every connection goes to the loopback address given by `--addr`
//! (refused otherwise), from source addresses 127.0.0.2..=127.0.0.251 (so
//! repeated runs do not run out of ephemeral ports); each step has a timeout
//! and the whole run a global deadline (`--deadline`, default 180 s), after
//! which the process exits by itself.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    All,
    Connect,
    Throughput,
    Latency,
    WriteCost,
}

#[derive(Debug, Parser)]
#[command(about = "Socket.IO load generator for the conformance contract (loopback only)")]
struct Args {
    /// What to run.
    #[arg(value_enum)]
    mode: Mode,
    /// Server address (must be a loopback address).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Number of receivers (WebSocket clients in the room).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Broadcasts of the throughput scenario (default: 1,000,000 / n, at least 10).
    #[arg(long)]
    m: Option<usize>,
    /// Broadcast rates (per second) of the latency scenarios of `all`.
    #[arg(long, value_delimiter = ',', default_value = "2,20")]
    rates: Vec<f64>,
    /// Broadcast rate of `latency`.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Sending time of each latency scenario, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// How long to wait for late deliveries after the last send, seconds.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Receivers that record latencies (spread over the join order).
    #[arg(long, default_value_t = 200)]
    sample: usize,
    /// Connections (or joins) in progress at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Server process id, for its RSS and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of the implementation under test, copied into the output.
    #[arg(long, default_value = "")]
    label: String,
    /// Global deadline, seconds: the process exits after this no matter what.
    #[arg(long, default_value_t = 180.0)]
    deadline: f64,
    /// Pause after connecting before the RSS is read, seconds.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// write-cost: sockets written to round-robin (each needs two descriptors).
    #[arg(long, default_value_t = 8000)]
    sockets: usize,
    /// write-cost: rounds (the median is reported).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// write-cost: CPU of the writing thread.
    #[arg(long, default_value_t = 0)]
    writer_cpu: usize,
    /// write-cost: CPU of the thread that reads (and is woken by) the writes.
    #[arg(long, default_value_t = 1)]
    reader_cpu: usize,
}

// ---------------------------------------------------------------------------
// Time, CPU and memory.

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the start of the process (the clock of the payloads).
fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// CPU time of all threads of a process, ns (sum of `/proc/PID/task/*/schedstat`).
fn cpu_ns(pid: Option<u32>) -> Option<u64> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/task"),
        None => "/proc/self/task".to_string(),
    };
    let mut total = 0u64;
    for e in std::fs::read_dir(dir).ok()? {
        let path = e.ok()?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Busy and total jiffies of each CPU (from `/proc/stat`).
fn cpu_jiffies() -> Vec<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// CPU use over a phase, as fractions of one core: the generator process,
/// the server process (its threads' run time), and each core's busy share
/// (which also counts softirq work done outside the processes, e.g. by ksoftirqd).
struct CpuMeter {
    wall: Instant,
    own: Option<u64>,
    server: Option<u64>,
    cores: Vec<(u64, u64)>,
    pid: Option<u32>,
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            own: cpu_ns(None),
            server: pid.and_then(|p| cpu_ns(Some(p))),
            cores: cpu_jiffies(),
            pid,
        }
    }

    /// (generator, server, per-core busy) as JSON values.
    fn stop(&self) -> (Value, Value, Value) {
        let wall = self.wall.elapsed().as_nanos().max(1) as f64;
        let frac = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => json!(round3(b.saturating_sub(a) as f64 / wall)),
            _ => Value::Null,
        };
        let cores: Vec<Value> = self
            .cores
            .iter()
            .zip(cpu_jiffies())
            .map(|((b0, t0), (b1, t1))| {
                let dt = t1.saturating_sub(*t0);
                if dt == 0 {
                    Value::Null
                } else {
                    json!(round3(b1.saturating_sub(*b0) as f64 / dt as f64))
                }
            })
            .collect();
        (
            frac(self.own, cpu_ns(None)),
            frac(self.server, self.pid.and_then(|p| cpu_ns(Some(p)))),
            Value::Array(cores),
        )
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ms(ns: u64) -> f64 {
    round3(ns as f64 / 1e6)
}

// ---------------------------------------------------------------------------
// WebSocket framing (client side).

thread_local! {
    static MASK_STATE: RefCell<u32> = const { RefCell::new(0x9e37_79b9) };
    /// The read buffer shared by every receiver of a runtime thread.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 256 * 1024]);
}

fn next_mask() -> [u8; 4] {
    MASK_STATE.with(|s| {
        let mut x = *s.borrow();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *s.borrow_mut() = x;
        x.to_ne_bytes()
    })
}

/// Appends a masked client text frame carrying `payload` to `out`.
fn put_client_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = next_mask();
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 14);
    put_client_frame(&mut v, payload);
    v
}

/// Parses one complete server frame at the start of `buf`: (opcode, payload range, length used).
fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, mut h) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        h += 4; // servers do not mask, but be tolerant
    }
    if buf.len() < h + len {
        return None;
    }
    Some((op, h..h + len, h + len))
}

// ---------------------------------------------------------------------------
// Shared counters.

/// Scenario tags carried in the payloads (`{"s":S,"t":T}`), one digit.
const MAX_SCEN: usize = 10;
const SCEN_WARMUP: usize = 0;
const SCEN_THROUGHPUT: usize = 1;
const SCEN_LATENCY0: usize = 2;

/// What the server sends for each broadcast: `42["bcast",{"s":` then the tag digit.
const BCAST_PREFIX: &[u8] = br#"42["bcast",{"s":"#;

#[derive(Default)]
struct ScenStat {
    count: AtomicU64,
    target: AtomicU64,
    /// When the count reached the target (0: not yet).
    done_ns: AtomicU64,
    /// When the latest delivery arrived.
    last_ns: AtomicU64,
}

#[derive(Default)]
struct Shared {
    scen: [ScenStat; MAX_SCEN],
    /// Sampled latencies: (scenario, ns).
    lat: Mutex<Vec<(u8, u64)>>,
    /// Connections the server closed (or that failed) after setup.
    closed: AtomicU64,
    /// Engine.IO pings answered.
    pings: AtomicU64,
}

impl Shared {
    fn arm(&self, s: usize, target: u64) {
        let st = &self.scen[s];
        st.count.store(0, Ordering::SeqCst);
        st.done_ns.store(0, Ordering::SeqCst);
        st.last_ns.store(0, Ordering::SeqCst);
        st.target.store(target, Ordering::SeqCst);
    }

    fn add(&self, s: usize, k: u64, now: u64) {
        let st = &self.scen[s];
        let old = st.count.fetch_add(k, Ordering::AcqRel);
        st.last_ns.fetch_max(now, Ordering::AcqRel);
        let target = st.target.load(Ordering::Acquire);
        if old < target && old + k >= target {
            st.done_ns.store(now, Ordering::Release);
        }
    }
}

/// Per-read tally of one receiver.
#[derive(Default)]
struct Tally {
    counts: [u32; MAX_SCEN],
    lat: Vec<(u8, u64)>,
    ping: bool,
    closed: bool,
}

/// Parses the `"t":<digits>` that follows the tag in a sampled payload.
fn parse_t(rest: &[u8]) -> Option<u64> {
    let i = rest.windows(4).position(|w| w == b"\"t\":")? + 4;
    let mut v: u64 = 0;
    let mut any = false;
    for &c in &rest[i..] {
        if c.is_ascii_digit() {
            v = v * 10 + (c - b'0') as u64;
            any = true;
        } else {
            break;
        }
    }
    any.then_some(v)
}

fn classify(op: u8, p: &[u8], sampled: bool, now: u64, t: &mut Tally) {
    match op {
        1 => {
            if p.len() > BCAST_PREFIX.len() && p.starts_with(BCAST_PREFIX) {
                let s = p[BCAST_PREFIX.len()].wrapping_sub(b'0') as usize;
                if s < MAX_SCEN {
                    t.counts[s] += 1;
                    if sampled {
                        if let Some(ts) = parse_t(&p[BCAST_PREFIX.len() + 1..]) {
                            t.lat.push((s as u8, now.saturating_sub(ts)));
                        }
                    }
                }
            } else if p == b"2" {
                t.ping = true;
            } else if p.first() == Some(&b'1') {
                t.closed = true;
            }
        }
        8 => t.closed = true,
        _ => {}
    }
}

/// Scans complete frames in `buf`; returns the bytes used.
fn scan(buf: &[u8], sampled: bool, now: u64, t: &mut Tally) -> usize {
    let mut pos = 0;
    while let Some((op, range, used)) = parse_frame(&buf[pos..]) {
        classify(op, &buf[pos..][range], sampled, now, t);
        pos += used;
    }
    pos
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
        flush_tally(&mut tally, &sh);
        if carry.is_empty() && carry.capacity() > 4096 {
            carry = Vec::new();
        }
        let eof = eof.unwrap_or(true);
        if tally.ping {
            tally.ping = false;
            sh.pings.fetch_add(1, Ordering::Relaxed);
            if stream.write_all(&client_frame(b"3")).await.is_err() {
                sh.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if eof || tally.closed {
            sh.closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if stream.readable().await.is_err() {
            sh.closed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

fn flush_tally(t: &mut Tally, sh: &Shared) {
    let now = now_ns();
    for (s, c) in t.counts.iter_mut().enumerate() {
        if *c > 0 {
            sh.add(s, *c as u64, now);
            *c = 0;
        }
    }
    if !t.lat.is_empty() {
        sh.lat.lock().unwrap().append(&mut t.lat);
    }
}

// ---------------------------------------------------------------------------
// Connection setup (allocations are fine here).

struct Client {
    stream: TcpStream,
    carry: Vec<u8>,
}

fn io_err(msg: &str) -> io::Error {
    io::Error::other(msg.to_string())
}

impl Client {
    /// Opens a WebSocket to the server and joins namespace `/`.
    async fn open(addr: SocketAddr, src: Ipv4Addr) -> io::Result<Client> {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src.into(), 0))?;
        let mut stream = sock.connect(addr).await?;
        stream.set_nodelay(true)?;
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
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

/// Source address of connection `i` (127.0.0.2 ..= 127.0.0.251).
fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8)
}

/// Runs `f(i)` for i in 0..n with at most `c` in flight; results in index order.
async fn run_window<T, F, Fut>(n: usize, c: usize, f: F) -> Vec<io::Result<T>>
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

// ---------------------------------------------------------------------------
// The sender.

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

fn broadcast_frame(out: &mut Vec<u8>, scen: usize) {
    let payload = format!(r#"42["broadcast","r",{{"s":{scen},"t":{}}}]"#, now_ns());
    put_client_frame(out, payload.as_bytes());
}

async fn sender_task(client: Client, mut rx: mpsc::Receiver<Cmd>, sh: Arc<Shared>) {
    let Client {
        mut stream,
        mut carry,
    } = client;
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Burst { scen, m, done }) => {
                    let mut buf = Vec::with_capacity(m * 48);
                    let t0 = now_ns();
                    for _ in 0..m {
                        broadcast_frame(&mut buf, scen);
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
                        broadcast_frame(&mut buf, scen);
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
                        if tally.ping {
                            tally.ping = false;
                            sh.pings.fetch_add(1, Ordering::Relaxed);
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

// ---------------------------------------------------------------------------
// Scenarios.

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

fn emit(v: Value) {
    println!("{v}");
}

struct Ctx {
    args: Args,
    sh: Arc<Shared>,
    probe: tokio::runtime::Handle,
}

/// Waits for scenario `s` to complete, stall (no progress for `stall`) or hit `until`.
async fn wait_scen(sh: &Shared, s: usize, until: Instant, stall: Duration) {
    let st = &sh.scen[s];
    let mut last = st.count.load(Ordering::Acquire);
    let mut last_change = Instant::now();
    loop {
        if st.done_ns.load(Ordering::Acquire) != 0 || Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let c = st.count.load(Ordering::Acquire);
        if c != last {
            last = c;
            last_change = Instant::now();
        } else if last_change.elapsed() >= stall {
            return;
        }
    }
}

fn take_latencies(sh: &Shared, s: usize) -> Vec<u64> {
    let mut v: Vec<u64> = sh
        .lat
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k as usize == s)
        .map(|(_, l)| *l)
        .collect();
    v.sort_unstable();
    v
}

async fn run_load(ctx: Ctx) -> io::Result<()> {
    let a = &ctx.args;
    let sh = ctx.sh.clone();
    let n = a.n;
    let addr = a.addr;
    let pid = a.server_pid;
    let rss_before = pid.and_then(rss_kb);

    // The sender first (not in the room), then the receivers.
    let sender = Client::open(addr, source(n)).await?;

    let meter = CpuMeter::start(pid);
    let t0 = Instant::now();
    let clients = run_window(n, a.concurrency, move |i| async move {
        let t = Instant::now();
        Client::open(addr, source(i))
            .await
            .map(|c| (c, t.elapsed().as_nanos() as u64))
    })
    .await;
    let connect_s = t0.elapsed().as_secs_f64();
    let (gen_cpu, server_cpu, core_busy) = meter.stop();
    let failed = clients.iter().filter(|c| c.is_err()).count();
    let first_err = clients
        .iter()
        .find_map(|c| c.as_ref().err().map(|e| e.to_string()));
    let mut each: Vec<u64> = clients
        .iter()
        .filter_map(|c| c.as_ref().ok().map(|(_, d)| *d))
        .collect();
    each.sort_unstable();
    let mut clients: Vec<Client> = clients
        .into_iter()
        .filter_map(|c| c.ok().map(|(c, _)| c))
        .collect();
    let ok = clients.len();

    if matches!(a.mode, Mode::All | Mode::Connect) {
        tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
        let rss_after = pid.and_then(rss_kb);
        let kb_per_conn = match (rss_before, rss_after) {
            (Some(b), Some(af)) if ok > 0 => json!(round3((af as f64 - b as f64) / ok as f64)),
            _ => Value::Null,
        };
        emit(json!({
            "scenario": "connect",
            "impl": a.label,
            "n": n,
            "connected": ok,
            "failed": failed,
            "error": first_err,
            "connect_s": round3(connect_s),
            "conn_per_s": round3(ok as f64 / connect_s),
            "concurrency": a.concurrency,
            "handshake_p50_ms": ms(percentile(&each, 0.5)),
            "handshake_p99_ms": ms(percentile(&each, 0.99)),
            "rss_before_kb": rss_before,
            "rss_after_kb": rss_after,
            "kb_per_conn": kb_per_conn,
            "gen_cpu": gen_cpu,
            "server_cpu": server_cpu,
            "core_busy": core_busy,
        }));
    }
    if a.mode == Mode::Connect {
        return Ok(());
    }
    if failed > 0 {
        return Err(io_err(&format!(
            "{failed} connections failed: {}",
            first_err.unwrap_or_default()
        )));
    }

    // Join the room.
    let t0 = Instant::now();
    let joined = {
        let mut set = tokio::task::JoinSet::new();
        let mut out: Vec<Option<Client>> = (0..ok).map(|_| None).collect();
        let mut it = clients.drain(..).enumerate();
        let mut err = None;
        loop {
            while set.len() < a.concurrency {
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
        out.into_iter().flatten().collect::<Vec<_>>()
    };
    let join_s = t0.elapsed().as_secs_f64();
    let rss_joined = pid.and_then(rss_kb);

    // Hand the readers out: a sample (spread over the join order) and the
    // sender to the probe runtime, the rest stay here.
    let sample = a.sample.min(n);
    let stride = n.checked_div(sample).map_or(usize::MAX, |s| s.max(1));
    let mut sampled = 0;
    for (i, c) in joined.into_iter().enumerate() {
        let is_sample = sampled < sample && i % stride == 0;
        if is_sample {
            sampled += 1;
            let std = c.stream.into_std()?;
            let carry = c.carry;
            let sh = sh.clone();
            ctx.probe.spawn(async move {
                match TcpStream::from_std(std) {
                    Ok(s) => recv_loop(s, carry, true, sh).await,
                    Err(_) => {
                        sh.closed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        } else {
            tokio::spawn(recv_loop(c.stream, c.carry, false, sh.clone()));
        }
    }
    let (tx, rx) = mpsc::channel::<Cmd>(4);
    {
        let std = sender.stream.into_std()?;
        let carry = sender.carry;
        let sh = sh.clone();
        ctx.probe.spawn(async move {
            if let Ok(s) = TcpStream::from_std(std) {
                sender_task(Client { stream: s, carry }, rx, sh).await;
            }
        });
    }
    let deadline_stall = Duration::from_secs(10);

    // Warm-up: a few broadcasts, not measured.
    {
        sh.arm(SCEN_WARMUP, 5 * n as u64);
        let (dtx, drx) = oneshot::channel();
        let _ = tx
            .send(Cmd::Burst {
                scen: SCEN_WARMUP,
                m: 5,
                done: dtx,
            })
            .await;
        let _ = drx.await;
        wait_scen(
            &sh,
            SCEN_WARMUP,
            Instant::now() + Duration::from_secs(30),
            deadline_stall,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    if matches!(a.mode, Mode::All | Mode::Throughput) {
        let m = a.m.unwrap_or((1_000_000 / n.max(1)).max(10));
        let expected = (n * m) as u64;
        sh.arm(SCEN_THROUGHPUT, expected);
        let meter = CpuMeter::start(pid);
        let (dtx, drx) = oneshot::channel();
        let _ = tx
            .send(Cmd::Burst {
                scen: SCEN_THROUGHPUT,
                m,
                done: dtx,
            })
            .await;
        let t_send = drx.await.map_err(|_| io_err("sender gone"))?;
        wait_scen(
            &sh,
            SCEN_THROUGHPUT,
            Instant::now() + Duration::from_secs(60),
            deadline_stall,
        )
        .await;
        let (gen_cpu, server_cpu, core_busy) = meter.stop();
        let st = &sh.scen[SCEN_THROUGHPUT];
        let got = st.count.load(Ordering::Acquire);
        let done = st.done_ns.load(Ordering::Acquire);
        let end = if done != 0 {
            done
        } else {
            st.last_ns.load(Ordering::Acquire)
        };
        let elapsed = end.saturating_sub(t_send).max(1) as f64 / 1e9;
        let lat = take_latencies(&sh, SCEN_THROUGHPUT);
        emit(json!({
            "scenario": "throughput",
            "impl": a.label,
            "n": n,
            "m": m,
            "expected": expected,
            "delivered": got,
            "lost": expected.saturating_sub(got),
            "elapsed_s": round3(elapsed),
            "deliveries_per_s": (got as f64 / elapsed).round(),
            "lat_p50_ms": ms(percentile(&lat, 0.5)),
            "lat_max_ms": ms(lat.last().copied().unwrap_or(0)),
            "join_s": round3(join_s),
            "rss_joined_kb": rss_joined,
            "gen_cpu": gen_cpu,
            "server_cpu": server_cpu,
            "core_busy": core_busy,
            "closed": sh.closed.load(Ordering::Relaxed),
        }));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let rates: Vec<f64> = match a.mode {
        Mode::All => a.rates.clone(),
        Mode::Latency => vec![a.rate],
        _ => Vec::new(),
    };
    for (k, rate) in rates.into_iter().enumerate() {
        let scen = SCEN_LATENCY0 + k;
        if scen >= MAX_SCEN {
            break;
        }
        let count = ((rate * a.duration).round() as usize).max(1);
        let expected = (n * count) as u64;
        sh.arm(scen, expected);
        let meter = CpuMeter::start(pid);
        let (dtx, drx) = oneshot::channel();
        let _ = tx
            .send(Cmd::Rate {
                scen,
                rate,
                count,
                done: dtx,
            })
            .await;
        let _ = drx.await;
        wait_scen(
            &sh,
            scen,
            Instant::now() + Duration::from_secs_f64(a.grace),
            Duration::from_secs_f64(a.grace),
        )
        .await;
        let (gen_cpu, server_cpu, core_busy) = meter.stop();
        let got = sh.scen[scen].count.load(Ordering::Acquire);
        let lat = take_latencies(&sh, scen);
        emit(json!({
            "scenario": "latency",
            "impl": a.label,
            "n": n,
            "rate": rate,
            "duration_s": a.duration,
            "sent": count,
            "expected": expected,
            "delivered": got,
            "delivered_fraction": (got as f64 / expected as f64 * 1e4).round() / 1e4,
            "samples": lat.len(),
            "sample_receivers": sampled,
            "p50_ms": ms(percentile(&lat, 0.5)),
            "p99_ms": ms(percentile(&lat, 0.99)),
            "p999_ms": ms(percentile(&lat, 0.999)),
            "max_ms": ms(lat.last().copied().unwrap_or(0)),
            "gen_cpu": gen_cpu,
            "server_cpu": server_cpu,
            "core_busy": core_busy,
            "closed": sh.closed.load(Ordering::Relaxed),
            "pings": sh.pings.load(Ordering::Relaxed),
        }));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// write-cost: what one small write(2) costs on a loopback TCP socket.

fn write_cost(a: &Args) -> io::Result<()> {
    use std::io::{Read, Write};
    pin_current_thread(a.writer_cpu);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let n = a.sockets.max(1);
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
    // A typical broadcast frame as the server writes it.
    let payload = br#"42["bcast",{"s":1,"t":123456789012}]"#;
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload);
    let mut sink = vec![0u8; 1 << 20];
    let drain = |clients: &mut Vec<std::net::TcpStream>, sink: &mut Vec<u8>| {
        for c in clients.iter_mut() {
            while let Ok(k) = c.read(sink) {
                if k == 0 {
                    break;
                }
            }
        }
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v[v.len() / 2]
    };

    // One message to each of n sockets (what a broadcast does).
    let mut rr = Vec::new();
    for _ in 0..a.rounds.max(1) {
        let t = Instant::now();
        for s in servers.iter_mut() {
            s.write_all(&frame)?;
        }
        rr.push(t.elapsed().as_nanos() as f64 / n as f64);
        drain(&mut clients, &mut sink);
    }
    // 1,000 messages to one socket, one write each.
    let k = 1000;
    let mut same = Vec::new();
    for _ in 0..a.rounds.max(1) {
        let t = Instant::now();
        for _ in 0..k {
            servers[0].write_all(&frame)?;
        }
        same.push(t.elapsed().as_nanos() as f64 / k as f64);
        drain(&mut clients, &mut sink);
    }
    // 64 messages per write (what a queue drained at once costs per message).
    let batch: Vec<u8> = frame.repeat(64);
    let mut batched = Vec::new();
    for _ in 0..a.rounds.max(1) {
        let t = Instant::now();
        for s in servers.iter_mut().take(1000) {
            s.write_all(&batch)?;
        }
        batched.push(t.elapsed().as_nanos() as f64 / (1000.min(n) * 64) as f64);
        drain(&mut clients, &mut sink);
    }
    // One message to each of n sockets while a reader thread on the other
    // core waits for them in epoll (what a broadcast to live clients costs:
    // each write also wakes the reader's thread).
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let received = received.clone();
        let reader_cpu = a.reader_cpu;
        std::thread::spawn(move || -> io::Result<()> {
            pin_current_thread(reader_cpu);
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
                let _ = ready_tx.send(());
                // Serve reads until the writer is done (bounded by the global deadline).
                std::future::pending::<()>().await;
                Ok::<(), io::Error>(())
            })
        })
    };
    let _ = ready_rx.recv();
    let mut woken = Vec::new();
    let mut expected = 0u64;
    for _ in 0..a.rounds.max(1) {
        // Let the reader go idle (asleep in epoll_wait) first.
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        for s in servers.iter_mut() {
            s.write_all(&frame)?;
        }
        woken.push(t.elapsed().as_nanos() as f64 / n as f64);
        expected += (n * frame.len()) as u64;
        let until = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Relaxed) < expected && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(reader);
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
) -> io::Result<std::net::TcpStream> {
    let s = rt.block_on(async {
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(src.into(), 0))?;
        sock.connect(addr).await
    })?;
    let std = s.into_std()?;
    std.set_nonblocking(false)?;
    std.set_nodelay(true)?;
    Ok(std)
}

// ---------------------------------------------------------------------------

fn main() {
    let args = Args::parse();
    let _ = now_ns();
    if !args.addr.ip().is_loopback() {
        eprintln!("loadgen: --addr must be a loopback address");
        std::process::exit(2);
    }
    // Global deadline: stop by ourselves whatever happens.
    let deadline = Duration::from_secs_f64(args.deadline);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        emit(json!({"scenario": "error", "error": "global deadline reached"}));
        std::process::exit(3);
    });
    if args.mode == Mode::WriteCost {
        if let Err(e) = write_cost(&args) {
            emit(json!({"scenario": "error", "error": e.to_string()}));
            std::process::exit(1);
        }
        return;
    }
    let bulk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let probe = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let probe_handle = probe.handle().clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let probe_thread = std::thread::Builder::new()
        .name("probe".into())
        .spawn(move || {
            probe.block_on(async {
                let _ = stop_rx.await;
            });
        })
        .expect("thread");
    let label = args.label.clone();
    let ctx = Ctx {
        args,
        sh: Arc::new(Shared::default()),
        probe: probe_handle,
    };
    let r = bulk.block_on(run_load(ctx));
    let _ = stop_tx.send(());
    let _ = probe_thread.join();
    if let Err(e) = r {
        emit(json!({"scenario": "error", "impl": label, "error": e.to_string()}));
        std::process::exit(1);
    }
    // Exit without tearing 10,000 connections down one by one.
    std::process::exit(0);
}
