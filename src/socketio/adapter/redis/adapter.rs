//! [`RedisAdapter`]: one namespace's [`Adapter`] over the shared
//! [`RedisNode`](super::RedisNode): what it publishes, and the requests it
//! waits on (by request id, until the counted nodes answered or the
//! timeout).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::node::{random_uid, NodeInner, Route, RouteKind, SubKind};
use super::wire::{self, Body, Reply, WirePacket};
use super::{sharded, RedisMode, RedisStats};
use crate::socketio::adapter::{
    AckAggregate, Adapter, AdapterError, AdapterInit, BoxFuture, BroadcastOptions, EventPacket,
    FetchedSocket, LocalAdapter, RemoteSocket, DEFAULT_ACK_TIMEOUT,
};
use crate::socketio::rooms::Room;
use crate::socketio::{AckError, Payload, Socket};

/// The channel names of one namespace.
pub(super) struct Channels {
    /// Classic: `P#<nsp>#`; sharded: the main channel, same name.
    pub main: String,
    /// Classic: `P-request#<nsp>#`.
    pub request: String,
    /// Classic: `P-response#<nsp>#`.
    pub response: String,
    /// What `PUBSUB NUMSUB` counts.
    pub count: String,
}

impl Channels {
    fn new(prefix: &str, nsp: &str) -> Channels {
        Channels {
            main: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
            response: format!("{prefix}-response#{nsp}#"),
            count: String::new(),
        }
    }

    /// Where replies for node `uid` go.
    pub fn reply_to(&self, mode: RedisMode, uid: &str) -> String {
        match mode {
            RedisMode::Classic => format!("{}{uid}#", self.response),
            RedisMode::Sharded => format!("{}{uid}#", self.main),
        }
    }

    /// A room's broadcast channel.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }
}

/// In `dynamic` sharded mode, a room with its own channel: one that does
/// not look like a socket id (Node's ids are 20 characters, as ours are).
fn public_room(room: &str) -> bool {
    room.chars().count() != 20
}

pub(super) struct Inner {
    pub local: LocalAdapter,
    pub node: Arc<NodeInner>,
    pub nsp: String,
    pub ch: Channels,
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>,
    ready: watch::Receiver<bool>,
    /// Sharded: the public rooms whose channel is subscribed.
    room_channels: Mutex<HashSet<Room>>,
}

/// One namespace's adapter over Redis (see the [module docs](super)).
pub struct RedisAdapter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("namespace", &self.inner.nsp)
            .finish_non_exhaustive()
    }
}

impl RedisAdapter {
    /// The adapter of the namespace in `init`, subscribing its channels on
    /// `node`'s subscriber connection.
    pub(super) fn new(node: Arc<NodeInner>, init: &AdapterInit<'_>) -> RedisAdapter {
        let nsp = init.namespace.to_string();
        let mut ch = Channels::new(&node.config.prefix, &nsp);
        let mode = node.config.mode;
        ch.count = match mode {
            RedisMode::Classic => ch.request.clone(),
            RedisMode::Sharded => ch.main.clone(),
        };
        let (tx, ready) = watch::channel(false);
        let inner = Arc::new(Inner {
            local: LocalAdapter::new(init),
            node: node.clone(),
            nsp: nsp.clone(),
            ch,
            pending: Mutex::new(HashMap::new()),
            ready,
            room_channels: Mutex::new(HashSet::new()),
        });
        // A list: a dynamic namespace may be built twice by racing CONNECTs
        // (one is kept); both get messages until the other is dropped.
        node.namespaces
            .write()
            .entry(nsp.clone())
            .or_default()
            .push(Arc::downgrade(&inner));
        let route = |kind, sub| Route {
            nsp: nsp.clone(),
            kind,
            sub,
        };
        let own = inner.ch.reply_to(mode, &node.uid);
        let subs = match mode {
            RedisMode::Classic => vec![
                (
                    format!("{}*", inner.ch.main),
                    route(RouteKind::Broadcast, SubKind::Pattern),
                ),
                (
                    inner.ch.response.clone(),
                    route(RouteKind::Response, SubKind::Channel),
                ),
                (own, route(RouteKind::Response, SubKind::Channel)),
                // Last: NUMSUB counts this node once all else is subscribed.
                (
                    inner.ch.request.clone(),
                    route(RouteKind::Request, SubKind::Channel),
                ),
            ],
            RedisMode::Sharded => vec![
                (own, route(RouteKind::Sharded, SubKind::Shard)),
                (
                    inner.ch.main.clone(),
                    route(RouteKind::Sharded, SubKind::Shard),
                ),
            ],
        };
        let last = subs.len() - 1;
        for (i, (key, r)) in subs.into_iter().enumerate() {
            node.route(key, r, (i == last).then(|| tx.clone()));
        }
        RedisAdapter { inner }
    }

