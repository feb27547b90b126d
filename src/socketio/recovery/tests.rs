//! The recovery store over a durable log: order, pruning by age and size,
//! once-only restore, and restarts (clean and not).

use super::log::CRASH_GAP;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

/// A throw-away log directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        Dir(std::env::temp_dir().join(format!(
            "rollcall-recovery-{tag}-{}-{}",
            std::process::id(),
            crate::util::random_id(4)
        )))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the log, waiting for the previous handle's release.
fn open(dir: &Dir) -> RecoveryLog {
    RecoveryLog::open_within(
        dir.path(),
        RecoveryLogOptions::default(),
        Duration::from_secs(5),
    )
    .expect("open log")
}

fn store(log: &RecoveryLog, config: RecoveryConfig) -> RecoveryStore {
    RecoveryStore::durable(config, log, "/")
}

/// Broadcasts event `n` to `rooms`; returns its offset.
fn emit(s: &RecoveryStore, n: u64, rooms: &[&str], except: &[&str]) -> String {
    let (seq, offset) = s.next_offset();
    let frame = Frame::message(&format!("2[\"e\",{n},\"{offset}\"]"));
    let rooms = rooms.iter().map(|r| Room::from(*r)).collect();
    let except = except.iter().map(|r| Room::from(*r)).collect();
    s.store(seq, rooms, except, vec![frame]);
    offset
}

fn session(pid: &str, sid: &str, rooms: &[&str], data: Option<Value>) -> Session {
    Session {
        pid: pid.into(),
        sid: sid.into(),
        rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
        data: extensions_with(data),
    }
}

/// The event numbers in restored frames.
fn numbers(r: &Restored) -> Vec<u64> {
    r.missed
        .iter()
        .map(|f| {
            let text = std::str::from_utf8(&f.payload()[2..]).expect("utf8");
            let v: Value = serde_json::from_str(text).expect("json");
            v[1].as_u64().expect("number")
        })
        .collect()
}

#[test]
fn restart_keeps_order_rooms_data_and_restores_once() {
    let dir = Dir::new("restart");
    let first;
    {
        let log = open(&dir);
        let s = store(&log, RecoveryConfig::default());
        first = emit(&s, 1, &["r"], &[]);
        s.save_session(session(
            "p1",
            "s1",
            &["s1", "r"],
            Some(json!({"user": "a"})),
        ));
        emit(&s, 2, &["r"], &[]);
        emit(&s, 3, &[], &[]);
        emit(&s, 4, &["other"], &[]);
        emit(&s, 5, &["r"], &["s1"]);
        emit(&s, 6, &["r", "other"], &[]);
        log.close().expect("close");
    }
    let log = open(&dir);
    assert!(log.was_clean());
    let s = store(&log, RecoveryConfig::default());
    let r = s.restore("p1", &first).expect("recovered after a restart");
    assert_eq!(numbers(&r), [2, 3, 6]);
    assert_eq!(&*r.session.sid, "s1");
    assert_eq!(r.session.rooms, [Room::from("s1"), Room::from("r")]);
    assert_eq!(r.session.data.get::<Value>(), Some(json!({"user": "a"})));
    assert!(s.restore("p1", &first).is_none(), "restored once");
    // New offsets continue after the old ones.
    let later = emit(&s, 7, &[], &[]);
    assert!(later.ends_with("-7"), "{later}");
    log.close().expect("close");
    drop(s);
    drop(log);
    let log = open(&dir);
    let s = store(&log, RecoveryConfig::default());
    assert!(s.restore("p1", &first).is_none(), "the restore was durable");
}

#[test]
fn size_bounds_prune_oldest_and_refuse_pruned_offsets() {
    let dir = Dir::new("size");
    let config = RecoveryConfig {
        max_packets: 3,
        ..RecoveryConfig::default()
    };
    let (o1, o2);
    {
        let log = open(&dir);
        let s = store(&log, config);
        o1 = emit(&s, 1, &[], &[]);
        o2 = emit(&s, 2, &[], &[]);
        s.save_session(session("a", "sa", &["sa"], None));
        s.save_session(session("b", "sb", &["sb"], None));
        for n in 3..=5 {
            emit(&s, n, &[], &[]);
        }
        // Packets 1 and 2 are gone: offset 1 cannot catch up, offset 2 can.
        assert!(s.restore("a", &o1).is_none());
        log.close().expect("close");
    }
    let log = open(&dir);
    let s = store(&log, config);
    assert_eq!(numbers(&s.restore("b", &o2).expect("b")), [3, 4, 5]);

    // Bytes: each packet is 22 bytes (`42["e",n,"<tag>-n"]`); 50 keep two.
    let dir = Dir::new("bytes");
    let log = open(&dir);
    let s = store(
        &log,
        RecoveryConfig {
            max_bytes: 50,
            ..RecoveryConfig::default()
        },
    );
    let o = emit(&s, 1, &[], &[]);
    s.save_session(session("c", "sc", &["sc"], None));
    for n in 2..=4 {
        emit(&s, n, &[], &[]);
    }
    let log_len = s.packets.lock().q.len();
    assert_eq!(log_len, 2);
    assert!(s.restore("c", &o).is_none());
}

