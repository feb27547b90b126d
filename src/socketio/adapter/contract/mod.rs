//! The adapter contract: the rules every [`Adapter`](super::Adapter) must
//! keep, as async checks that start real servers with a given adapter and
//! drive real client connections. `tests/adapter_contract.rs` runs them for
//! the [`LocalAdapter`](super::LocalAdapter); a cluster adapter runs the same
//! checks with several nodes.
//!
//! A check panics (like a test assertion) when a rule is broken. The
//! [`Harness`] says how to build a fresh cluster (one adapter factory per
//! node; one node for the local adapter) and how to open a client
//! connection; the checks spread their clients over the nodes round-robin
//! and act from node 0, so with one node every rule is the single-node rule.
//! Test hook, not a stable API.

mod checks;
mod durable;

pub use checks::*;
pub use durable::*;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{AdapterFactory, BoxFuture};
use crate::socketio::{Namespace, RecoveryConfig, RecoveryLog, Socket, SocketIo, SocketIoConfig};

/// How long a check waits for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// How the checks build clusters and connect clients.
#[derive(Clone)]
pub struct Harness {
    /// One adapter factory per node of a fresh, empty cluster (called once
    /// per check).
    pub cluster: Arc<dyn Fn() -> Vec<AdapterFactory> + Send + Sync>,
    /// Opens an Engine.IO connection to a server at this address.
    pub connect: Arc<dyn Fn(SocketAddr) -> BoxFuture<Client> + Send + Sync>,
}

/// One Engine.IO client connection as the checks see it: text messages
/// out and in (the harness's transport answers pings itself and may pass
/// the open packet on or not). Dropping it drops the connection without a
/// close handshake.
pub struct Client {
    to_server: mpsc::UnboundedSender<String>,
    from_server: mpsc::UnboundedReceiver<String>,
}

impl Client {
    /// A client over a transport task: it sends what arrives on
    /// `to_server` and forwards every text message it receives (but pings)
    /// to `from_server`; it drops the connection once `to_server` closes.
    pub fn new(
        to_server: mpsc::UnboundedSender<String>,
        from_server: mpsc::UnboundedReceiver<String>,
    ) -> Client {
        Client {
            to_server,
            from_server,
        }
    }

    fn send(&self, text: String) {
        let _ = self.to_server.send(text);
    }

    /// The next Socket.IO packet (Engine.IO message without its `4`);
    /// `None` once the connection is closed.
    async fn next(&mut self) -> Option<String> {
        loop {
            let m = tokio::time::timeout(WAIT, self.from_server.recv())
                .await
                .expect("no message in time")?;
            if let Some(p) = m.strip_prefix('4') {
                return Some(p.to_string());
            }
        }
    }
}

/// A node of the cluster under test.
struct Node {
    /// The server.
    io: SocketIo,
    /// Its accept loop.
    serving: tokio::task::JoinHandle<()>,
    /// Where it listens.
    addr: SocketAddr,
    /// Its main namespace.
    ns: Arc<Namespace>,
    /// The sockets whose connection handler has run.
    ready: Arc<Mutex<HashSet<String>>>,
}

/// Starts a fresh cluster (recovery on when asked); every socket gets the
/// `data` field of its CONNECT payload as its JSON data.
async fn cluster(h: &Harness, recovery: bool) -> Vec<Node> {
    cluster_with(h, recovery, &[]).await
}

/// [`cluster`], node `i` keeping its recovery state in `logs[i]` if given.
async fn cluster_with(h: &Harness, recovery: bool, logs: &[RecoveryLog]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, factory) in (h.cluster)().into_iter().enumerate() {
        let mut b = SocketIoConfig::builder().adapter(factory);
        if recovery {
            b = b.recovery(RecoveryConfig::default());
        }
        if let Some(log) = logs.get(i) {
            b = b.recovery_log(log.clone());
        }
        let io = SocketIo::new(b.build());
        let ready = Arc::new(Mutex::new(HashSet::new()));
        let r = ready.clone();
        let ns = io.ns("/", move |socket| {
            if let Some(d) = socket.auth().get("data") {
                socket.data().insert(d.clone());
            }
            r.lock().insert(socket.id().to_string());
        });
        tokio::time::timeout(WAIT, ns.adapter().ready())
            .await
            .expect("the adapter is ready in time");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = tokio::spawn(io.clone().serve(listener));
        nodes.push(Node {
            io,
            serving,
            addr,
            ns,
            ready,
        });
    }
    assert!(!nodes.is_empty(), "a cluster has at least one node");
    nodes
}

