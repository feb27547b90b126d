//! An Engine.IO-only echo server, mounted at `/engine.io/` (the path the
//! official engine.io test suite uses): every message goes back as it came,
//! text as text and binary as binary.
//!
//! pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000, CORS for
//! any origin. Listens on `HOST` (default 127.0.0.1) and `PORT` (default
//! 3000; 0 picks a free port) and prints `listening on <addr>` when ready.
//!
//! ```text
//! cargo run --example engine_echo
//! ```

mod common;

use std::sync::Arc;
use std::time::Duration;

use rollcall::engine::{
    CloseReason, Connection, Cors, Engine, EngineConfig, EngineHandler, Frame, Message,
};

struct Echo;

impl EngineHandler for Echo {
    type State = ();

    fn on_open(&self, _conn: &Arc<Connection>) {}

    fn on_message(&self, conn: &Arc<Connection>, _state: &(), msg: Message) {
        let frame = match msg {
            Message::Text(t) => Frame::message(t.as_str()),
            Message::Binary(b) => Frame::binary(&b),
        };
        let _ = conn.send(frame);
    }

    fn on_close(&self, _conn: &Arc<Connection>, _state: &(), _reason: CloseReason) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .cors(Cors::any())
        .build();
    let listener = common::bind_from_env(3000).await?;
    Engine::new(config, Echo).serve(listener).await;
    Ok(())
}
