//! Engine.IO v4 protocol rules, checked over real TCP (issue #2).
//!
//! Every test starts its own in-process engine on 127.0.0.1:0 with an echo
//! handler that also records why sessions close. Polling requests go through
//! a tiny raw HTTP/1.1 helper (one connection per request, `Connection:
//! close`); WebSockets use the tokio-tungstenite client. Every wait is bounded
//! by a timeout, so a broken server fails a test instead of hanging it.
//!
//! Unless a test says otherwise the engine runs with pingInterval 300 ms,
//! pingTimeout 200 ms and maxPayload 1,000,000. Tests that assert exact
//! polling payloads use a long ping interval ([`quiet`]) so that a heartbeat
//! `2` cannot land in the middle of the payload under load.
//!
//! The fixtures shared with the other test crates are in `tests/common`, the
//! engine under test in [`fixture`]; each module below is one section of the
//! rules.

#[path = "../common/mod.rs"]
mod common;
mod fixture;

mod abuse;
mod cors;
mod deflate;
mod errors;
mod handshake;
mod max_payload;
mod path;
mod polling;
mod queue;
mod upgrade;
mod websocket;
