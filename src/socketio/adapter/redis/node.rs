//! One process's link to Redis, shared by all its namespaces: the publish
//! queue and its task, the subscriber connection and its task (reconnect
//! with back-off, resubscribe, the outage logged and counted), the routing
//! of received messages to namespaces, and the node count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use tokio::sync::{mpsc, watch};

use super::adapter::Inner;
use super::{redacted, RedisAdapterConfig, RedisAdapterError, RedisMode, Startup};
use crate::socketio::adapter::AdapterFactory;

/// What a channel carries, for the namespace that subscribed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteKind {
    /// Classic broadcasts (pattern `P#<nsp>#*`).
    Broadcast,
    /// Classic requests.
    Request,
    /// Classic replies (shared and own channels).
    Response,
    /// Sharded: any envelope (main, own and room channels).
    Sharded,
}

/// How a channel is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SubKind {
    Pattern,
    Channel,
    Shard,
}

#[derive(Debug, Clone)]
pub(super) struct Route {
    pub nsp: String,
    pub kind: RouteKind,
    pub sub: SubKind,
}

pub(super) enum SubCmd {
    Add {
        key: String,
        sub: SubKind,
        done: Option<watch::Sender<bool>>,
    },
    Remove {
        key: String,
        sub: SubKind,
    },
}

struct Outgoing {
    channel: String,
    payload: Bytes,
}

/// Counters of the Redis link, read with [`RedisNode::stats`] (or
/// [`RedisAdapter::stats`](super::RedisAdapter::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Whether the subscriber connection is up.
    pub connected: bool,
    /// Messages published.
    pub published: u64,
    /// Messages not published: queue full or Redis unreachable.
    pub publish_dropped: u64,
    /// Messages received on the subscriber connection (this node's own
    /// echoes included).
    pub received: u64,
    /// Received messages dropped as undecodable.
    pub malformed: u64,
    /// Times the subscriber connection was lost.
    pub disconnects: u64,
    /// Times it came back after a loss.
    pub reconnects: u64,
    /// Milliseconds without a subscriber connection, over all outages.
    pub outage_ms: u64,
    /// Requests to other nodes that timed out.
    pub request_timeouts: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    connected: AtomicBool,
    published: AtomicU64,
    publish_dropped: AtomicU64,
    received: AtomicU64,
    pub malformed: AtomicU64,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
    outage_ms: AtomicU64,
    pub request_timeouts: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub(super) struct NodeInner {
    pub config: RedisAdapterConfig,
    pub uid: String,
    client: redis::Client,
    queue: mpsc::Sender<Outgoing>,
    /// The publishing connection, once connected (also asks NUMSUB).
    conn: RwLock<Option<ConnectionManager>>,
    subs: mpsc::UnboundedSender<SubCmd>,
    routes: RwLock<HashMap<String, Route>>,
    pub namespaces: RwLock<HashMap<String, Vec<Weak<Inner>>>>,
    pub counters: Counters,
    /// Other nodes last counted (for `server_side_emit`'s return value).
    pub others: AtomicUsize,
}

/// This process's link to a Redis cluster of Socket.IO nodes; build one
/// with [`RedisNode::connect`] and give [`RedisNode::factory`] to
/// [`SocketIoConfigBuilder::adapter`](crate::socketio::SocketIoConfigBuilder::adapter).
#[derive(Clone)]
pub struct RedisNode {
    pub(super) inner: Arc<NodeInner>,
}

impl std::fmt::Debug for RedisNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNode")
            .field("uid", &self.inner.uid)
            .field("url", &redacted(&self.inner.config.url))
            .finish_non_exhaustive()
    }
}

/// A random node uid / request id: 6 alphanumerics (classic, like
/// `uid2(6)`) or 16 hex digits (sharded, like the `ClusterAdapter`).
pub(super) fn random_uid(mode: RedisMode) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    match mode {
        RedisMode::Classic => {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..6)
                .map(|_| A[rng.random_range(0..A.len())] as char)
                .collect()
        }
        RedisMode::Sharded => (0..8)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect(),
    }
}

