//! Helpers shared by the criterion benches (each includes this file with
//! `mod common;`): the group settings and the batched timing loop, so that
//! the benches differ only in what they measure.
//!
//! Each bench is its own crate and uses only part of this module, hence the
//! `dead_code` allowance.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// A group of `samples` samples after `warm_up`, measured for `measure`.
pub fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    samples: usize,
    warm_up: Duration,
    measure: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(samples)
        .warm_up_time(warm_up)
        .measurement_time(measure);
    g
}

/// The settings of the short micro-benchmarks: 20 samples, 300 ms warm-up,
/// one second of measurement.
pub fn quick_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    group(
        c,
        name,
        20,
        Duration::from_millis(300),
        Duration::from_secs(1),
    )
}

/// Times `iters` calls of `run` in batches of at most `batch`; `reset` runs
/// after each batch, untimed (e.g. to empty the queues `run` filled).
pub fn batched(iters: u64, batch: u64, mut run: impl FnMut(), mut reset: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch);
        let t = Instant::now();
        for _ in 0..n {
            run();
        }
        total += t.elapsed();
        reset();
        left -= n;
    }
    total
}
