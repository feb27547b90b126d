//! The rules, one check each.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{
    away_broadcasts, cluster, connect, eventually, names, next_event, peers, settle, Harness, Peer,
    WAIT,
};
use crate::socketio::adapter::{AckAggregate, FetchedSocket};
use crate::socketio::{AckError, Payload};

fn p(v: Value) -> Payload {
    Payload::one(v)
}

fn ids(found: &[FetchedSocket]) -> HashSet<String> {
    found.iter().map(|s| s.id().to_string()).collect()
}

fn sids<'a>(peers: impl IntoIterator<Item = &'a Peer>) -> HashSet<String> {
    peers.into_iter().map(|p| p.sid.clone()).collect()
}

/// Waits until fetching the sockets of `room` from node 0 gives `want`.
async fn fetch_until(nodes: &[super::Node], room: &str, want: &HashSet<String>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = nodes[0].ns.to(room).fetch_sockets().await.expect("fetch");
        if ids(&found) == *want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {room}: {:?}, want {want:?}",
            ids(&found)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// add_all / del / del_all: join and leave change a socket's rooms and the
/// room's selection; a disconnect removes the socket from all its rooms.
pub async fn membership(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = peers(h, &nodes, 2).await;
    let (a, b) = (ps[0].socket(&nodes), ps[1].socket(&nodes));
    assert!(
        a.rooms().iter().any(|r| **r == *a.id()),
        "a socket is in its own room"
    );
    a.join("r");
    a.join("r");
    assert!(a.rooms().iter().any(|r| &**r == "r"));
    fetch_until(&nodes, "r", &sids(&ps[..1])).await;
    a.leave("r");
    assert!(!a.rooms().iter().any(|r| &**r == "r"));
    fetch_until(&nodes, "r", &HashSet::new()).await;
    b.join("r");
    b.join("s");
    fetch_until(&nodes, "r", &sids(&ps[1..])).await;
    let gone = ps.pop().expect("b");
    let local = &nodes[gone.node].ns;
    drop(gone.client);
    eventually(|| local.socket(&gone.sid).is_none()).await;
    fetch_until(&nodes, "r", &HashSet::new()).await;
    fetch_until(&nodes, "s", &HashSet::new()).await;
    fetch_until(&nodes, &gone.sid, &HashSet::new()).await;
    for r in ["r", "s", gone.sid.as_str()] {
        assert_eq!(local.rooms().len(r), 0, "room {r} left behind");
    }
    assert!(settle(&nodes, &mut ps).await[0].is_empty());
}

/// Broadcasts reach exactly their selection, once: all, one room, a union
/// of rooms (no duplicates), minus an except room, minus the emitting
/// socket; `emit` counts this node's recipients.
pub async fn broadcast_selection(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = peers(h, &nodes, 3).await;
    let s: Vec<_> = ps.iter().map(|p| p.socket(&nodes)).collect();
    s[0].join("r1");
    s[1].join("r1");
    s[1].join("r2");
    s[2].join("r2");
    let ns = &nodes[0].ns;
    let on0 = |idx: &[usize]| idx.iter().filter(|&&i| ps[i].node == 0).count();
    assert_eq!(ns.broadcast().emit("all", &p(json!(1))), on0(&[0, 1, 2]));
    assert_eq!(ns.to("r1").emit("r1", &p(json!(2))), on0(&[0, 1]));
    let union = ns.to_rooms(vec!["r1".into(), "r2".into()]);
    assert_eq!(union.emit("union", &p(json!(3))), on0(&[0, 1, 2]));
    assert_eq!(ns.to("r2").except("r1").emit("ex", &p(json!(4))), on0(&[2]));
    assert_eq!(ns.to("nobody").emit("none", &p(json!(5))), 0);
    s[0].broadcast().emit("not-a", &p(json!(6)));
    s[1].to("r1").emit("r1-not-b", &p(json!(7)));
    let got = settle(&nodes, &mut ps).await;
    assert_eq!(names(&got[0]), ["all", "r1", "union", "r1-not-b"]);
    assert_eq!(names(&got[1]), ["all", "r1", "union", "not-a"]);
    assert_eq!(names(&got[2]), ["all", "union", "ex", "not-a"]);
    assert_eq!(got[0][0].data, [json!("all"), json!(1)]);
}

/// A volatile broadcast reaches a socket that can take it and is not kept
/// for recovery (no offset), while a plain one carries an offset.
pub async fn volatile(h: &Harness) {
    let nodes = cluster(h, true).await;
    let mut ps = peers(h, &nodes, 1).await;
    let ns = &nodes[0].ns;
    ns.to(&ps[0].sid).volatile().emit("v", &p(json!(1)));
    ns.to(&ps[0].sid).emit("e", &p(json!(2)));
    let v = next_event(&mut ps[0]).await;
    assert_eq!(v.data, [json!("v"), json!(1)]);
    let e = next_event(&mut ps[0]).await;
    assert_eq!(e.data.len(), 3, "a recovery offset follows the arguments");
    assert!(e.data[2].is_string());
    assert!(settle(&nodes, &mut ps).await[0].is_empty());
}

/// `flags.local` reaches the sockets of the emitting node only.
pub async fn local_flag(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = peers(h, &nodes, 2 * nodes.len()).await;
    for peer in &ps {
        peer.socket(&nodes).join("r");
    }
    let n = nodes[0].ns.to("r").local().emit("loc", &p(json!(1)));
    assert_eq!(n, ps.iter().filter(|p| p.node == 0).count());
    let got = settle(&nodes, &mut ps).await;
    for (peer, events) in ps.iter().zip(&got) {
        let want: &[&str] = if peer.node == 0 { &["loc"] } else { &[] };
        assert_eq!(names(events), want, "peer on node {}", peer.node);
    }
}

/// Answers the ack request of `peer`'s next event with `answer`.
async fn answer(peer: &mut Peer, event: &str, answer: Value) {
    let e = next_event(peer).await;
    assert_eq!(e.name(), event);
    let id = e.ack.expect("an ack request");
    peer.client.send(format!("43{id}[{answer}]"));
}

/// A broadcast with acks aggregates every answer; at the timeout it gives
/// the answers received and `AckError::Timeout`; with no recipient it is
/// empty at once.
pub async fn acks(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = peers(h, &nodes, 2).await;
    for peer in &ps {
        peer.socket(&nodes).join("r");
    }
    let ns = nodes[0].ns.clone();
    let all = tokio::spawn(async move {
        let op = ns.to("r").timeout(Duration::from_secs(4));
        op.emit_with_ack("ask", &p(json!(1))).await
    });
    answer(&mut ps[0], "ask", json!("a")).await;
    answer(&mut ps[1], "ask", json!("b")).await;
    let agg = tokio::time::timeout(Duration::from_secs(3), all)
        .await
        .expect("all answered before the timeout")
        .expect("task");
    let mut got: Vec<Value> = agg.responses.iter().map(|r| r.args[0].clone()).collect();
    got.sort_by_key(Value::to_string);
    assert_eq!((got, agg.error), (vec![json!("a"), json!("b")], None));

    let ns = nodes[0].ns.clone();
    let partial = tokio::spawn(async move {
        let op = ns.to("r").timeout(Duration::from_millis(400));
        op.emit_with_ack("ask", &p(json!(2))).await
    });
    answer(&mut ps[0], "ask", json!("only")).await;
    let e = next_event(&mut ps[1]).await;
    assert!(e.ack.is_some());
    let agg = partial.await.expect("task");
    assert_eq!(agg.responses, [p(json!("only"))]);
    assert_eq!(agg.error, Some(AckError::Timeout));

    let (nobody, args) = (nodes[0].ns.to("nobody"), p(json!(3)));
    let agg =
        tokio::time::timeout(Duration::from_secs(1), nobody.emit_with_ack("ask", &args)).await;
    assert_eq!(agg.expect("no recipient: at once"), AckAggregate::default());
    assert!(settle(&nodes, &mut ps).await.iter().all(Vec::is_empty));
}

/// fetch_sockets gives the selected sockets with their rooms and JSON data;
/// this node's as the sockets themselves.
pub async fn fetch_sockets(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = Vec::new();
    for i in 0..2 * nodes.len() {
        let auth = json!({"data": {"user": format!("u{i}")}});
        ps.push(connect(h, &nodes, i % nodes.len(), auth).await);
    }
    ps[1].socket(&nodes).join("r");
    let all = nodes[0]
        .ns
        .broadcast()
        .fetch_sockets()
        .await
        .expect("fetch");
    assert_eq!(ids(&all), sids(&ps));
    for (i, peer) in ps.iter().enumerate() {
        let f = all.iter().find(|f| f.id() == peer.sid).expect("fetched");
        assert_eq!(f.data_json(), Some(json!({"user": format!("u{i}")})));
        let rooms: HashSet<String> = f.rooms().iter().map(|r| r.to_string()).collect();
        let mut want = HashSet::from([peer.sid.clone()]);
        if i == 1 {
            want.insert("r".into());
        }
        assert_eq!(rooms, want);
        assert_eq!(f.as_local().is_some(), peer.node == 0);
    }
    let r = nodes[0].ns.to("r").fetch_sockets().await.expect("fetch");
    assert_eq!(ids(&r), sids(&ps[1..2]));
    let not_r = nodes[0].ns.broadcast().except("r");
    assert_eq!(
        ids(&not_r.fetch_sockets().await.expect("fetch")).len(),
        ps.len() - 1
    );
}

/// The selected sockets, on every node, join and leave rooms and are
/// disconnected together; the others are not touched.
pub async fn selection_actions(h: &Harness) {
    let nodes = cluster(h, false).await;
    let mut ps = peers(h, &nodes, 3).await;
    ps[0].socket(&nodes).join("r");
    ps[1].socket(&nodes).join("r");
    let ns = &nodes[0].ns;
    ns.to("r").join("b");
    fetch_until(&nodes, "b", &sids(&ps[..2])).await;
    ns.to("b").except(&ps[0].sid).leave("b");
    fetch_until(&nodes, "b", &sids(&ps[..1])).await;
    ns.to("r").disconnect();
    for peer in &mut ps[..2] {
        assert_eq!(peer.client.next().await.as_deref(), Some("1"));
    }
    fetch_until(&nodes, "r", &HashSet::new()).await;
    let all = ns.broadcast().fetch_sockets().await.expect("fetch");
    assert_eq!(ids(&all), sids(&ps[2..]));
    assert!(settle(&nodes, &mut ps[2..]).await[0].is_empty());
}

/// A server-side emit reaches every other node's handler once (not the
/// emitting node's); with an ack, one answer per other node.
pub async fn server_side_emit(h: &Harness) {
    let nodes = cluster(h, false).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    for (i, node) in nodes.iter().enumerate() {
        let seen = seen.clone();
        node.ns.on_server_event("hello", move |payload, ack| {
            seen.lock().push((i, payload.args.clone()));
            if let Some(ack) = ack {
                ack.send(Payload::one(json!(i)));
            }
        });
    }
    let others = nodes.len() - 1;
    let sent = nodes[0].ns.server_side_emit("hello", &p(json!("hi")));
    assert!(sent <= others);
    eventually(|| seen.lock().len() == others).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = std::mem::take(&mut *seen.lock());
    let from: HashSet<usize> = got.iter().map(|(i, _)| *i).collect();
    assert_eq!(from, (1..nodes.len()).collect());
    assert!(got.iter().all(|(_, args)| args == &[json!("hi")]));
    let ns = &nodes[0].ns;
    let agg = ns
        .server_side_emit_with_ack("hello", &p(json!("ack?")), Duration::from_secs(2))
        .await;
    assert_eq!((agg.responses.len(), agg.error), (others, None));
}

/// A dropped socket's session is restored once, by its pid and last
/// offset, with its id, rooms and data, and the packets it missed (to its
/// rooms, not volatile, not excluded) in order and once.
pub async fn persist_restore(h: &Harness) {
    let nodes = cluster(h, true).await;
    let mut ps = peers(h, &nodes, 1).await;
    let auth = json!({"data": {"user": "a"}});
    let mut a = connect(h, &nodes, 0, auth).await;
    let pid = a.pid.clone().expect("a pid when recovery is on");
    let sa = a.socket(&nodes);
    sa.join("r");
    let ns = &nodes[0].ns;
    ns.to("r").emit("e1", &p(json!(1)));
    let e1 = next_event(&mut a).await;
    let offset = e1.data[2].as_str().expect("offset").to_string();
    drop(sa);
    let sid = a.sid.clone();
    drop(a.client);
    eventually(|| ns.socket(&sid).is_none()).await;
    away_broadcasts(ns, &sid);
    let back = connect(h, &nodes, 0, json!({"pid": pid, "offset": offset})).await;
    assert_eq!(
        (back.sid.as_str(), back.pid.as_deref()),
        (sid.as_str(), Some(pid.as_str()))
    );
    let s = back.socket(&nodes);
    assert!(s.recovered());
    assert!(s.rooms().iter().any(|r| &**r == "r"));
    assert_eq!(s.data().get::<Value>(), Some(json!({"user": "a"})));
    ps.push(back);
    let got = settle(&nodes, &mut ps).await;
    assert_eq!(names(&got[1]), ["e2", "e3"]);
    assert_eq!(names(&got[0]), ["e3"]);
    let again = connect(h, &nodes, 0, json!({"pid": pid, "offset": offset})).await;
    assert_ne!(again.sid, sid, "a session is restored once");
    assert!(!again.socket(&nodes).recovered());
}
