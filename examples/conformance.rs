//! The contract server that conformance suites, interop tests and benchmarks
//! point at (Socket.IO at `/socket.io/`).
//!
//! Environment: `PORT` (default 3000; 0 picks a free port), `HOST` (default
//! 127.0.0.1), `PING_INTERVAL` / `PING_TIMEOUT` in ms (default 300 / 200),
//! `RECOVERY_MS` (enables connection state recovery with that maximum
//! disconnection duration), `RECOVERY_DIR` (with `RECOVERY_MS`: keeps the
//! recovery state in a durable log in that directory, so that a restarted
//! server recovers its clients; `RECOVERY_FLUSH_MS` sets its flush interval,
//! default 50), `RECOVERY_MAX_PACKETS` / `RECOVERY_MAX_BYTES` (the log's
//! size bounds). On SIGTERM or SIGINT it shuts down gracefully (every
//! connected socket's session kept, the log flushed) and exits. `PARSER` (`msgpack` for clients with npm
//! `socket.io-msgpack-parser`; default `json`, anything else is refused at
//! startup). `DEFLATE=1` (permessage-deflate for WebSocket
//! clients that offer it, packets of at least `DEFLATE_THRESHOLD` bytes
//! compressed, default 1024). `ADMIN_UI` (`off` by default, `open`, or
//! `USER:BCRYPT_HASH`), `ADMIN_UI_MODE`, `ADMIN_UI_NAMESPACE`,
//! `ADMIN_UI_ORIGIN`, `ADMIN_UI_SESSION_KEY`: the admin UI namespace (SPEC.md
//! §3.12). `REDIS_URL` (and `REDIS_PREFIX`, `REDIS_MODE`,
//! `REDIS_REQUEST_TIMEOUT_MS`, `REDIS_STARTUP`: SPEC.md §3.13) makes it a
//! node of a Redis cluster. maxPayload 1,000,000, connect timeout 1000 ms,
//! CORS for any origin with credentials (`CORS_ORIGINS`: a comma-separated
//! list instead). Prints `listening on <addr>` when ready.
//!
//! Abuse limits (SPEC.md §1.1, §2.16, §3.14): off by default here, since
//! benchmarks open thousands of connections from one address; each is
//! turned on by its variable, named as `rollcall serve`'s: `CONN_RATE` /
//! `CONN_BURST`, `MAX_CONNECTIONS`, `HEADER_TIMEOUT_MS`, `HANDSHAKE_RATE` /
//! `HANDSHAKE_BURST`, `MAX_SESSIONS`, `FIRST_EXCHANGE_MS`,
//! `HANDSHAKE_BYTES`, `BODY_TIMEOUT_MS`, `BODY_MIN_RATE`, `WS_ORIGINS`,
//! `MAX_EVENT_BYTES`, `BINARY_DEADLINE_MS`, `PACKET_RATE` / `PACKET_BURST`.
//!
//! Namespace `/`: on connection emits `auth` with the CONNECT payload;
//! `message` -> `message-back` with the same arguments; `message-with-ack` ->
//! ack with the same arguments; `join` / `leave` (room) with an optional ack
//! `true`; `broadcast` (room, payload) -> `bcast` (payload) to the room, ack
//! `true` if asked; `please-ack` (data) -> `server-ack` (data) with an ack, then
//! `server-ack-result` (the client's answer); `disconnect-me` -> disconnects
//! the socket; `set-data` (value) -> stores it as the socket's data (the JSON
//! value recovery keeps), ack `true`; `get-data` -> ack with the socket's data
//! (`null` if none). Namespace `/custom`: emits `auth` on connection. Other
//! namespaces (but the admin UI's, when on) are refused with `Invalid namespace`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rollcall::engine::{AbuseLimits, AllowedOrigins, Cors, Deflate, DirectWrites, WsOrigins};
use rollcall::http::Rate;
use rollcall::socketio::adapter::redis::RedisNode;
use rollcall::socketio::{
    EventLimits, NamespaceSetup, Parser, Payload, RecoveryConfig, RecoveryLog, RecoveryLogOptions,
    Socket, SocketIoConfig,
};
use serde_json::Value;

