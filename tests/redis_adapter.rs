//! The Redis adapter on a real `redis-server` (started by each test on a
//! free loopback port, killed by pid at the end): the adapter contract with
//! two nodes, classic and sharded, and the fault rules (Redis down at
//! start, lost while running, a node that never answers, a node that
//! leaves).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::contract_ws::ws_client;
use common::redis_server::RedisServer;
use common::{ws_connect, ws_data, ws_send, Ws};
use rollcall::socketio::adapter::contract::{self, Harness};
use rollcall::socketio::adapter::redis::{
    RedisAdapterConfig, RedisAdapterError, RedisMode, RedisNode, Startup,
};
use rollcall::socketio::{AdapterError, Namespace, Payload, SocketIo, SocketIoConfig};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn config(url: &str, prefix: &str, mode: RedisMode) -> RedisAdapterConfig {
    RedisAdapterConfig::builder(url)
        .prefix(prefix)
        .mode(mode)
        .request_timeout(Duration::from_millis(1500))
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .build()
}

/// Two nodes per cluster, each cluster on its own channel prefix.
fn harness(url: String, mode: RedisMode) -> Harness {
    Harness {
        cluster: Arc::new(move || {
            let prefix = format!("t{}", rollcall::util::random_id(6));
            (0..2)
                .map(|_| {
                    RedisNode::start(config(&url, &prefix, mode))
                        .expect("node")
                        .factory()
                })
                .collect()
        }),
        connect: Arc::new(|addr| Box::pin(ws_client(addr))),
    }
}

macro_rules! contract_tests {
    ($mode:expr => $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some(redis) = RedisServer::start() else { return };
            contract::$check(&harness(redis.url(), $mode)).await;
        }
    )*};
}

mod classic {
    use super::*;
    contract_tests!(RedisMode::Classic =>
        membership, broadcast_selection, volatile, local_flag, acks,
        fetch_sockets, selection_actions, server_side_emit, persist_restore);
}

mod sharded {
    use super::*;
    contract_tests!(RedisMode::Sharded =>
        membership, broadcast_selection, volatile, local_flag, acks,
        fetch_sockets, selection_actions, server_side_emit, persist_restore);
}

/// A node with namespace `/` serving on a free port.
struct Node {
    io: SocketIo,
    ns: Arc<Namespace>,
    addr: std::net::SocketAddr,
    serving: tokio::task::JoinHandle<()>,
    redis: RedisNode,
}