impl RedisNode {
    /// Connects to Redis (with [`Startup::Fail`], fails when it cannot be
    /// reached; with [`Startup::Retry`], keeps trying in the background)
    /// and starts the publisher and subscriber tasks. Needs a Tokio runtime.
    pub async fn connect(config: RedisAdapterConfig) -> Result<RedisNode, RedisAdapterError> {
        let url = redacted(&config.url);
        let client = client(&config)?;
        let unreachable = |e: redis::RedisError| RedisAdapterError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        };
        let first = match manager(&client, &config).await {
            Ok(c) => Some(c),
            Err(e) if config.startup == Startup::Fail => return Err(unreachable(e)),
            Err(e) => {
                tracing::warn!(%url, error = %e, "redis unreachable at start; retrying in the background");
                None
            }
        };
        if first.is_some() && config.startup == Startup::Fail {
            // The subscriber must be reachable too.
            let cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.request_timeout))
                .set_response_timeout(Some(config.request_timeout));
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(unreachable)?;
        }
        Ok(RedisNode::start_with(config, client, first))
    }

    /// The node configured by the environment ([`RedisAdapterConfig::from_env`]),
    /// connected; `None` when `REDIS_URL` is not set (single-node mode).
    pub async fn from_env() -> Result<Option<RedisNode>, RedisAdapterError> {
        match RedisAdapterConfig::from_env()? {
            Some(config) => RedisNode::connect(config).await.map(Some),
            None => Ok(None),
        }
    }

    /// The adapter factory for a server: this node's when there is one,
    /// else the [`LocalAdapter`](crate::socketio::LocalAdapter)'s.
    pub fn factory_or_local(node: Option<&RedisNode>) -> AdapterFactory {
        node.map_or_else(AdapterFactory::local, RedisNode::factory)
    }

    /// Starts a node that connects in the background (as
    /// [`Startup::Retry`] does), without waiting: for code that cannot
    /// await. Needs a Tokio runtime.
    pub fn start(config: RedisAdapterConfig) -> Result<RedisNode, RedisAdapterError> {
        let client = client(&config)?;
        Ok(RedisNode::start_with(config, client, None))
    }

    fn start_with(
        config: RedisAdapterConfig,
        client: redis::Client,
        first: Option<ConnectionManager>,
    ) -> RedisNode {
        let (queue, rx) = mpsc::channel(config.publish_queue);
        let (subs, sub_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(NodeInner {
            uid: random_uid(config.mode),
            config,
            client,
            queue,
            conn: RwLock::new(first.clone()),
            subs,
            routes: RwLock::new(HashMap::new()),
            namespaces: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            others: AtomicUsize::new(0),
        });
        if first.is_none() {
            tokio::spawn(connector(Arc::downgrade(&inner)));
        }
        tokio::spawn(publisher(Arc::downgrade(&inner), rx));
        tokio::spawn(subscriber(Arc::downgrade(&inner), sub_rx));
        tracing::info!(url = %redacted(&inner.config.url), uid = %inner.uid,
            mode = ?inner.config.mode, "redis adapter started");
        RedisNode { inner }
    }

    /// The factory building a [`RedisAdapter`](super::RedisAdapter) for each
    /// namespace of a server.
    pub fn factory(&self) -> AdapterFactory {
        let node = self.inner.clone();
        AdapterFactory::new(move |init| Arc::new(super::RedisAdapter::new(node.clone(), init)))
    }

    /// This node's uid on the wire.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The link's counters.
    pub fn stats(&self) -> RedisStats {
        self.inner.stats()
    }
}

/// A RESP3 client: the subscriber receives messages as pushes on a
/// multiplexed connection, SSUBSCRIBE included.
fn client(config: &RedisAdapterConfig) -> Result<redis::Client, RedisAdapterError> {
    let bad = |e: redis::RedisError| {
        RedisAdapterError::Config(format!("REDIS_URL {}: {e}", redacted(&config.url)))
    };
    let info = config.url.as_str().into_connection_info().map_err(bad)?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings)).map_err(bad)
}

async fn manager(
    client: &redis::Client,
    config: &RedisAdapterConfig,
) -> redis::RedisResult<ConnectionManager> {
    let t = config.request_timeout;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(t))
        .set_response_timeout(Some(t))
        .set_number_of_retries(1)
        .set_min_delay(config.backoff_min)
        .set_max_delay(config.backoff_max);
    client.get_connection_manager_with_config(cfg).await
}

async fn subscriber_conn(
    node: &NodeInner,
) -> redis::RedisResult<(MultiplexedConnection, mpsc::UnboundedReceiver<PushInfo>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(node.config.request_timeout))
        .set_response_timeout(Some(node.config.request_timeout))
        .set_push_sender(tx);
    let conn = node
        .client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    Ok((conn, rx))
}