#[test]
fn age_bound_prunes_packets_and_sessions_across_a_restart() {
    let dir = Dir::new("age");
    let config = RecoveryConfig {
        max_disconnection: Duration::from_millis(200),
        ..RecoveryConfig::default()
    };
    let o;
    {
        let log = open(&dir);
        let s = store(&log, config);
        o = emit(&s, 1, &[], &[]);
        emit(&s, 2, &[], &[]);
        s.save_session(session("p", "s", &["s"], None));
        log.close().expect("close");
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = open(&dir);
    let s = store(&log, config);
    assert!(s.packets.lock().q.is_empty(), "old packets are not loaded");
    assert!(s.sessions.lock().is_empty(), "old sessions are not loaded");
    assert!(s.restore("p", &o).is_none());
}

#[test]
fn unclean_stop_skips_the_lost_offsets() {
    let dir = Dir::new("crash");
    let (o1, o2);
    {
        let log = open(&dir);
        let s = store(&log, RecoveryConfig::default());
        o1 = emit(&s, 1, &[], &[]);
        o2 = emit(&s, 2, &[], &[]);
        s.save_session(session("a", "sa", &["sa"], None));
        s.save_session(session("b", "sb", &["sb"], None));
        log.flush().expect("flush");
        // Handed out, then "lost": dropped without close (no clean marker).
    }
    let log = open(&dir);
    assert!(!log.was_clean());
    let s = store(&log, RecoveryConfig::default());
    assert_eq!(numbers(&s.restore("a", &o1).expect("a")), [2]);
    let next = emit(&s, 3, &[], &[]);
    let seq: u64 = next.rsplit_once('-').unwrap().1.parse().unwrap();
    assert!(seq > CRASH_GAP, "the counter skipped ahead: {seq}");
    // An offset from the skipped range (one the crashed process might have
    // handed out) is never recovered.
    let tag = o2.rsplit_once('-').unwrap().0;
    s.save_session(session("c", "sc", &["sc"], None));
    assert!(s.restore("c", &format!("{tag}-5")).is_none());
    assert_eq!(numbers(&s.restore("b", &o2).expect("b")), [3]);
}

#[test]
fn in_memory_offsets_do_not_survive_and_foreign_offsets_are_refused() {
    let a = RecoveryStore::new(RecoveryConfig::default());
    let b = RecoveryStore::new(RecoveryConfig::default());
    let o = emit(&a, 1, &[], &[]);
    b.save_session(session("p", "s", &["s"], None));
    assert!(b.restore("p", &o).is_none(), "another store's offset");
    a.save_session(session("p", "s", &["s"], None));
    let (_, future) = a.next_offset();
    let tag = future.rsplit_once('-').unwrap().0;
    assert!(
        a.restore("p", &format!("{tag}-999")).is_none(),
        "an offset never handed out"
    );
}

#[test]
fn resume_adds_what_was_broadcast_between_restore_and_join() {
    let s = RecoveryStore::new(RecoveryConfig::default());
    let o = emit(&s, 1, &["r"], &[]);
    s.save_session(session("p", "sid", &["sid", "r"], None));
    emit(&s, 2, &["r"], &[]);
    let r = s.restore("p", &o).expect("restored");
    assert_eq!(numbers(&r), [2]);
    // Broadcast after the restore, before the socket joins its rooms.
    emit(&s, 3, &["r"], &[]);
    emit(&s, 4, &["elsewhere"], &[]);
    let rooms = r.session.rooms.clone();
    let mut joined = false;
    let mut sent = Vec::new();
    s.resume(&rooms, r.missed, r.upto, || joined = true, |f| sent = f);
    assert!(joined);
    let all = Restored {
        session: r.session,
        missed: sent,
        upto: 0,
    };
    assert_eq!(numbers(&all), [2, 3], "once each, in order");
}
