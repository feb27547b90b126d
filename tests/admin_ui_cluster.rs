//! The admin UI protocol across a cluster (SPEC.md §3.12): two servers in
//! this process whose adapters share an in-memory bus (a minimal cluster
//! adapter built on the `Adapter` trait the way a Redis adapter is: wrap a
//! `LocalAdapter`, forward what crosses nodes), real WebSocket clients.
//!
//! Shows that the admin namespace needs no code of its own to be
//! cluster-wide: an admin client on node A gets node B's `server_stats`,
//! sees node B's sockets in `all_sockets` and its room changes as they
//! happen, and its `join` / `emit` / `_disconnect` actions reach a client
//! connected to node B.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{ws_connect, ws_next_text, ws_send, Ws};
use parking_lot::Mutex;
use rollcall::admin_ui::{self, Access, AdminUiConfig, Mode};
use rollcall::socketio::adapter::{EventPacket, RemoteSocket};
use rollcall::socketio::{
    Adapter, AdapterError, AdapterFactory, BoxFuture, BroadcastOptions, Cors, FetchedSocket,
    LocalAdapter, Room, SocketIo, SocketIoConfig,
};
use serde_json::{json, Value};

/// Every node's adapter of each namespace.
#[derive(Default)]
struct Bus {
    nodes: Mutex<HashMap<String, Vec<Weak<BusAdapter>>>>,
}

/// One node's adapter of one namespace: its local part, and the bus to the
/// same namespace on the other nodes.
struct BusAdapter {
    local: LocalAdapter,
    bus: Arc<Bus>,
}

impl BusAdapter {
    /// The same namespace's adapters on the other nodes.
    fn others(&self) -> Vec<Arc<BusAdapter>> {
        let nodes = self.bus.nodes.lock();
        let peers = nodes.get(self.local.namespace()).into_iter().flatten();
        peers
            .filter_map(Weak::upgrade)
            .filter(|a| !std::ptr::eq(&**a, self))
            .collect()
    }
}

impl Adapter for BusAdapter {
    fn local(&self) -> &LocalAdapter {
        &self.local
    }

    fn broadcast(&self, packet: &EventPacket<'_>, opts: &BroadcastOptions) -> usize {
        if !opts.flags.local {
            for other in self.others() {
                other.local.broadcast(packet, opts);
            }
        }
        self.local.broadcast(packet, opts)
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<FetchedSocket>, AdapterError>> {
        let mut found = self.local.fetch(opts);
        for other in self.others() {
            for s in other.local.select(opts) {
                found.push(FetchedSocket::Remote(RemoteSocket {
                    id: s.id().into(),
                    handshake: json!({"address": "node-b", "headers": {}, "query": {}}),
                    rooms: s.rooms(),
                    data: s.data().get::<Value>().unwrap_or_else(|| json!({})),
                }));
            }
        }
        Box::pin(std::future::ready(Ok(found)))
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.others()
            .iter()
            .for_each(|o| o.local.add_sockets(opts, rooms));
        self.local.add_sockets(opts, rooms)
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.others()
            .iter()
            .for_each(|o| o.local.del_sockets(opts, rooms));
        self.local.del_sockets(opts, rooms)
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.others()
            .iter()
            .for_each(|o| o.local.disconnect_sockets(opts, close));
        self.local.disconnect_sockets(opts, close)
    }
}

fn factory(bus: &Arc<Bus>) -> AdapterFactory {
    let bus = bus.clone();
    AdapterFactory::new(move |init| {
        let a = Arc::new(BusAdapter {
            local: LocalAdapter::new(init),
            bus: bus.clone(),
        });
        let mut nodes = bus.nodes.lock();
        let list = nodes.entry(init.namespace.to_string()).or_default();
        list.push(Arc::downgrade(&a));
        a
    })
}

/// A node: an admin UI (open, development mode, `server_id`), a `/`
/// namespace, on a free loopback port.
async fn node(bus: &Arc<Bus>, server_id: &str) -> (SocketIo, std::net::SocketAddr) {
    let config = AdminUiConfig {
        access: Access::Open,
        mode: Mode::Development,
        server_id: Some(server_id.into()),
        ..AdminUiConfig::default()
    };
    let builder = SocketIoConfig::builder().adapter(factory(bus));
    let io = admin_ui::socket_io(&config, b"cluster key", builder, Cors::any());
    io.ns("/", |_| {});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    (io, addr)
}

/// A WebSocket client connected to namespace `ns`; returns it with its socket id.
async fn connect(addr: std::net::SocketAddr, ns: &str) -> (Ws, String) {
    let mut ws = ws_connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let open = ws_next_text(&mut ws).await.unwrap();
    assert!(open.starts_with("0{"), "{open}");
    let prefix = if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    };
    ws_send(&mut ws, &format!("40{prefix}")).await;
    let answer = ws_next_text(&mut ws).await.unwrap();
    let body = answer
        .strip_prefix(&format!("40{prefix}"))
        .unwrap_or_else(|| panic!("not a CONNECT answer: {answer}"));
    let sid = serde_json::from_str::<Value>(body).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    (ws, sid)
}

