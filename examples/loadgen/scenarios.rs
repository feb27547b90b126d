//! The scenarios of `connect`, `throughput`, `latency` and `all`, one
//! function each, and `run_load`, which runs them in order on the same
//! connections and prints one JSON line per scenario (benches/run.sh reads
//! every field: names and meanings are part of the tool's contract).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::args::{Args, Mode};
use crate::clients::{io_err, join_all, run_window, source, Client};
use crate::emit;
use crate::meter::{ms, round3, rss_kb, CpuMeter};
use crate::stats::{percentile, Shared, MAX_SCEN, SCEN_LATENCY0, SCEN_THROUGHPUT, SCEN_WARMUP};
use crate::traffic::{spawn_receivers, Sender};

/// How long a scenario may go without a delivery before it counts as done.
const STALL: Duration = Duration::from_secs(10);

/// What a load run needs: the command line, the counters and the probe runtime.
pub(crate) struct Ctx {
    /// The command line.
    pub(crate) args: Args,
    /// The counters shared with every receiver.
    pub(crate) sh: Arc<Shared>,
    /// The runtime of the sender and the sampled receivers.
    pub(crate) probe: tokio::runtime::Handle,
}

/// What connecting the receivers gave.
struct Connected {
    clients: Vec<Client>,
    failed: usize,
    first_err: Option<String>,
    connect_s: f64,
    /// Handshake time of each connected client, sorted, ns.
    each: Vec<u64>,
    /// (generator, server, per-core busy) CPU while connecting.
    cpu: (Value, Value, Value),
}

/// Runs the scenarios `ctx.args.mode` asks for, in order, on the same connections.
pub(crate) async fn run_load(ctx: Ctx) -> io::Result<()> {
    let a = &ctx.args;
    let sh = &ctx.sh;
    let n = a.n;
    let pid = a.server_pid;
    let rss_before = pid.and_then(rss_kb);

    // The sender first (not in the room), then the receivers.
    let sender = Client::open(a.addr, source(n), a.deflate).await?;
    let conn = connect_receivers(a).await;
    if matches!(a.mode, Mode::All | Mode::Connect) {
        tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
        emit_connect(a, &conn, rss_before);
    }
    if a.mode == Mode::Connect {
        return Ok(());
    }
    if conn.failed > 0 {
        return Err(io_err(&format!(
            "{} connections failed: {}",
            conn.failed,
            conn.first_err.unwrap_or_default()
        )));
    }

    // Join the room.
    let t0 = Instant::now();
    let joined = join_all(conn.clients, a.concurrency).await?;
    let join_s = t0.elapsed().as_secs_f64();
    let rss_joined = pid.and_then(rss_kb);

    // Hand the readers out: a sample (spread over the join order) and the
    // sender to the probe runtime, the rest stay here.
    let sample = a.sample.min(n);
    let stride = n.checked_div(sample).map_or(usize::MAX, |s| s.max(1));
    let sampled = spawn_receivers(joined, sample, stride, sh, &ctx.probe)?;
    let sender = Sender::spawn(sender, sh, &ctx.probe, a.payload_bytes)?;

    warm_up(sh, &sender, n).await;
    if matches!(a.mode, Mode::All | Mode::Throughput) {
        throughput(a, sh, &sender, join_s, rss_joined).await?;
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
        latency(a, sh, &sender, scen, rate, sampled).await;
    }
    Ok(())
}

/// Opens the `n` receivers, `concurrency` at a time, timing each handshake.
async fn connect_receivers(a: &Args) -> Connected {
    let (addr, addr2, n) = (a.addr, a.addr2, a.n);
    let remote_only = a.remote_only;
    let deflate = a.deflate;
    let meter = CpuMeter::start(a.server_pid);
    let t0 = Instant::now();
    let clients = run_window(a.n, a.concurrency, move |i| async move {
        let t = Instant::now();
        // Cluster mode: the second half (or all) on the second node.
        let to = match addr2 {
            Some(second) if remote_only || i >= n / 2 => second,
            _ => addr,
        };
        Client::open(to, source(i), deflate)
            .await
            .map(|c| (c, t.elapsed().as_nanos() as u64))
    })
    .await;
    let connect_s = t0.elapsed().as_secs_f64();
    let cpu = meter.stop();
    let failed = clients.iter().filter(|c| c.is_err()).count();
    let first_err = clients
        .iter()
        .find_map(|c| c.as_ref().err().map(|e| e.to_string()));
    let mut each: Vec<u64> = clients
        .iter()
        .filter_map(|c| c.as_ref().ok().map(|(_, d)| *d))
        .collect();
    each.sort_unstable();
    let clients: Vec<Client> = clients
        .into_iter()
        .filter_map(|c| c.ok().map(|(c, _)| c))
        .collect();
    Connected {
        clients,
        failed,
        first_err,
        connect_s,
        each,
        cpu,
    }
}

