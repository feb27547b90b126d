//! The rule for adapters whose recovery state is durable: a session and the
//! packets it missed survive a restart of the node.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{
    away_broadcasts, cluster_with, connect, eventually, names, next_event, settle, Harness, WAIT,
};
use crate::socketio::{Payload, RecoveryLog, RecoveryLogOptions};

/// Opens one recovery log per directory, waiting for an earlier server's
/// handles to be let go.
async fn open_logs(dirs: &[PathBuf]) -> Vec<RecoveryLog> {
    let dirs = dirs.to_vec();
    tokio::task::spawn_blocking(move || {
        dirs.iter()
            .map(|d| {
                RecoveryLog::open_within(d, RecoveryLogOptions::default(), WAIT)
                    .expect("open the recovery log")
            })
            .collect()
    })
    .await
    .expect("open logs")
}

/// With a durable recovery log per node (in `dir/node-<i>`): a socket that
/// dropped before a graceful shutdown of the cluster and one connected
/// through it are both restored by the restarted cluster, with their ids,
/// rooms and data and exactly the packets they missed (to their rooms, not
/// volatile, not excluded), in order and once.
pub async fn persist_restore_across_restart(h: &Harness, dir: &Path) {
    let p = |v: Value| Payload::one(v);
    let dirs: Vec<PathBuf> = (0..(h.cluster)().len())
        .map(|i| dir.join(format!("node-{i}")))
        .collect();
    let nodes = cluster_with(h, true, &open_logs(&dirs).await).await;
    let mut a = connect(h, &nodes, 0, json!({"data": {"user": "a"}})).await;
    let mut c = connect(h, &nodes, 0, json!({"data": {"user": "c"}})).await;
    let (pid_a, pid_c) = (a.pid.clone().expect("pid"), c.pid.clone().expect("pid"));
    let (sid_a, sid_c) = (a.sid.clone(), c.sid.clone());
    a.socket(&nodes).join("r");
    c.socket(&nodes).join("r");
    let ns = nodes[0].ns.clone();
    ns.to("r").emit("e1", &p(json!(1)));
    let offset_a = next_event(&mut a).await.data[2]
        .as_str()
        .expect("offset")
        .to_string();
    drop(a.client);
    eventually(|| ns.socket(&sid_a).is_none()).await;
    away_broadcasts(&ns, &sid_a);
    let got = settle(&nodes, std::slice::from_mut(&mut c)).await;
    // (A volatile packet may be dropped even for a connected socket.)
    let live: Vec<&str> = names(&got[0]).into_iter().filter(|n| *n != "e5").collect();
    assert_eq!(live, ["e1", "e2", "e3", "e6"]);
    ns.to("r").emit("e7", &p(json!(7)));
    let offset_c = next_event(&mut c).await.data[2]
        .as_str()
        .expect("offset")
        .to_string();

    for node in &nodes {
        node.io.shutdown().expect("graceful shutdown");
        node.serving.abort();
    }
    drop((ns, c, nodes));

    let nodes = cluster_with(h, true, &open_logs(&dirs).await).await;
    let back_a = connect(h, &nodes, 0, json!({"pid": pid_a, "offset": offset_a})).await;
    let back_c = connect(h, &nodes, 0, json!({"pid": pid_c, "offset": offset_c})).await;
    for (back, sid, user) in [(&back_a, &sid_a, "a"), (&back_c, &sid_c, "c")] {
        assert_eq!(&back.sid, sid, "the id survives the restart");
        let s = back.socket(&nodes);
        assert!(s.recovered());
        assert!(s.rooms().iter().any(|r| &**r == "r"), "rooms kept");
        assert_eq!(s.data().get::<Value>(), Some(json!({ "user": user })));
    }
    let mut ps = vec![back_a, back_c];
    let got = settle(&nodes, &mut ps).await;
    // `a` missed the first `sync` mark too (a namespace-wide broadcast).
    assert_eq!(names(&got[0]), ["e2", "e3", "sync", "e7"]);
    assert!(got[1].is_empty(), "nothing missed: {:?}", names(&got[1]));
    nodes[0].ns.to("r").emit("e8", &p(json!(8)));
    let got = settle(&nodes, &mut ps).await;
    assert_eq!((names(&got[0]), names(&got[1])), (vec!["e8"], vec!["e8"]));
    let again = connect(h, &nodes, 0, json!({"pid": pid_a, "offset": offset_a})).await;
    assert_ne!(again.sid, sid_a, "a session is restored once");
    for node in &nodes {
        node.io.shutdown().expect("graceful shutdown");
        node.serving.abort();
    }
}
