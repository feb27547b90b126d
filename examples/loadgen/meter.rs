//! Time, CPU and memory: the process clock carried in the payloads, and what
//! the generator, the server and each core spent during a phase (read from
//! `/proc`, so the numbers cost nothing on the measured path).

use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{json, Value};

static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the start of the process (the clock of the payloads).
pub(crate) fn now_ns() -> u64 {
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

/// Resident set size of a process, KB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
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
pub(crate) struct CpuMeter {
    wall: Instant,
    own: Option<u64>,
    server: Option<u64>,
    cores: Vec<(u64, u64)>,
    pid: Option<u32>,
}

impl CpuMeter {
    /// Reads the counters at the start of a phase (`pid`: the server, if known).
    pub(crate) fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            own: cpu_ns(None),
            server: pid.and_then(|p| cpu_ns(Some(p))),
            cores: cpu_jiffies(),
            pid,
        }
    }

    /// (generator, server, per-core busy) as JSON values.
    pub(crate) fn stop(&self) -> (Value, Value, Value) {
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

/// `x` rounded to three decimals (the precision of every JSON number).
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nanoseconds as milliseconds, rounded to three decimals.
pub(crate) fn ms(ns: u64) -> f64 {
    round3(ns as f64 / 1e6)
}