/// Direct writes to idle WebSockets, tunable for benchmarks with
/// `DIRECT_IDLE_MS` and `DIRECT_SHARE` (0 turns them off).
fn direct_writes() -> DirectWrites {
    let d = DirectWrites::default();
    DirectWrites {
        idle: env_ms("DIRECT_IDLE_MS", d.idle.as_millis() as u64),
        share: std::env::var("DIRECT_SHARE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.share),
        ..d
    }
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// permessage-deflate when `DEFLATE=1`, with the threshold in `DEFLATE_THRESHOLD`.
fn deflate() -> Option<Deflate> {
    if std::env::var("DEFLATE").ok().as_deref() != Some("1") {
        return None;
    }
    let d = Deflate::default();
    Some(Deflate {
        threshold: std::env::var("DEFLATE_THRESHOLD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.threshold),
        ..d
    })
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(env_num(name, default))
}

/// A rate from `<name>_RATE` / `<name>_BURST`, if set and positive.
fn env_rate(name: &str) -> Option<Rate> {
    let per_sec: f64 = env_num(&format!("{name}_RATE"), 0.0);
    let burst: f64 = env_num(&format!("{name}_BURST"), per_sec);
    (per_sec > 0.0).then(|| Rate::new(per_sec, burst))
}

/// The engine's abuse limits from the environment (see the module docs).
fn abuse_limits() -> AbuseLimits {
    let mut l = AbuseLimits::unlimited();
    l.connections.per_addr = env_rate("CONN");
    l.connections.max_connections = env_num("MAX_CONNECTIONS", usize::MAX);
    l.connections.header_read_timeout = env_ms(
        "HEADER_TIMEOUT_MS",
        l.connections.header_read_timeout.as_millis() as u64,
    );
    l.handshakes_per_addr = env_rate("HANDSHAKE");
    l.max_sessions = env_num("MAX_SESSIONS", usize::MAX);
    l.first_exchange_timeout = env_ms(
        "FIRST_EXCHANGE_MS",
        l.first_exchange_timeout.as_millis() as u64,
    );
    l.handshake_bytes = env_num("HANDSHAKE_BYTES", l.handshake_bytes);
    l.body_timeout = env_ms("BODY_TIMEOUT_MS", l.body_timeout.as_millis() as u64);
    l.body_min_rate = env_num("BODY_MIN_RATE", l.body_min_rate);
    l.websocket_origins = WsOrigins::parse(&std::env::var("WS_ORIGINS").unwrap_or_default());
    l
}

/// The Socket.IO abuse limits from the environment (packet rate off by default).
fn event_limits() -> EventLimits {
    let d = EventLimits::default();
    EventLimits {
        max_event_bytes: env_num("MAX_EVENT_BYTES", d.max_event_bytes),
        binary_deadline: env_ms("BINARY_DEADLINE_MS", d.binary_deadline.as_millis() as u64),
        packet_rate: env_rate("PACKET"),
    }
}

/// CORS: any origin, or the list in `CORS_ORIGINS`.
fn cors() -> Cors {
    match std::env::var("CORS_ORIGINS") {
        Ok(list) if !list.trim().is_empty() => Cors {
            origins: AllowedOrigins::List(list.split(',').map(|o| o.trim().to_string()).collect()),
            credentials: true,
        },
        _ => Cors::any(),
    }
}

/// Waits for SIGTERM or SIGINT.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn emit_auth(socket: &Arc<Socket>) {
    let _ = socket.emit("auth", &Payload::one(socket.auth().clone()));
}

fn ack_true(ack: Option<rollcall::socketio::AckSender>) {
    if let Some(ack) = ack {
        let _ = ack.send(Payload::one(Value::Bool(true)));
    }
}

/// The main namespace: handlers are registered once for the namespace (not
/// per socket), so a connected socket costs no handler memory.
fn main_namespace() -> NamespaceSetup {
    NamespaceSetup::new(|socket| emit_auth(&socket))
        .on("message", |s, payload, _| {
            let _ = s.emit("message-back", &payload);
        })
        .on("message-with-ack", |_, payload, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(payload);
            }
        })
        .on("join", |s, payload, ack| {
            if let Some(room) = payload.args.first().and_then(Value::as_str) {
                s.join(room);
            }
            ack_true(ack);
        })
        .on("leave", |s, payload, ack| {
            if let Some(room) = payload.args.first().and_then(Value::as_str) {
                s.leave(room);
            }
            ack_true(ack);
        })
        .on("broadcast", |s, mut payload, ack| {
            if let Some(room) = payload
                .args
                .first()
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                payload.args.remove(0);
                payload.args.truncate(1);
                s.ns().to(&room).emit("bcast", &payload);
            }
            ack_true(ack);
        })
        .on("please-ack", |s, payload, _| {
            let s = s.clone();
            tokio::spawn(async move {
                if let Ok(reply) = s
                    .emit_with_ack("server-ack", &payload, Duration::from_secs(10))
                    .await
                {
                    let _ = s.emit("server-ack-result", &reply);
                }
            });
        })
        .on("disconnect-me", |s, _, _| s.disconnect())
        .on("set-data", |s, payload, ack| {
            if let Some(v) = payload.args.into_iter().next() {
                s.data().insert(v);
            }
            ack_true(ack);
        })
        .on("get-data", |s, _, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(Payload::one(s.data().get::<Value>().unwrap_or(Value::Null)));
            }
        })
}