    /// The counters of this node's Redis link.
    pub fn stats(&self) -> RedisStats {
        self.inner.node.stats()
    }
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        let i = &self.inner;
        for r in i.room_channels.lock().drain() {
            i.node.unroute(&i.ch.room(&r));
        }
        {
            let mut map = i.node.namespaces.write();
            let me = Arc::as_ptr(&self.inner);
            let last = match map.get_mut(&i.nsp) {
                Some(list) => {
                    list.retain(|w| w.as_ptr() != me && w.strong_count() > 0);
                    list.is_empty()
                }
                None => true,
            };
            if !last {
                return;
            }
            map.remove(&i.nsp);
        }
        let mode = i.node.config.mode;
        let mut keys = vec![i.ch.reply_to(mode, &i.node.uid), i.ch.main.clone()];
        if mode == RedisMode::Classic {
            keys[1] = format!("{}*", i.ch.main);
            keys.extend([i.ch.response.clone(), i.ch.request.clone()]);
        }
        keys.iter().for_each(|k| i.node.unroute(k));
    }
}

fn wire_packet(p: &EventPacket<'_>) -> WirePacket {
    WirePacket {
        event: p.event.to_string(),
        payload: p.payload.clone(),
    }
}

impl Inner {
    fn mode(&self) -> RedisMode {
        self.node.config.mode
    }

    /// Publishes a request or broadcast on the channel its kind goes to.
    pub(super) fn send(&self, body: &Body) {
        let uid = &self.node.uid;
        let (channel, bytes) = match self.mode() {
            RedisMode::Classic => match body {
                Body::Broadcast {
                    packet,
                    opts,
                    request_id: None,
                } => {
                    let ch = match opts.rooms.as_slice() {
                        [room] => self.ch.room(room),
                        _ => self.ch.main.clone(),
                    };
                    (ch, wire::classic_broadcast(uid, &self.nsp, packet, opts))
                }
                _ => match wire::classic_request(uid, &self.nsp, body) {
                    Some(b) => (self.ch.request.clone(), b),
                    None => return,
                },
            },
            RedisMode::Sharded => {
                let ch = match body {
                    Body::Broadcast {
                        opts,
                        request_id: None,
                        ..
                    } => match opts.rooms.as_slice() {
                        [room] if public_room(room) => self.ch.room(room),
                        _ => self.ch.main.clone(),
                    },
                    _ => self.ch.main.clone(),
                };
                match sharded::encode(uid, &self.nsp, body) {
                    Some(b) => (ch, b),
                    None => return,
                }
            }
        };
        self.node.publish(channel, bytes);
    }