/// A client connected to the main namespace of one node.
struct Peer {
    client: Client,
    /// Its socket id.
    sid: String,
    /// Its recovery id, when recovery is on.
    pid: Option<String>,
    /// The index of its node.
    node: usize,
}

impl Peer {
    /// The server side of this peer.
    fn socket(&self, nodes: &[Node]) -> Arc<Socket> {
        nodes[self.node]
            .ns
            .socket(&self.sid)
            .expect("socket is connected")
    }
}

/// Connects a client to node `node` with CONNECT payload `auth`; returns
/// once its socket is connected and its connection handler has run.
async fn connect(h: &Harness, nodes: &[Node], node: usize, auth: Value) -> Peer {
    let mut client = (h.connect)(nodes[node].addr).await;
    client.send(format!("40{auth}"));
    let answer = client.next().await.expect("CONNECT answer");
    let data: Value = serde_json::from_str(answer.strip_prefix('0').expect("a CONNECT answer"))
        .expect("CONNECT answer JSON");
    let sid = data["sid"].as_str().expect("sid").to_string();
    let pid = data.get("pid").and_then(Value::as_str).map(str::to_string);
    let ready = nodes[node].ready.clone();
    eventually(|| ready.lock().contains(&sid)).await;
    Peer {
        client,
        sid,
        pid,
        node,
    }
}

/// Connects `n` clients spread over the nodes round-robin.
async fn peers(h: &Harness, nodes: &[Node], n: usize) -> Vec<Peer> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(connect(h, nodes, i % nodes.len(), json!({})).await);
    }
    v
}

/// What the recovery checks broadcast while socket `sid` (in room `r`) is
/// away: `e2` to `r` and `e3` to all (it missed these), `e4` to another
/// room, `e5` volatile to `r`, `e6` to `r` except `sid` (not for it).
fn away_broadcasts(ns: &Arc<Namespace>, sid: &str) {
    let p = |n: i32| crate::socketio::Payload::one(json!(n));
    ns.to("r").emit("e2", &p(2));
    ns.broadcast().emit("e3", &p(3));
    ns.to("other").emit("e4", &p(4));
    ns.to("r").volatile().emit("e5", &p(5));
    ns.to("r").except(sid).emit("e6", &p(6));
}

/// Waits until `f` holds (panics after [`WAIT`]).
async fn eventually(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A received event: its ack id and its array (name first).
#[derive(Debug, Clone, PartialEq)]
struct Event {
    ack: Option<u64>,
    data: Vec<Value>,
}

impl Event {
    fn name(&self) -> &str {
        self.data.first().and_then(Value::as_str).unwrap_or("")
    }
}

/// The next packet of `peer`, which must be an EVENT of the main namespace.
async fn next_event(peer: &mut Peer) -> Event {
    let p = peer.client.next().await.expect("connection closed");
    let rest = p
        .strip_prefix('2')
        .unwrap_or_else(|| panic!("not an EVENT: {p}"));
    let split = rest.find('[').unwrap_or_else(|| panic!("bad EVENT: {p}"));
    let ack = (split > 0).then(|| rest[..split].parse().expect("ack id"));
    let data: Vec<Value> = serde_json::from_str(&rest[split..]).expect("EVENT JSON");
    Event { ack, data }
}

/// Emits a `sync` event with a fresh mark from every node to every socket
/// and returns, per peer, the events it received before those marks (so
/// both what reached a peer and that nothing else did are checked). One
/// mark per node: messages from one node keep their order, but two nodes'
/// messages need not arrive in the order they were sent.
async fn settle(nodes: &[Node], peers: &mut [Peer]) -> Vec<Vec<Event>> {
    let marks: Vec<Value> = nodes
        .iter()
        .map(|_| json!(crate::util::random_id(6)))
        .collect();
    for (node, mark) in nodes.iter().zip(&marks) {
        node.ns
            .broadcast()
            .emit("sync", &crate::socketio::Payload::one(mark.clone()));
    }
    let mut out = Vec::new();
    for p in peers.iter_mut() {
        let mut got = Vec::new();
        let mut seen = 0;
        while seen < marks.len() {
            let e = next_event(p).await;
            if e.name() == "sync" && e.data.get(1).is_some_and(|m| marks.contains(m)) {
                seen += 1;
            } else {
                got.push(e);
            }
        }
        out.push(got);
    }
    out
}

/// The event names in `events`.
fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(Event::name).collect()
}
