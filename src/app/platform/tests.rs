//! In-process checks of the shutdown sequence's first step: the admission
//! gate (new Engine.IO sessions refused with error 4 while draining) and the
//! `server_shutdown` notice counted per socket.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 GET; the status line and body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[tokio::test]
async fn shutdown_closes_admission_and_keeps_serving_the_api() {
    let (app, io, _user, dir) = crate::app::test_support::app_with_student("platform", b"secret");
    let listener = crate::http::bind("127.0.0.1", 0).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (a, i) = (app.clone(), io.clone());
    tokio::spawn(crate::http::serve(listener, move |req, peer| {
        crate::app::api::route(Arc::clone(&a), i.clone(), req, peer)
    }));
    let base = "/socket.io/?EIO=4&transport=polling";
    let (status, open) = get(addr, base).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(open.starts_with("0{"), "{open}");

    let report = app.begin_shutdown("test").await;
    assert_eq!(report.notified, 0, "no socket had connected");
    assert!(report.drained);
    let (status, body) = get(addr, base).await;
    assert!(status.contains(" 403 "), "{status}");
    assert!(body.contains(r#""code":4"#), "{body}");
    // The HTTP API is still served while draining.
    let (status, _) = get(addr, "/api/health").await;
    assert!(status.contains(" 200 "), "{status}");
    app.finish_shutdown(&io).await.expect("flush");
    let _ = std::fs::remove_dir_all(&dir);
}
