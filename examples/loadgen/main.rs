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
//! Cluster mode (`--addr2`, a second node of the same cluster): the first
//! half of the receivers on `--addr`, the second half on `--addr2`, the
//! sender on `--addr`; with `--remote-only` every receiver is on `--addr2`.
//! The sampled receivers are spread over the join order, so over both
//! nodes.
//!
//! `--payload-bytes B` pads every broadcast with a JSON roster of about B
//! bytes; `--deflate` offers permessage-deflate (with
//! `server_no_context_takeover`) on every connection, fails unless the
//! server agrees, and reports the bytes the receivers read
//! (`wire_bytes_per_delivery` in the throughput line). Bulk receivers count
//! compressed broadcasts without inflating them (nothing else the server
//! sends is compressed: pings and acks are under any threshold); sampled
//! receivers inflate them and read the timestamp as usual.
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
//!
//! Layout: `args` (the command line), `meter` (clock, CPU, RSS), `wire`
//! (client frames and the receivers' scan), `stats` (the shared counters),
//! `clients` (connection setup), `traffic` (read loops and the sender),
//! `scenarios` (one function per scenario) and `write_cost`.

mod args;
mod clients;
mod meter;
mod scenarios;
mod stats;
mod traffic;
mod wire;
mod write_cost;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::args::{Args, Mode};
use crate::meter::now_ns;
use crate::scenarios::{run_load, Ctx};
use crate::stats::Shared;
use crate::write_cost::write_cost;

/// Prints one JSON line on stdout (the tool's only output).
fn emit(v: Value) {
    println!("{v}");
}

fn main() {
    let args = Args::parse();
    let _ = now_ns();
    if !args.addr.ip().is_loopback() || args.addr2.is_some_and(|a| !a.ip().is_loopback()) {
        eprintln!("loadgen: --addr and --addr2 must be loopback addresses");
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