impl NodeInner {
    pub(super) fn stats(&self) -> RedisStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisStats {
            connected: c.connected.load(Ordering::Relaxed),
            published: g(&c.published),
            publish_dropped: g(&c.publish_dropped),
            received: g(&c.received),
            malformed: g(&c.malformed),
            disconnects: g(&c.disconnects),
            reconnects: g(&c.reconnects),
            outage_ms: g(&c.outage_ms),
            request_timeouts: g(&c.request_timeouts),
        }
    }

    /// Queues a publish (never waits: a full queue drops and counts).
    pub(super) fn publish(&self, channel: String, payload: Bytes) {
        if self.queue.try_send(Outgoing { channel, payload }).is_err() {
            add(&self.counters.publish_dropped, 1);
        }
    }

    /// Subscribes `key` for namespace `nsp`; `done` is set once subscribed.
    pub(super) fn route(&self, key: String, route: Route, done: Option<watch::Sender<bool>>) {
        let sub = route.sub;
        self.routes.write().insert(key.clone(), route);
        let _ = self.subs.send(SubCmd::Add { key, sub, done });
    }

    /// Drops the subscription of `key`.
    pub(super) fn unroute(&self, key: &str) {
        if let Some(r) = self.routes.write().remove(key) {
            let _ = self.subs.send(SubCmd::Remove {
                key: key.to_string(),
                sub: r.sub,
            });
        }
    }

    /// How many nodes are subscribed to `channel` (this one included), by
    /// `PUBSUB NUMSUB` / `SHARDNUMSUB`; 1 (this node alone) when Redis
    /// cannot tell.
    pub(super) async fn server_count(&self, channel: &str) -> usize {
        let Some(mut conn) = self.conn.read().clone() else {
            return 1;
        };
        let sub = match self.config.mode {
            RedisMode::Classic => "NUMSUB",
            RedisMode::Sharded => "SHARDNUMSUB",
        };
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg(sub).arg(channel);
        let q = cmd.query_async::<Vec<(String, usize)>>(&mut conn);
        let n = match tokio::time::timeout(self.config.request_timeout, q).await {
            Ok(Ok(v)) => v.iter().map(|(_, n)| n).sum::<usize>().max(1),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "PUBSUB {sub} failed");
                1
            }
            Err(_) => 1,
        };
        self.others.store(n - 1, Ordering::Relaxed);
        n
    }

    fn dispatch(&self, push: PushInfo) {
        let Some(msg) = redis::Msg::from_push_info(push) else {
            return;
        };
        add(&self.counters.received, 1);
        let channel = msg.get_channel_name();
        let key = if msg.from_pattern() {
            msg.get_pattern::<String>().unwrap_or_default()
        } else {
            channel.to_string()
        };
        let Some(route) = self.routes.read().get(&key).cloned() else {
            return;
        };
        let targets: Vec<Arc<Inner>> = match self.namespaces.read().get(&route.nsp) {
            Some(list) => list.iter().filter_map(Weak::upgrade).collect(),
            None => return,
        };
        if targets.is_empty() {
            return;
        }
        let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
        for ns in targets {
            ns.on_message(&route.kind, payload.clone());
        }
    }
}

/// Connects the publishing connection in the background (when it could
/// not be at start), with back-off.
async fn connector(node: Weak<NodeInner>) {
    let mut backoff = Duration::ZERO;
    loop {
        let Some(n) = node.upgrade() else { return };
        match manager(&n.client, &n.config).await {
            Ok(c) => {
                tracing::info!("redis publisher connected");
                *n.conn.write() = Some(c);
                return;
            }
            Err(e) => {
                backoff = n.config.next_backoff(backoff);
                tracing::warn!(error = %e, retry_in = ?backoff, "redis publisher cannot connect");
            }
        }
        drop(n);
        tokio::time::sleep(backoff).await;
    }
}

/// Publishes what is queued, in order, in pipelined batches; while there
/// is no connection (or a publish fails) the messages are dropped and
/// counted rather than kept: a late broadcast is worse than a missed one.
async fn publisher(node: Weak<NodeInner>, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let Some(node) = node.upgrade() else { return };
        batch.push(first);
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let conn = node.conn.read().clone();
        let Some(mut c) = conn else {
            add(&node.counters.publish_dropped, n);
            batch.clear();
            continue;
        };
        let cmd = match node.config.mode {
            RedisMode::Classic => "PUBLISH",
            RedisMode::Sharded => "SPUBLISH",
        };
        let mut pipe = redis::pipe();
        for m in batch.drain(..) {
            pipe.cmd(cmd).arg(m.channel).arg(&m.payload[..]).ignore();
        }
        match pipe.query_async::<()>(&mut c).await {
            Ok(()) => add(&node.counters.published, n),
            Err(e) => {
                add(&node.counters.publish_dropped, n);
                tracing::warn!(error = %e, dropped = n, "redis publish failed");
            }
        }
    }
}

