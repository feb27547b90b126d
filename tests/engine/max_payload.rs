//! maxPayload.

use crate::fixture::*;

/// Rule: with maxPayload 1000 a 1000-byte POST is accepted; a 1001-byte POST
/// gets 413 and closes the session (PayloadTooLarge, then 400 code 1).
#[tokio::test]
async fn max_payload_polling() {
    let (addr, rec) = start(quiet().max_payload(1000).build()).await;
    let (sid, v) = handshake(addr).await;
    assert_eq!(v["maxPayload"].as_u64(), Some(1000));
    let exact = format!("4{}", "x".repeat(999));
    assert_ok(&post(addr, &sid, exact.as_bytes()).await);
    assert_payload(&get(addr, &sid).await, &exact);

    let over = format!("4{}", "x".repeat(1000));
    let r = post(addr, &sid, over.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PayloadTooLarge]);
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");

    // The same with a chunked body, whose size is only known while reading it.
    let (sid, _) = handshake(addr).await;
    let te = [("Transfer-Encoding", "chunked")];
    let r = request(
        addr,
        "POST",
        &poll_url(&sid),
        &te,
        &chunked(exact.as_bytes()),
    )
    .await;
    assert_ok(&r);
    let r = request(
        addr,
        "POST",
        &poll_url(&sid),
        &te,
        &chunked(over.as_bytes()),
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        rec.wait_closes(2).await,
        [CloseReason::PayloadTooLarge, CloseReason::PayloadTooLarge]
    );
    assert_error(&get(addr, &sid).await, 400, 1, "Session ID unknown");
}

/// `data` as a chunked request body (one chunk).
fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

/// Rule: a WebSocket message over maxPayload closes the WebSocket with close
/// code 1009 (PayloadTooLarge); a message of exactly maxPayload is fine.
#[tokio::test]
async fn max_payload_websocket() {
    let (addr, rec) = start(config().max_payload(1000).build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    open_packet(&ws_text(&mut ws).await);
    let exact = format!("4{}", "x".repeat(999));
    ws_send(&mut ws, &exact).await;
    assert_eq!(ws_data(&mut ws).await, WsMessage::text(exact));
    ws_send(&mut ws, &format!("4{}", "x".repeat(1000))).await;
    assert_eq!(ws_closed(&mut ws).await, Some(1009));
    assert_eq!(rec.wait_closes(1).await, [CloseReason::PayloadTooLarge]);
}
