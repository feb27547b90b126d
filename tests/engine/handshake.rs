//! Handshake.

use crate::fixture::*;

/// Rule: the polling handshake answers `0{...}` as text/plain; charset=UTF-8
/// with exactly sid, upgrades ["websocket"], pingInterval, pingTimeout and
/// maxPayload; a sid carries at least 120 bits (>= 20 base64url characters)
/// and is unique across handshakes.
#[tokio::test]
async fn handshake_polling_open_packet_fields() {
    let (addr, _rec) = start(config().build()).await;
    let r = request(addr, "GET", "/engine.io/?EIO=4&transport=polling", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    let (sid, v) = open_packet(&r.text());
    assert_eq!(keys(&v), HashSet::from(OPEN_KEYS));
    assert_eq!(v["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(v["pingInterval"].as_u64(), Some(300));
    assert_eq!(v["pingTimeout"].as_u64(), Some(200));
    assert_eq!(v["maxPayload"].as_u64(), Some(1_000_000));
    assert!(sid.len() >= 20, "sid {sid:?} is shorter than 120 bits");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid:?} is not base64url"
    );

    let mut sids = HashSet::from([sid]);
    for _ in 0..20 {
        let (sid, _) = handshake(addr).await;
        assert!(sids.insert(sid.clone()), "sid {sid} handed out twice");
    }
}

/// Rule: a direct WebSocket session's first frame is the open packet, with
/// the same fields and upgrades [].
#[tokio::test]
async fn handshake_websocket_open_packet_fields() {
    let (addr, _rec) = start(config().build()).await;
    let mut ws = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket")
        .await
        .unwrap();
    let (sid, v) = open_packet(&ws_text(&mut ws).await);
    assert_eq!(keys(&v), HashSet::from(OPEN_KEYS));
    assert_eq!(v["upgrades"], serde_json::json!([]));
    assert_eq!(v["pingInterval"].as_u64(), Some(300));
    assert_eq!(v["pingTimeout"].as_u64(), Some(200));
    assert_eq!(v["maxPayload"].as_u64(), Some(1_000_000));
    assert!(sid.len() >= 20);
    let (polling_sid, _) = handshake(addr).await;
    assert_ne!(sid, polling_sid);
}