/// The `connect` line: connection rate, handshake times, server memory per connection.
fn emit_connect(a: &Args, conn: &Connected, rss_before: Option<u64>) {
    let ok = conn.clients.len();
    let rss_after = a.server_pid.and_then(rss_kb);
    let kb_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(af)) if ok > 0 => json!(round3((af as f64 - b as f64) / ok as f64)),
        _ => Value::Null,
    };
    let (gen_cpu, server_cpu, core_busy) = &conn.cpu;
    emit(json!({
        "scenario": "connect",
        "impl": a.label,
        "n": a.n,
        "connected": ok,
        "failed": conn.failed,
        "error": conn.first_err,
        "connect_s": round3(conn.connect_s),
        "conn_per_s": round3(ok as f64 / conn.connect_s),
        "concurrency": a.concurrency,
        "handshake_p50_ms": ms(percentile(&conn.each, 0.5)),
        "handshake_p99_ms": ms(percentile(&conn.each, 0.99)),
        "rss_before_kb": rss_before,
        "rss_after_kb": rss_after,
        "kb_per_conn": kb_per_conn,
        "gen_cpu": gen_cpu,
        "server_cpu": server_cpu,
        "core_busy": core_busy,
    }));
}

/// Warm-up: a few broadcasts, not measured.
async fn warm_up(sh: &Shared, sender: &Sender, n: usize) {
    sh.arm(SCEN_WARMUP, 5 * n as u64);
    let _ = sender.burst(SCEN_WARMUP, 5).await;
    sh.wait(SCEN_WARMUP, Instant::now() + Duration::from_secs(30), STALL)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The `throughput` line: M broadcasts at once to every receiver (`join_s`
/// and `rss_joined` were measured when the room was joined).
async fn throughput(
    a: &Args,
    sh: &Shared,
    sender: &Sender,
    join_s: f64,
    rss_joined: Option<u64>,
) -> io::Result<()> {
    let n = a.n;
    let m = a.m.unwrap_or((1_000_000 / n.max(1)).max(10));
    let expected = (n * m) as u64;
    sh.arm(SCEN_THROUGHPUT, expected);
    let bytes0 = sh.bytes_read();
    let meter = CpuMeter::start(a.server_pid);
    let t_send = sender.burst(SCEN_THROUGHPUT, m).await?;
    sh.wait(
        SCEN_THROUGHPUT,
        Instant::now() + Duration::from_secs(60),
        STALL,
    )
    .await;
    let (gen_cpu, server_cpu, core_busy) = meter.stop();
    let got = sh.count(SCEN_THROUGHPUT);
    let end = sh.end_ns(SCEN_THROUGHPUT);
    let elapsed = end.saturating_sub(t_send).max(1) as f64 / 1e9;
    let lat = sh.latencies(SCEN_THROUGHPUT);
    let wire = sh.bytes_read() - bytes0;
    emit(json!({
        "scenario": "throughput",
        "impl": a.label,
        "n": n,
        "m": m,
        "payload_bytes": a.payload_bytes,
        "deflate": a.deflate,
        "wire_bytes": wire,
        "wire_bytes_per_delivery": (wire as f64 / got.max(1) as f64).round(),
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
        "closed": sh.closed(),
    }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// One `latency` line: broadcasts at `rate` per second for `--duration`
/// seconds as scenario `scen`; `sampled` receivers record latencies.
async fn latency(a: &Args, sh: &Shared, sender: &Sender, scen: usize, rate: f64, sampled: usize) {
    let n = a.n;
    let count = ((rate * a.duration).round() as usize).max(1);
    let expected = (n * count) as u64;
    sh.arm(scen, expected);
    let meter = CpuMeter::start(a.server_pid);
    let _ = sender.rate(scen, rate, count).await;
    sh.wait(
        scen,
        Instant::now() + Duration::from_secs_f64(a.grace),
        Duration::from_secs_f64(a.grace),
    )
    .await;
    let (gen_cpu, server_cpu, core_busy) = meter.stop();
    let got = sh.count(scen);
    let lat = sh.latencies(scen);
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
        "closed": sh.closed(),
        "pings": sh.pings(),
    }));
    tokio::time::sleep(Duration::from_secs(1)).await;
}