    /// Publishes `reply` to request `request_id` of node `to`.
    pub(super) fn reply(&self, to: Option<&str>, request_id: &str, reply: Reply) {
        let mode = self.mode();
        let channel = match to {
            Some(uid) => self.ch.reply_to(mode, uid),
            None if mode == RedisMode::Classic => self.ch.response.clone(),
            None => self.ch.main.clone(),
        };
        let bytes = match mode {
            RedisMode::Classic => wire::classic_reply(request_id, &reply),
            RedisMode::Sharded => {
                let body = Body::Reply {
                    request_id: request_id.to_string(),
                    reply,
                };
                match sharded::encode(&self.node.uid, &self.nsp, &body) {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        self.node.publish(channel, bytes);
    }

    /// Hands a reply to the request waiting for it, if any still is.
    pub(super) fn on_reply(&self, request_id: &str, reply: Reply) {
        if let Some(tx) = self.pending.lock().get(request_id) {
            let _ = tx.send(reply);
        }
    }

    /// Registers a request id; replies arrive on the receiver until
    /// [`Inner::forget`].
    fn register(&self) -> (String, mpsc::UnboundedReceiver<Reply>) {
        let id = random_uid(self.mode());
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.lock().insert(id.clone(), tx);
        (id, rx)
    }

    fn forget(&self, id: &str) {
        self.pending.lock().remove(id);
    }

    /// Sends the request `body(id)` and collects `expected` replies, or
    /// those received by `timeout` (then `false`).
    async fn request(
        self: &Arc<Self>,
        body: impl FnOnce(String) -> Body,
        expected: usize,
        timeout: Duration,
    ) -> (Vec<Reply>, bool) {
        let (id, mut rx) = self.register();
        self.send(&body(id.clone()));
        let mut got = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut complete = true;
        while got.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => got.push(r),
                _ => {
                    complete = false;
                    break;
                }
            }
        }
        self.forget(&id);
        if !complete {
            self.node
                .counters
                .request_timeouts
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(nsp = %self.nsp, got = got.len(), expected, "redis request timed out");
        }
        (got, complete)
    }

    /// Sharded `dynamic` mode: subscribes the channel of each public room
    /// that now exists here.
    fn rooms_created(&self, rooms: &[Room]) {
        if self.mode() != RedisMode::Sharded {
            return;
        }
        for r in rooms.iter().filter(|r| public_room(r)) {
            if self.room_channels.lock().insert(r.clone()) {
                let route = Route {
                    nsp: self.nsp.clone(),
                    kind: RouteKind::Sharded,
                    sub: SubKind::Shard,
                };
                self.node.route(self.ch.room(r), route, None);
            }
        }
    }

    /// Sharded `dynamic` mode: drops the channels of rooms now empty here.
    fn rooms_maybe_deleted(&self, rooms: &[Room]) {
        if self.mode() != RedisMode::Sharded {
            return;
        }
        for r in rooms {
            if self.local.rooms().len(r) == 0 && self.room_channels.lock().remove(r) {
                self.node.unroute(&self.ch.room(r));
            }
        }
    }
}

/// A remote socket from its `{id, handshake, rooms, data}`.
fn remote_socket(v: Value) -> Option<RemoteSocket> {
    let id = v.get("id")?.as_str()?;
    Some(RemoteSocket {
        id: id.into(),
        handshake: v.get("handshake").cloned().unwrap_or(Value::Null),
        rooms: wire::rooms_field(&v, "rooms"),
        data: v.get("data").cloned().unwrap_or(Value::Null),
    })
}

impl Adapter for RedisAdapter {
    fn local(&self) -> &LocalAdapter {
        &self.inner.local
    }

    fn reachable(&self) -> BoxFuture<Result<(), AdapterError>> {
        // The subscriber connection is PINGed every 5 s; it is down while
        // Redis is unreachable (SPEC.md §3.13 faults).
        let up = self.inner.node.stats().connected;
        Box::pin(std::future::ready(if up {
            Ok(())
        } else {
            Err(AdapterError::Transport("redis unreachable".into()))
        }))
    }