/// The next `/admin` event whose name is `name` and for which `pred` holds
/// (other packets are skipped); its arguments.
async fn admin_event(ws: &mut Ws, name: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no {name} in time");
        let text = ws_next_text(ws).await.expect("admin connection closed");
        let Some(json) = text.strip_prefix("42/admin,") else {
            continue;
        };
        let Value::Array(mut ev) = serde_json::from_str::<Value>(json).unwrap() else {
            continue;
        };
        if ev.first().and_then(Value::as_str) == Some(name) {
            let args = ev.split_off(1);
            if pred(&args) {
                return args;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_namespace_is_cluster_wide() {
    let bus = Arc::new(Bus::default());
    let (_a, addr_a) = node(&bus, "node-a").await;
    let (io_b, addr_b) = node(&bus, "node-b").await;

    // A client of node B, then an admin of node A.
    let (mut client, client_id) = connect(addr_b, "/").await;
    let (mut admin, _) = connect(addr_a, "/admin").await;

    let all = admin_event(&mut admin, "all_sockets", |_| true).await;
    let listed = all[0].as_array().unwrap();
    let remote = listed
        .iter()
        .find(|s| s["id"] == client_id.as_str())
        .expect("node B's socket is listed on node A");
    assert_eq!(remote["nsp"], "/");
    assert_eq!(remote["rooms"], json!([client_id]));

    // Node B's stats reach the admin of node A.
    let stats = admin_event(&mut admin, "server_stats", |a| a[0]["serverId"] == "node-b").await;
    let ns_root = stats[0]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "/")
        .cloned()
        .unwrap();
    assert_eq!(ns_root["socketsCount"], 1);
    assert_eq!(stats[0]["clientsCount"], 1);

    // join from node A: the client on node B joins, and node B reports it.
    ws_send(
        &mut admin,
        &format!(r#"42/admin,["join","/","class-room","{client_id}"]"#),
    )
    .await;
    let joined = admin_event(&mut admin, "room_joined", |a| a[1] == "class-room").await;
    assert_eq!(joined[2], client_id.as_str());
    let on_b = io_b.of("/").unwrap().socket(&client_id).unwrap();
    assert!(on_b.rooms().iter().any(|r| &**r == "class-room"));

    // emit from node A to that room reaches the client on node B.
    ws_send(
        &mut admin,
        r#"42/admin,["emit","/","class-room","notice",{"n":1}]"#,
    )
    .await;
    loop {
        let text = ws_next_text(&mut client).await.expect("client closed");
        if text == r#"42["notice",{"n":1}]"# {
            break;
        }
    }

    // _disconnect from node A disconnects it on node B.
    ws_send(
        &mut admin,
        &format!(r#"42/admin,["_disconnect","/",false,"{client_id}"]"#),
    )
    .await;
    loop {
        let text = ws_next_text(&mut client).await.expect("client closed");
        if text == "41" {
            break;
        }
    }
    let gone = admin_event(&mut admin, "socket_disconnected", |a| {
        a[1] == client_id.as_str()
    })
    .await;
    assert_eq!(gone[2], "server namespace disconnect");
}
