//! A cluster adapter over Redis Pub/Sub, wire-compatible with npm
//! `@socket.io/redis-adapter` 8.x, so that rollcall nodes and Node
//! `socket.io` nodes (and `@socket.io/redis-emitter` processes) form one
//! cluster.
//!
//! Why this shape:
//!
//! - One [`RedisNode`] per server process: one publishing connection (the
//!   `redis` crate's `ConnectionManager`, fed by one task through a bounded
//!   queue, so publishes keep their order and a broadcast never waits for
//!   Redis) and one subscriber connection shared by every namespace. Each
//!   namespace's [`RedisAdapter`] wraps this node's [`LocalAdapter`](super::LocalAdapter): it
//!   publishes what crosses nodes and, on receipt, calls the local adapter's
//!   apply-locally methods (see the [adapter seam](super)).
//! - Encode once per node: a broadcast is published once (one msgpack
//!   envelope); each receiving node hands the decoded packet to
//!   [`LocalAdapter::broadcast`](super::LocalAdapter::broadcast), which encodes and frames it once for all
//!   its recipients. Nothing is added per recipient.
//! - Two wire formats ([`RedisMode`]): the classic adapter (`PUBLISH`,
//!   pattern subscriptions, JSON requests, msgpack broadcasts) and the
//!   sharded one (`SPUBLISH`/`SSUBSCRIBE`, the `ClusterAdapter` envelope,
//!   one channel per public room). `wire` and `sharded` turn both into the
//!   same envelope model (`wire::Envelope`), so the handling is written once.
//! - Faults: Redis down or lost never stops local delivery. The subscriber
//!   reconnects with back-off and resubscribes; the outage is logged and
//!   counted ([`RedisNode::stats`]); requests to other nodes time out after
//!   [`RedisAdapterConfig::request_timeout`] and never hang; a node that
//!   leaves is no longer counted by `PUBSUB NUMSUB`.

mod adapter;
mod handle;
mod handshake;
mod node;
mod sharded;
#[cfg(test)]
mod tests;
mod wire;

use std::time::Duration;

pub use adapter::RedisAdapter;
pub use node::{RedisNode, RedisStats};

/// Which `@socket.io/redis-adapter` protocol the cluster speaks (the two
/// are not interoperable: every node of a cluster must use the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisMode {
    /// `createAdapter`: Pub/Sub, `PSUBSCRIBE` on the broadcast channels.
    #[default]
    Classic,
    /// `createShardedAdapter` (Redis 7): sharded Pub/Sub, `dynamic`
    /// subscription mode (one channel per public room).
    Sharded,
}

impl std::str::FromStr for RedisMode {
    type Err = RedisAdapterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classic" => Ok(RedisMode::Classic),
            "sharded" => Ok(RedisMode::Sharded),
            other => Err(RedisAdapterError::Config(format!(
                "REDIS_MODE must be classic or sharded, not {other:?}"
            ))),
        }
    }
}

/// What [`RedisNode::connect`] does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Startup {
    /// Fails with [`RedisAdapterError::Connect`].
    #[default]
    Fail,
    /// Returns at once and keeps connecting in the background with
    /// back-off; until then the node serves its own sockets only.
    Retry,
}

/// Why the Redis adapter could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisAdapterError {
    /// A setting is invalid (bad URL, unknown mode).
    #[error("redis adapter configuration: {0}")]
    Config(String),
    /// Redis could not be reached (with [`Startup::Fail`]).
    #[error("cannot connect to redis at {url}: {reason}")]
    Connect {
        /// The URL tried (without its password).
        url: String,
        /// What failed.
        reason: String,
    },
}

