//! The adapter contract (`rollcall::socketio::adapter::contract`) run for
//! the local adapter, over real loopback WebSocket clients.

mod common;

use std::sync::Arc;

use common::contract_ws::ws_client;
use rollcall::socketio::adapter::contract::{self, Harness};
use rollcall::socketio::AdapterFactory;

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
