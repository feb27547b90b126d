//! The contract server that conformance suites, interop tests and benchmarks
//! point at (Socket.IO at `/socket.io/`).
//!
//! Environment: `PORT` (default 3000; 0 picks a free port), `HOST` (default
//! 127.0.0.1), `PING_INTERVAL` / `PING_TIMEOUT` in ms (default 300 / 200),
//! `RECOVERY_MS` (enables connection state recovery with that maximum
//! disconnection duration), `DEFLATE=1` (permessage-deflate for WebSocket
//! clients that offer it, packets of at least `DEFLATE_THRESHOLD` bytes
//! compressed, default 1024). maxPayload 1,000,000, connect timeout 1000 ms,
//! CORS for any origin with credentials. Prints `listening on <addr>` when ready.
//!
//! Namespace `/`: on connection emits `auth` with the CONNECT payload;
//! `message` -> `message-back` with the same arguments; `message-with-ack` ->
//! ack with the same arguments; `join` / `leave` (room) with an optional ack
//! `true`; `broadcast` (room, payload) -> `bcast` (payload) to the room, ack
//! `true` if asked; `please-ack` (data) -> `server-ack` (data) with an ack, then
//! `server-ack-result` (the client's answer); `disconnect-me` -> disconnects
//! the socket. Namespace `/custom`: emits `auth` on connection. Other
//! namespaces are refused with `Invalid namespace`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use rollcall::engine::{Cors, Deflate, DirectWrites};
use rollcall::socketio::{
    NamespaceSetup, Payload, RecoveryConfig, Socket, SocketIo, SocketIoConfig,
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
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
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
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut config = SocketIoConfig::builder()
        .engine(|e| {
            e.ping_interval(env_ms("PING_INTERVAL", 300))
                .ping_timeout(env_ms("PING_TIMEOUT", 200))
                .max_payload(1_000_000)
                .cors(Cors::any())
                .direct_writes(direct_writes())
                .per_message_deflate(deflate())
        })
        .connect_timeout(Duration::from_millis(1000));
    if std::env::var("RECOVERY_MS").is_ok() {
        config = config.recovery(RecoveryConfig {
            max_disconnection: env_ms("RECOVERY_MS", 120_000),
            skip_middlewares: true,
        });
    }
    let io = SocketIo::new(config.build());
    io.ns_with("/", main_namespace());
    io.ns("/custom", |socket| emit_auth(&socket));
    let listener = common::bind_from_env(3000).await?;
    io.serve(listener).await;
    Ok(())
}
