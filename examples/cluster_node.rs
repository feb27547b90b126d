//! A cluster node for the Redis adapter interop tests
//! (`tests/node/redis_cluster.test.mjs`): it joins the cluster named by
//! `REDIS_URL` (`REDIS_PREFIX`, `REDIS_MODE`, `REDIS_REQUEST_TIMEOUT_MS`, as
//! `rollcall serve`) and lets a test client drive every cross-node
//! operation through events; `tests/node/redis_cluster_node.mjs` is the
//! same node in Node (`socket.io` with `@socket.io/redis-adapter`).
//!
//! Namespace `/`; a socket's data is its CONNECT payload's `data`. Events
//! (each acked): `join` / `leave` (room); `emit` (sel, event, ...args):
//! broadcast to the selection `sel` = `{rooms, except}`; `emit-ack` (sel,
//! event, ...args): broadcast with acks, ack `{responses, timedOut}` (first
//! argument of each answer); `fetch` (sel): ack `[{id, rooms, data}]`;
//! `sockets-join` / `sockets-leave` (sel, room); `disconnect-sockets` (sel,
//! close); `server-emit` (event, ...args); `server-emit-ack` (event,
//! ...args): ack `{responses, timedOut}`. Server-side event `hello` from
//! another node: its arguments are emitted as `server-hello` to this
//! node's sockets, and answered with `NODE_NAME` (default `rust`). Prints
//! `listening on <addr>` once subscribed (`PORT`, `HOST` as the others).

mod common;

use std::sync::Arc;
use std::time::Duration;

use rollcall::socketio::adapter::redis::RedisNode;
use rollcall::socketio::{
    AckSender, BroadcastOperator, Namespace, NamespaceSetup, Payload, SocketIo, SocketIoConfig,
};
use serde_json::{json, Value};

/// The selection named by `sel` (`{rooms, except}`) on `ns`.
fn select(ns: &Arc<Namespace>, sel: Option<&Value>) -> BroadcastOperator {
    let list = |k: &str| -> Vec<String> {
        sel.and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut op = ns.to_rooms(list("rooms").iter().map(|r| r.as_str().into()).collect());
    for e in list("except") {
        op = op.except(&e);
    }
    op
}

fn ack(ack: Option<AckSender>, v: Value) {
    if let Some(a) = ack {
        let _ = a.send(Payload::one(v));
    }
}

/// `payload` without its first `n` arguments; the first of those as a string.
fn split(mut payload: Payload, n: usize) -> (Vec<Value>, Payload) {
    let head = payload.args.drain(..n.min(payload.args.len())).collect();
    (head, payload)
}

fn event_name(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_string()
}

fn answers(agg: rollcall::socketio::AckAggregate) -> Value {
    let responses: Vec<Value> = agg
        .responses
        .iter()
        .map(|p| p.args.first().cloned().unwrap_or(Value::Null))
        .collect();
    json!({"responses": responses, "timedOut": agg.error.is_some()})
}

fn setup() -> NamespaceSetup {
    NamespaceSetup::new(|socket| {
        if let Some(d) = socket.auth().get("data") {
            socket.data().insert(d.clone());
        }
    })
    .on("join", |s, p, a| {
        if let Some(r) = p.args.first().and_then(Value::as_str) {
            s.join(r);
        }
        ack(a, json!(true));
    })
    .on("leave", |s, p, a| {
        if let Some(r) = p.args.first().and_then(Value::as_str) {
            s.leave(r);
        }
        ack(a, json!(true));
    })
    .on("emit", |s, p, a| {
        let (head, rest) = split(p, 2);
        select(s.ns(), head.first()).emit(&event_name(head.get(1)), &rest);
        ack(a, json!(true));
    })
    .on("emit-ack", |s, p, a| {
        let (head, rest) = split(p, 2);
        let op = select(s.ns(), head.first()).timeout(Duration::from_millis(1500));
        tokio::spawn(async move {
            let agg = op.emit_with_ack(&event_name(head.get(1)), &rest).await;
            ack(a, answers(agg));
        });
    })
    .on("fetch", |s, p, a| {
        let op = select(s.ns(), p.args.first());
        tokio::spawn(async move {
            let v = match op.fetch_sockets().await {
                Ok(found) => {
                    let mut v: Vec<Value> = found
                        .iter()
                        .map(|f| {
                            let mut rooms: Vec<String> =
                                f.rooms().iter().map(|r| r.to_string()).collect();
                            rooms.sort();
                            json!({"id": f.id(), "rooms": rooms, "data": f.data_json()})
                        })
                        .collect();
                    v.sort_by_key(|x| x["id"].to_string());
                    json!(v)
                }
                Err(e) => json!({"error": e.to_string()}),
            };
            ack(a, v);
        });
    })
    .on("sockets-join", |s, p, a| {
        let room = event_name(p.args.get(1));
        select(s.ns(), p.args.first()).join(&room);
        ack(a, json!(true));
    })
    .on("sockets-leave", |s, p, a| {
        let room = event_name(p.args.get(1));
        select(s.ns(), p.args.first()).leave(&room);
        ack(a, json!(true));
    })
    .on("disconnect-sockets", |s, p, a| {
        let op = select(s.ns(), p.args.first());
        // Answer first: the asking socket may be among the disconnected.
        ack(a, json!(true));
        if p.args.get(1).and_then(Value::as_bool) == Some(true) {
            s.ns().adapter().disconnect_sockets(op.options(), true);
        } else {
            op.disconnect();
        }
    })
    .on("server-emit", |s, p, a| {
        let (head, rest) = split(p, 1);
        s.ns().server_side_emit(&event_name(head.first()), &rest);
        ack(a, json!(true));
    })
    .on("server-emit-ack", |s, p, a| {
        let (head, rest) = split(p, 1);
        let ns = s.ns().clone();
        tokio::spawn(async move {
            let agg = ns
                .server_side_emit_with_ack(&event_name(head.first()), &rest, Duration::from_secs(2))
                .await;
            ack(a, answers(agg));
        });
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let redis = RedisNode::from_env().await.map_err(std::io::Error::other)?;
    let config = SocketIoConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .adapter(RedisNode::factory_or_local(redis.as_ref()))
        .build();
    let io = SocketIo::new(config);
    let ns = io.ns_with("/", setup());
    let name = std::env::var("NODE_NAME").unwrap_or_else(|_| "rust".into());
    let local = ns.clone();
    ns.on_server_event("hello", move |payload, answer| {
        local.broadcast().local().emit("server-hello", &payload);
        if let Some(answer) = answer {
            answer.send(Payload::one(json!(name)));
        }
    });
    ns.adapter().ready().await;
    let listener = common::bind_from_env(0).await?;
    io.serve(listener).await;
    Ok(())
}