async fn node(cfg: RedisAdapterConfig) -> Node {
    let redis = RedisNode::connect(cfg).await.expect("connect");
    let io = SocketIo::new(SocketIoConfig::builder().adapter(redis.factory()).build());
    let ns = io.ns("/", |_| {});
    tokio::time::timeout(Duration::from_secs(5), ns.adapter().ready())
        .await
        .expect("subscribed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(io.clone().serve(listener));
    Node {
        io,
        ns,
        addr,
        serving,
        redis,
    }
}

/// Two nodes of one cluster on `redis`, prefix `prefix`.
async fn two_nodes(redis: &RedisServer, prefix: &str) -> (Node, Node) {
    let a = node(config(&redis.url(), prefix, RedisMode::Classic)).await;
    let b = node(config(&redis.url(), prefix, RedisMode::Classic)).await;
    (a, b)
}

/// Waits until `node` has noticed that Redis is gone.
async fn noticed_loss(node: &Node, limit: Duration) {
    tokio::time::timeout(limit, async {
        while node.redis.stats().connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the loss is noticed");
}

/// A client connected to `/` of `node`.
async fn client(node: &Node) -> Ws {
    let mut ws = ws_connect(node.addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("ws");
    let _open = ws_data(&mut ws).await;
    ws_send(&mut ws, "40").await;
    let connected = ws_data(&mut ws).await;
    assert!(matches!(&connected, Message::Text(t) if t.as_str().starts_with("40")));
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    match ws_data(ws).await {
        Message::Text(t) => t.as_str().to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Broadcasts `ev` from `from` until `ws` receives it (the other node may
/// still be reconnecting); panics after `limit`.
async fn until_received(from: &Arc<Namespace>, ws: &mut Ws, ev: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let want = format!("42[\"{ev}\"");
    loop {
        from.broadcast().emit(ev, &Payload::one(json!(1)));
        let got = tokio::time::timeout(Duration::from_millis(300), next_text(ws)).await;
        if got.is_ok_and(|t| t.starts_with(&want)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ev} never crossed");
    }
}

#[tokio::test]
async fn redis_down_at_start_fails_clearly_or_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let err = RedisNode::connect(config(&url, "x", RedisMode::Classic))
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, RedisAdapterError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
    let retry = RedisAdapterConfig {
        startup: Startup::Retry,
        ..config(&url, "x", RedisMode::Classic)
    };
    let n = RedisNode::connect(retry).await.expect("retry mode starts");
    assert!(!n.stats().connected);
    assert!(
        RedisNode::connect(config("http://nope", "x", RedisMode::Classic))
            .await
            .is_err_and(|e| matches!(e, RedisAdapterError::Config(_)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_while_running() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis, "lost").await;
    let mut on_a = client(&a).await;
    let mut on_b = client(&b).await;
    until_received(&a.ns, &mut on_b, "before", Duration::from_secs(5)).await;
    assert_eq!(next_text(&mut on_a).await.get(..10), Some("42[\"before"));

    redis.stop();
    // Local delivery goes on; requests to other nodes do not hang.
    a.ns.broadcast().emit("local", &Payload::one(json!(2)));
    loop {
        if next_text(&mut on_a).await.starts_with("42[\"local\"") {
            break;
        }
    }
    let fetched = tokio::time::timeout(Duration::from_secs(5), a.ns.broadcast().fetch_sockets())
        .await
        .expect("fetch_sockets never hangs");
    assert_eq!(fetched.map(|f| f.len()), Ok(1), "this node's socket only");
    noticed_loss(&b, Duration::from_secs(5)).await;

    redis.restart();
    until_received(&a.ns, &mut on_b, "after", Duration::from_secs(10)).await;
    let s = b.redis.stats();
    assert!(
        s.disconnects >= 1 && s.reconnects >= 1 && s.connected,
        "{s:?}"
    );
    assert!(a.redis.stats().publish_dropped >= 1, "the gap is counted");
    for n in [a, b] {
        n.serving.abort();
        drop(n.io);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_times_out_then_is_counted_out() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = node(config(&redis.url(), "slow", RedisMode::Classic)).await;
    // A "node" that subscribes to the request channel and never answers.
    let rc = redis::Client::open(redis.url()).unwrap();
    let mut silent = rc.get_async_pubsub().await.unwrap();
    silent.subscribe("slow-request#/#").await.unwrap();
    let t = std::time::Instant::now();
    let r = a.ns.broadcast().fetch_sockets().await;
    assert_eq!(r.err(), Some(AdapterError::Timeout));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(a.redis.stats().request_timeouts >= 1);
    let agg =
        a.ns.server_side_emit_with_ack("x", &Payload::default(), Duration::from_millis(300))
            .await;
    assert_eq!(agg.error, Some(rollcall::socketio::AckError::Timeout));

    // It leaves: counted out, the next request is answered at once.
    drop(silent);
    let b = node(config(&redis.url(), "slow", RedisMode::Classic)).await;
    let _on_b = client(&b).await;
    let t = std::time::Instant::now();
    let found = a.ns.broadcast().fetch_sockets().await.expect("fetch");
    assert_eq!(found.len(), 1);
    assert!(t.elapsed() < Duration::from_millis(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dropped_and_counted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis, "mal").await;
    let mut on_b = client(&b).await;
    let rc = redis::Client::open(redis.url()).unwrap();
    let mut conn = rc.get_multiplexed_async_connection().await.unwrap();
    let garbage: [(&str, &[u8]); 5] = [
        ("mal#/#", b"\xc1"),
        ("mal#/#", b"\x93\xa1u\x80"),
        ("mal-request#/#", b"{\"type\":99,\"uid\":\"z\"}"),
        ("mal-request#/#", b"{not json"),
        ("mal-response#/#", b"[]"),
    ];
    for (ch, bytes) in garbage {
        let _: () = redis::cmd("PUBLISH")
            .arg(ch)
            .arg(bytes)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    until_received(&a.ns, &mut on_b, "still-fine", Duration::from_secs(5)).await;
    assert_eq!(b.redis.stats().malformed, 5, "{:?}", b.redis.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_is_noticed_and_left_behind() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis, "hung").await;
    let mut on_a = client(&a).await;
    let mut on_b = client(&b).await;
    until_received(&a.ns, &mut on_b, "before", Duration::from_secs(5)).await;
    redis.freeze(true);
    // Connections stay open but nothing answers: the subscriber's PING
    // times out (5 s check + 1.5 s timeout) and the loss is counted.
    noticed_loss(&b, Duration::from_secs(12)).await;
    a.ns.broadcast().emit("local", &Payload::one(json!(1)));
    loop {
        if next_text(&mut on_a).await.starts_with("42[\"local\"") {
            break;
        }
    }
    redis.freeze(false);
    until_received(&a.ns, &mut on_b, "after", Duration::from_secs(15)).await;
    assert!(b.redis.stats().reconnects >= 1, "{:?}", b.redis.stats());
}