/// The admin UI namespace from `ADMIN_UI` (`off`, the default; `open`;
/// `USER:BCRYPT_HASH`), `ADMIN_UI_MODE`, `ADMIN_UI_NAMESPACE` and
/// `ADMIN_UI_ORIGIN`; a bad value stops the server at startup.
fn admin_ui() -> std::io::Result<rollcall::admin_ui::AdminUiConfig> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    rollcall::admin_ui::AdminUiConfig::parse(
        &var("ADMIN_UI"),
        &var("ADMIN_UI_MODE"),
        &var("ADMIN_UI_NAMESPACE"),
        &var("ADMIN_UI_ORIGIN"),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))
}

/// The key of the admin UI's session ids: `ADMIN_UI_SESSION_KEY`, else
/// random (session ids then last as long as the process).
fn admin_key() -> Vec<u8> {
    match std::env::var("ADMIN_UI_SESSION_KEY") {
        Ok(k) if !k.is_empty() => k.into_bytes(),
        _ => rollcall::util::random_id(32).into_bytes(),
    }
}

/// The packet format from `PARSER`.
fn parser() -> std::io::Result<Parser> {
    match std::env::var("PARSER").as_deref() {
        Err(_) | Ok("json") => Ok(Parser::Json),
        Ok("msgpack") => Ok(Parser::Msgpack),
        Ok(other) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("PARSER must be json or msgpack, not {other:?}"),
        )),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut config = SocketIoConfig::builder()
        .engine(|e| {
            e.ping_interval(env_ms("PING_INTERVAL", 300))
                .ping_timeout(env_ms("PING_TIMEOUT", 200))
                .max_payload(1_000_000)
                .direct_writes(direct_writes())
                .per_message_deflate(deflate())
                .abuse(abuse_limits())
        })
        .event_limits(event_limits())
        .connect_timeout(Duration::from_millis(1000))
        .parser(parser()?);
    if std::env::var("RECOVERY_MS").is_ok() {
        let d = RecoveryConfig::default();
        config = config.recovery(RecoveryConfig {
            max_disconnection: env_ms("RECOVERY_MS", 120_000),
            skip_middlewares: true,
            max_packets: env_num("RECOVERY_MAX_PACKETS", d.max_packets),
            max_bytes: env_num("RECOVERY_MAX_BYTES", d.max_bytes),
        });
        if let Ok(dir) = std::env::var("RECOVERY_DIR") {
            let options = RecoveryLogOptions {
                flush_interval: env_ms("RECOVERY_FLUSH_MS", 50),
                ..RecoveryLogOptions::default()
            };
            let log = RecoveryLog::open(dir.as_ref(), options).map_err(std::io::Error::other)?;
            config = config.recovery_log(log);
        }
    }
    let redis = RedisNode::from_env().await.map_err(std::io::Error::other)?;
    config = config.adapter(RedisNode::factory_or_local(redis.as_ref()));
    let io = rollcall::admin_ui::socket_io(&admin_ui()?, &admin_key(), config, cors());
    io.ns_with("/", main_namespace());
    io.ns("/custom", |socket| emit_auth(&socket));
    let listener = common::bind_from_env(3000).await?;
    tokio::select! {
        _ = io.clone().serve(listener) => {}
        _ = terminated() => {
            if let Err(e) = io.shutdown() {
                eprintln!("shutdown: {e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
