//! Path.

use crate::fixture::*;

/// Rule: an engine mounted at `/custom/` answers there (polling and
/// WebSocket) and `/engine.io/` is 404.
#[tokio::test]
async fn configurable_path() {
    let (addr, _rec) = start(config().path("/custom/").build()).await;
    let r = request(addr, "GET", "/custom/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200);
    open_packet(&r.text());
    let mut ws = ws_connect(addr, "/custom/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 404);
}