/// The Redis adapter's settings; build with [`RedisAdapterConfig::builder`].
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The Redis URL (`redis://host:port/db`).
    pub url: String,
    /// The channel prefix (`key` / `channelPrefix` in Node; default `socket.io`).
    pub prefix: String,
    /// How long a request to other nodes waits for their answers (default 5000 ms).
    pub request_timeout: Duration,
    /// The protocol (default classic).
    pub mode: RedisMode,
    /// Fail or retry when Redis is down at start (default fail).
    pub startup: Startup,
    /// The first reconnect delay (default 100 ms), doubled per failure.
    pub backoff_min: Duration,
    /// The longest reconnect delay (default 5 s).
    pub backoff_max: Duration,
    /// Messages waiting to be published at most (default 65,536); beyond,
    /// messages are dropped and counted.
    pub publish_queue: usize,
}

impl RedisAdapterConfig {
    /// Default settings for `url`.
    pub fn builder(url: impl Into<String>) -> RedisAdapterConfigBuilder {
        RedisAdapterConfigBuilder(RedisAdapterConfig {
            url: url.into(),
            prefix: "socket.io".into(),
            request_timeout: Duration::from_millis(5000),
            mode: RedisMode::Classic,
            startup: Startup::Fail,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            publish_queue: 65_536,
        })
    }

    /// The settings from the environment: `None` unless `REDIS_URL` is set
    /// (the single-node mode is the default); then `REDIS_PREFIX`,
    /// `REDIS_REQUEST_TIMEOUT_MS`, `REDIS_MODE` (`classic` | `sharded`) and
    /// `REDIS_STARTUP` (`fail` | `retry`).
    pub fn from_env() -> Result<Option<RedisAdapterConfig>, RedisAdapterError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let Some(url) = var("REDIS_URL") else {
            return Ok(None);
        };
        let mut b = RedisAdapterConfig::builder(url);
        if let Some(p) = var("REDIS_PREFIX") {
            b = b.prefix(p);
        }
        if let Some(t) = var("REDIS_REQUEST_TIMEOUT_MS") {
            let ms = t.parse::<u64>().map_err(|_| {
                RedisAdapterError::Config(format!("REDIS_REQUEST_TIMEOUT_MS: not a number: {t:?}"))
            })?;
            b = b.request_timeout(Duration::from_millis(ms));
        }
        if let Some(m) = var("REDIS_MODE") {
            b = b.mode(m.parse()?);
        }
        match var("REDIS_STARTUP").as_deref() {
            None | Some("fail") => {}
            Some("retry") => b = b.startup(Startup::Retry),
            Some(other) => {
                return Err(RedisAdapterError::Config(format!(
                    "REDIS_STARTUP must be fail or retry, not {other:?}"
                )))
            }
        }
        Ok(Some(b.build()))
    }
}

impl RedisAdapterConfig {
    /// The reconnect delay after one that was `prev` (zero at first):
    /// doubled, within the back-off bounds.
    fn next_backoff(&self, prev: Duration) -> Duration {
        (prev * 2).max(self.backoff_min).min(self.backoff_max)
    }
}

/// Builds a [`RedisAdapterConfig`].
#[derive(Debug, Clone)]
pub struct RedisAdapterConfigBuilder(RedisAdapterConfig);

impl RedisAdapterConfigBuilder {
    /// Sets the channel prefix.
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.0.prefix = p.into();
        self
    }
    /// Sets the request timeout.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.0.request_timeout = d;
        self
    }
    /// Sets the protocol.
    pub fn mode(mut self, m: RedisMode) -> Self {
        self.0.mode = m;
        self
    }
    /// Sets what happens when Redis is down at start.
    pub fn startup(mut self, s: Startup) -> Self {
        self.0.startup = s;
        self
    }
    /// Sets the reconnect back-off bounds.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.0.backoff_min = min;
        self.0.backoff_max = max.max(min);
        self
    }
    /// Sets the publish queue bound.
    pub fn publish_queue(mut self, n: usize) -> Self {
        self.0.publish_queue = n.max(1);
        self
    }
    /// Finishes the settings.
    pub fn build(self) -> RedisAdapterConfig {
        self.0
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}
