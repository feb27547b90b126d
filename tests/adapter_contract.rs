//! The adapter contract (`rollcall::socketio::adapter::contract`) run for
//! the local adapter, over real loopback WebSocket clients.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rollcall::socketio::adapter::contract::{self, Client, Harness};
use rollcall::socketio::AdapterFactory;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket Engine.IO client pumped by a task: pings answered, other
/// text messages forwarded; the socket is dropped (no close handshake) once
/// the check drops its [`Client`].
async fn ws_client(addr: SocketAddr) -> Client {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let (to_server, mut outbox) = mpsc::unbounded_channel::<String>();
    let (inbox, from_server) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                out = outbox.recv() => match out {
                    Some(text) => {
                        if ws.send(Message::text(text)).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                msg = ws.next() => match msg {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        let _ = ws.send(Message::text("3")).await;
                    }
                    Some(Ok(Message::Text(t))) => {
                        let _ = inbox.send(t.as_str().to_string());
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                },
            }
        }
    });
    Client::new(to_server, from_server)
}

fn local() -> Harness {
    Harness {
        cluster: Arc::new(|| vec![AdapterFactory::local()]),
        connect: Arc::new(|addr| Box::pin(ws_client(addr))),
    }
}

macro_rules! contract_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            contract::$check(&local()).await;
        }
    )*};
}

contract_tests!(
    membership,
    broadcast_selection,
    volatile,
    local_flag,
    acks,
    fetch_sockets,
    selection_actions,
    server_side_emit,
    persist_restore,
);

/// The durable recovery log's rule: sessions and missed packets survive a
/// graceful restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_restore_across_restart() {
    let dir = std::env::temp_dir().join(format!(
        "rollcall-contract-recovery-{}-{}",
        std::process::id(),
        rollcall::util::random_id(4)
    ));
    contract::persist_restore_across_restart(&local(), &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