    fn ready(&self) -> BoxFuture<()> {
        let mut rx = self.inner.ready.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|r| *r).await;
        })
    }

    fn add_all(&self, socket: &Arc<Socket>, rooms: &[Room]) {
        self.inner.local.add_all(socket, rooms);
        self.inner.rooms_created(rooms);
    }

    fn del(&self, id: &str, room: &str) {
        self.inner.local.del(id, room);
        self.inner.rooms_maybe_deleted(&[Room::from(room)]);
    }

    fn del_all(&self, id: &str, rooms: &[Room]) {
        self.inner.local.del_all(id, rooms);
        self.inner.rooms_maybe_deleted(rooms);
    }

    fn broadcast(&self, packet: &EventPacket<'_>, opts: &BroadcastOptions) -> usize {
        if !opts.flags.local {
            self.inner.send(&Body::Broadcast {
                packet: wire_packet(packet),
                opts: opts.clone(),
                request_id: None,
            });
        }
        self.inner.local.broadcast(packet, opts)
    }

    fn broadcast_with_ack(
        &self,
        packet: &EventPacket<'_>,
        opts: &BroadcastOptions,
    ) -> BoxFuture<AckAggregate> {
        let timeout = opts.flags.timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
        if opts.flags.local {
            let acks = self.inner.local.send_with_ack(packet, opts);
            return Box::pin(acks.collect(timeout));
        }
        let inner = self.inner.clone();
        let (id, mut rx) = inner.register();
        let mut wire_opts = opts.clone();
        wire_opts.flags.timeout = Some(timeout);
        inner.send(&Body::Broadcast {
            packet: wire_packet(packet),
            opts: wire_opts,
            request_id: Some(id.clone()),
        });
        let local = inner.local.send_with_ack(packet, opts);
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let remote = async {
                let others = tokio::time::timeout_at(deadline, inner.server_count())
                    .await
                    .map_or(0, |n| n - 1);
                let (mut counted, mut clients, mut acks) = (0usize, 0u64, Vec::new());
                while counted < others || (acks.len() as u64) < clients {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(Reply::ClientCount(n))) => {
                            counted += 1;
                            clients += n;
                        }
                        Ok(Some(Reply::Ack(p))) => acks.push(p),
                        Ok(Some(_)) => {}
                        _ => return (acks, false),
                    }
                }
                (acks, true)
            };
            let (mut agg, (acks, complete)) = tokio::join!(local.collect(timeout), remote);
            inner.forget(&id);
            agg.responses.extend(acks);
            if !complete {
                agg.error = Some(AckError::Timeout);
            }
            agg
        })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<FetchedSocket>, AdapterError>> {
        let mut found = self.inner.local.fetch(opts);
        if opts.flags.local {
            return Box::pin(std::future::ready(Ok(found)));
        }
        let inner = self.inner.clone();
        let opts = opts.clone();
        Box::pin(async move {
            let others = inner.server_count().await - 1;
            if others == 0 {
                return Ok(found);
            }
            let body = |request_id| Body::Fetch { request_id, opts };
            let timeout = inner.node.config.request_timeout;
            let (replies, complete) = inner.request(body, others, timeout).await;
            if !complete {
                return Err(AdapterError::Timeout);
            }
            for r in replies {
                if let Reply::Sockets(s) = r {
                    found.extend(
                        s.into_iter()
                            .filter_map(remote_socket)
                            .map(FetchedSocket::Remote),
                    );
                }
            }
            Ok(found)
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if !opts.flags.local {
            let (opts, rooms) = (opts.clone(), rooms.to_vec());
            self.inner.send(&Body::Join { opts, rooms });
        }
        self.inner.local.add_sockets(opts, rooms);
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if !opts.flags.local {
            let (opts, rooms) = (opts.clone(), rooms.to_vec());
            self.inner.send(&Body::Leave { opts, rooms });
        }
        self.inner.local.del_sockets(opts, rooms);
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if !opts.flags.local {
            let opts = opts.clone();
            self.inner.send(&Body::Disconnect { opts, close });
        }
        self.inner.local.disconnect_sockets(opts, close);
    }

    fn server_side_emit(&self, packet: &EventPacket<'_>) -> usize {
        self.inner.send(&Body::ServerSideEmit {
            packet: wire_packet(packet),
            request_id: None,
        });
        self.inner.node.others.load(Ordering::Relaxed)
    }

    fn server_side_emit_with_ack(
        &self,
        packet: &EventPacket<'_>,
        timeout: Duration,
    ) -> BoxFuture<AckAggregate> {
        let inner = self.inner.clone();
        let packet = wire_packet(packet);
        Box::pin(async move {
            let others = inner.server_count().await - 1;
            if others == 0 {
                return AckAggregate::default();
            }
            let body = |request_id| Body::ServerSideEmit {
                packet,
                request_id: Some(request_id),
            };
            let (replies, complete) = inner.request(body, others, timeout).await;
            let responses: Vec<Payload> = replies
                .into_iter()
                .filter_map(|r| match r {
                    Reply::ServerAck(p) => Some(p),
                    _ => None,
                })
                .collect();
            AckAggregate {
                responses,
                error: (!complete).then_some(AckError::Timeout),
            }
        })
    }
}

impl Inner {
    /// The nodes of this namespace (this one included).
    pub(super) async fn server_count(&self) -> usize {
        self.node.server_count(&self.ch.count).await
    }
}
