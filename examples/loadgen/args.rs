//! The command line: one mode and its flags (benches/run.sh and BENCHMARKS.md
//! pass these exact names, so they are part of the tool's contract).

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

// What one run measures (see the crate docs for each mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    All,
    Connect,
    Throughput,
    Latency,
    WriteCost,
}

// The parsed command line (a plain comment: clap would turn a doc comment into help text).
#[derive(Debug, Parser)]
#[command(about = "Socket.IO load generator for the conformance contract (loopback only)")]
pub(crate) struct Args {
    /// What to run.
    #[arg(value_enum)]
    pub(crate) mode: Mode,
    /// Server address (must be a loopback address).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub(crate) addr: SocketAddr,
    /// Cluster mode: a second node of the same cluster (loopback). The
    /// first half of the receivers connect to `--addr`, the second half
    /// here; the sender stays on `--addr`, so the second half's broadcasts
    /// cross the cluster (e.g. Redis).
    #[arg(long)]
    pub(crate) addr2: Option<SocketAddr>,
    /// With `--addr2`: every receiver on `--addr2` (all deliveries cross the
    /// cluster: the latency of the hop).
    #[arg(long)]
    pub(crate) remote_only: bool,
    /// Number of receivers (WebSocket clients in the room).
    #[arg(long, default_value_t = 1000)]
    pub(crate) n: usize,
    /// Broadcasts of the throughput scenario (default: 1,000,000 / n, at least 10).
    #[arg(long)]
    pub(crate) m: Option<usize>,
    /// Broadcast rates (per second) of the latency scenarios of `all`.
    #[arg(long, value_delimiter = ',', default_value = "2,20")]
    pub(crate) rates: Vec<f64>,
    /// Broadcast rate of `latency`.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) rate: f64,
    /// Sending time of each latency scenario, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// How long to wait for late deliveries after the last send, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) grace: f64,
    /// Receivers that record latencies (spread over the join order).
    #[arg(long, default_value_t = 200)]
    pub(crate) sample: usize,
    /// Connections (or joins) in progress at once.
    #[arg(long, default_value_t = 128)]
    pub(crate) concurrency: usize,
    /// Server process id, for its RSS and CPU time.
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Name of the implementation under test, copied into the output.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// Global deadline, seconds: the process exits after this no matter what.
    #[arg(long, default_value_t = 180.0)]
    pub(crate) deadline: f64,
    /// Pause after connecting before the RSS is read, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) settle: f64,
    /// Offer permessage-deflate (with `server_no_context_takeover`) on every
    /// connection and require the server to agree.
    #[arg(long)]
    pub(crate) deflate: bool,
    /// Pad each broadcast with a roster of about this many bytes (0: none).
    #[arg(long, default_value_t = 0)]
    pub(crate) payload_bytes: usize,
    /// write-cost: sockets written to round-robin (each needs two descriptors).
    #[arg(long, default_value_t = 8000)]
    pub(crate) sockets: usize,
    /// write-cost: rounds (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub(crate) rounds: usize,
    /// write-cost: CPU of the writing thread.
    #[arg(long, default_value_t = 0)]
    pub(crate) writer_cpu: usize,
    /// write-cost: CPU of the thread that reads (and is woken by) the writes.
    #[arg(long, default_value_t = 1)]
    pub(crate) reader_cpu: usize,
}