async fn apply(
    conn: &mut MultiplexedConnection,
    key: &str,
    sub: SubKind,
    on: bool,
) -> redis::RedisResult<()> {
    match (sub, on) {
        (SubKind::Pattern, true) => conn.psubscribe(key).await,
        (SubKind::Pattern, false) => conn.punsubscribe(key).await,
        (SubKind::Channel, true) => conn.subscribe(key).await,
        (SubKind::Channel, false) => conn.unsubscribe(key).await,
        (SubKind::Shard, on) => {
            let c = if on { "SSUBSCRIBE" } else { "SUNSUBSCRIBE" };
            redis::cmd(c)
                .arg(key)
                .query_async::<redis::Value>(conn)
                .await
                .map(drop)
        }
    }
}

/// How often the subscriber connection is checked with a PING (a silent
/// connection is taken as lost when the PING is not answered within the
/// request timeout).
const HEALTH_CHECK: Duration = Duration::from_secs(5);

async fn subscriber(node: Weak<NodeInner>, mut cmds: mpsc::UnboundedReceiver<SubCmd>) {
    let mut backoff = Duration::ZERO;
    let mut down_since: Option<Instant> = None;
    loop {
        let Some(n) = node.upgrade() else { return };
        let (mut conn, mut pushes) = match subscriber_conn(&n).await {
            Ok(c) => c,
            Err(e) => {
                backoff = n.config.next_backoff(backoff);
                tracing::warn!(error = %e, retry_in = ?backoff, "redis subscriber cannot connect");
                drop(n);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let wanted: Vec<(String, SubKind)> = n
            .routes
            .read()
            .iter()
            .map(|(k, r)| (k.clone(), r.sub))
            .collect();
        let mut ok = true;
        for (k, sub) in &wanted {
            if let Err(e) = apply(&mut conn, k, *sub, true).await {
                tracing::warn!(error = %e, channel = %k, "redis resubscribe failed");
                ok = false;
                break;
            }
        }
        if !ok {
            drop(n);
            tokio::time::sleep(backoff.max(Duration::from_millis(50))).await;
            continue;
        }
        backoff = Duration::ZERO;
        n.counters.connected.store(true, Ordering::Relaxed);
        if let Some(t) = down_since.take() {
            let gap = t.elapsed();
            add(&n.counters.reconnects, 1);
            add(&n.counters.outage_ms, gap.as_millis() as u64);
            tracing::warn!(
                gap_ms = gap.as_millis() as u64,
                "redis subscriber reconnected: messages published during the gap were missed"
            );
        }
        let timeout = n.config.request_timeout;
        drop(n);
        let mut health = tokio::time::interval(HEALTH_CHECK);
        health.tick().await;
        loop {
            tokio::select! {
                _ = health.tick() => {
                    // A connection that went silent (no RST) is noticed here.
                    let cmd = redis::cmd("PING");
                    let ping = cmd.query_async::<redis::Value>(&mut conn);
                    if !matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_))) {
                        tracing::warn!("redis subscriber connection does not answer PING");
                        break;
                    }
                }
                push = pushes.recv() => match push {
                    Some(p) if p.kind == PushKind::Disconnection => break,
                    Some(p) => match node.upgrade() {
                        Some(n) => n.dispatch(p),
                        None => return,
                    },
                    None => break,
                },
                cmd = cmds.recv() => match cmd {
                    Some(SubCmd::Add { key, sub, done }) => {
                        if let Err(e) = apply(&mut conn, &key, sub, true).await {
                            tracing::warn!(error = %e, channel = %key, "redis subscribe failed");
                            break;
                        }
                        if let Some(d) = done {
                            let _ = d.send(true);
                        }
                    }
                    Some(SubCmd::Remove { key, sub }) => {
                        if apply(&mut conn, &key, sub, false).await.is_err() {
                            break;
                        }
                    }
                    None => return,
                },
            }
        }
        let Some(n) = node.upgrade() else { return };
        n.counters.connected.store(false, Ordering::Relaxed);
        add(&n.counters.disconnects, 1);
        down_since = Some(Instant::now());
        tracing::warn!("redis subscriber connection lost; local delivery goes on, reconnecting");
    }
}
