//! The room registry: join, leave, member lookup, alone and with a second
//! thread contending (on another room, or on the same room).
//!
//! `cargo bench --bench rooms`. Members are `Arc<u64>` (an `Arc` clone like
//! the `Arc<Socket>` the server keeps).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use rollcall::socketio::{Room, RoomRegistry};

mod common;

type Reg = RoomRegistry<Arc<u64>>;

fn ids(n: usize, prefix: &str) -> Vec<Arc<str>> {
    (0..n)
        .map(|i| Arc::from(format!("{prefix}{i:08}")))
        .collect()
}

/// A registry with `rooms` rooms of `members` members each.
fn filled(rooms: usize, members: usize) -> (Reg, Vec<Room>, Vec<Arc<str>>) {
    let reg = Reg::default();
    let names: Vec<Room> = (0..rooms).map(|r| Arc::from(format!("room-{r}"))).collect();
    let who = ids(members, "sock-");
    for r in &names {
        for (i, id) in who.iter().enumerate() {
            reg.join(r, id, Arc::new(i as u64));
        }
    }
    (reg, names, who)
}

/// Runs `op` in a loop on a second thread while the measured closure runs.
fn with_contender<F>(op: F, iters: u64, mut measured: impl FnMut(u64)) -> Duration
where
    F: Fn(u64) + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicU64::new(0));
    let t = {
        let (stop, ready, done) = (stop.clone(), ready.clone(), done.clone());
        std::thread::spawn(move || {
            ready.wait();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                op(i);
                i += 1;
            }
            done.store(i, Ordering::Relaxed);
        })
    };
    ready.wait();
    let start = Instant::now();
    for i in 0..iters {
        measured(i);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    elapsed
}

fn single(c: &mut Criterion) {
    let mut g = common::quick_group(c, "rooms");
    for &size in &[100usize, 10_000] {
        // join + leave of one socket in a room of `size` (the snapshot is dropped each time).
        let (reg, names, _) = filled(1, size);
        let room = names[0].clone();
        let newcomer: Arc<str> = Arc::from("newcomer");
        let member = Arc::new(0u64);
        g.bench_function(BenchmarkId::new("join_leave", size), |b| {
            b.iter(|| {
                reg.join(&room, &newcomer, member.clone());
                reg.leave(black_box(&room), black_box(&newcomer));
            })
        });
        // Lookup with the cached snapshot (what every broadcast does).
        let _ = reg.members(&room);
        g.bench_function(BenchmarkId::new("lookup_cached", size), |b| {
            b.iter(|| reg.members(black_box(&room)).map(|m| m.len()))
        });
        // Lookup right after a membership change: the snapshot is rebuilt.
        g.bench_function(BenchmarkId::new("join_leave_then_lookup", size), |b| {
            b.iter(|| {
                reg.join(&room, &newcomer, member.clone());
                reg.leave(&room, &newcomer);
                reg.members(black_box(&room)).map(|m| m.len())
            })
        });
        g.bench_function(BenchmarkId::new("contains", size), |b| {
            b.iter(|| reg.contains(black_box(&room), black_box("sock-00000042")))
        });
    }
    // Many small rooms: a socket joining and leaving its own room (every connect does).
    let (reg, _, _) = filled(1000, 1);
    let fresh = ids(1, "fresh-")[0].clone();
    let member = Arc::new(0u64);
    g.bench_function("join_leave_own_room_1k_rooms", |b| {
        b.iter(|| {
            reg.join(&fresh, &fresh, member.clone());
            reg.leave(black_box(&fresh), black_box(&fresh));
        })
    });
    g.finish();
}

/// One membership change each way: `who` joins `room` with `member`, then leaves.
fn join_leave(reg: &Reg, room: &Room, who: &Arc<str>, member: Arc<u64>) {
    reg.join(room, who, member);
    reg.leave(room, who);
}

/// Benches `measured` on `reg` while a second thread keeps running
/// `contender` (with its iteration number) on the same registry.
fn bench_contended(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    reg: &Arc<Reg>,
    contender: impl Fn(&Reg, u64) + Clone + Send + 'static,
    measured: impl Fn(&Reg),
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (reg2, op) = (reg.clone(), contender.clone());
            with_contender(move |i| op(&reg2, i), iters, |_| measured(reg))
        })
    });
}

fn contended(c: &mut Criterion) {
    let mut g = common::quick_group(c, "rooms_two_threads");
    let size = 1000;

    // Both threads join/leave, on different rooms (usually different shards).
    {
        let (reg, names, _) = filled(2, size);
        let reg = Arc::new(reg);
        let (ra, rb) = (names[0].clone(), names[1].clone());
        let (ia, ib): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let m = Arc::new(1u64);
        bench_contended(
            &mut g,
            "join_leave_other_room",
            &reg,
            move |reg, _| join_leave(reg, &rb, &ib, m.clone()),
            |reg| join_leave(reg, &ra, &ia, Arc::new(0)),
        );
    }
    // Both threads join/leave the same room (one shard lock).
    {
        let (reg, names, _) = filled(1, size);
        let reg = Arc::new(reg);
        let room = names[0].clone();
        let (room2, other): (Room, Arc<str>) = (room.clone(), Arc::from("b"));
        let m = Arc::new(1u64);
        let mine: Arc<str> = Arc::from("a");
        bench_contended(
            &mut g,
            "join_leave_same_room",
            &reg,
            move |reg, _| join_leave(reg, &room2, &other, m.clone()),
            |reg| join_leave(reg, &room, &mine, Arc::new(0)),
        );
    }
    // Lookups (broadcasts) while the other thread only looks up too: read locks.
    {
        let (reg, names, _) = filled(1, size);
        let reg = Arc::new(reg);
        let room = names[0].clone();
        let _ = reg.members(&room);
        let room2 = room.clone();
        bench_contended(
            &mut g,
            "lookup_vs_lookup_same_room",
            &reg,
            move |reg, _| {
                black_box(reg.members(&room2));
            },
            |reg| {
                black_box(reg.members(&room));
            },
        );
    }
    // Lookups of a room while the other thread keeps joining/leaving it:
    // each change drops the snapshot, so a lookup may rebuild it (O(members)).
    {
        let (reg, names, _) = filled(1, size);
        let reg = Arc::new(reg);
        let room = names[0].clone();
        let (room2, other): (Room, Arc<str>) = (room.clone(), Arc::from("churn"));
        let m = Arc::new(1u64);
        bench_contended(
            &mut g,
            "lookup_vs_churn_same_room",
            &reg,
            move |reg, i| {
                if i % 2 == 0 {
                    reg.join(&room2, &other, m.clone());
                } else {
                    reg.leave(&room2, &other);
                }
            },
            |reg| {
                black_box(reg.members(&room));
            },
        );
    }
    g.finish();
}

criterion_group!(benches, single, contended);
criterion_main!(benches);
