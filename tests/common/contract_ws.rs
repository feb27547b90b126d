//! The Engine.IO client the adapter contract checks drive (over a real
//! loopback WebSocket).

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use rollcall::socketio::adapter::contract::Client;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket Engine.IO client pumped by a task: pings answered, other
/// text messages forwarded; the socket is dropped (no close handshake) once
/// the check drops its [`Client`].
pub async fn ws_client(addr: SocketAddr) -> Client {
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
