//! Socket.IO server features over real WebSocket connections, checked at the
//! wire level: middlewares and CONNECT_ERROR, dynamic namespaces, the connect
//! timeout, catch-all handlers, typed socket data, server-side acks with a
//! timeout, volatile and acknowledged broadcasts, selectors (fetch, join,
//! leave, disconnect), client counts and the DISCONNECT reasons.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rollcall::socketio::{
    ConnectBufferLimit, ConnectError, DisconnectReason, NamespaceSetup, Payload, SocketIo,
    SocketIoConfig,
};
use serde_json::{json, Value};
use tokio::time::timeout;

mod common;

use common::{ws_connect, ws_next_text as next, ws_send as send, Ws, WAIT};

#[derive(Clone, Copy, Debug, PartialEq)]
struct UserTag(u32);

/// Starts a server with the test namespaces; returns its address, the server
/// and the recorded disconnect reasons.
async fn start() -> (SocketAddr, SocketIo, Arc<Mutex<Vec<DisconnectReason>>>) {
    let config = SocketIoConfig::builder()
        .engine(|e| {
            e.ping_interval(Duration::from_millis(2000))
                .ping_timeout(Duration::from_millis(1000))
        })
        .connect_timeout(Duration::from_millis(400))
        .build();
    let io = SocketIo::new(config);
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.ns("/", move |socket| {
        let r = r.clone();
        socket.on_disconnect(move |_, reason| r.lock().push(reason));
        socket.data().insert(UserTag(7));
        socket.on("tag", |s, _, ack| {
            let tag = s.data().get::<UserTag>().map_or(0, |t| t.0);
            if let Some(ack) = ack {
                let _ = ack.send(Payload::one(json!(tag)));
            }
        });
        socket.on("join", |s, p, ack| {
            if let Some(room) = p.args.first().and_then(Value::as_str) {
                s.join(room);
            }
            if let Some(ack) = ack {
                let _ = ack.send(Payload::default());
            }
        });
        socket.on("ask-me", |s, p, _| {
            let s = s.clone();
            let wait = p.arg::<u64>(0).unwrap_or(100);
            tokio::spawn(async move {
                let r = s
                    .emit_with_ack(
                        "question",
                        &Payload::one(json!("q")),
                        Duration::from_millis(wait),
                    )
                    .await;
                let answer = match r {
                    Ok(p) => json!({"answer": p.args}),
                    Err(e) => json!({"error": e.to_string()}),
                };
                let _ = s.emit("result", &Payload::one(answer));
            });
        });
        socket.on("poll-room", |s, p, _| {
            let s = s.clone();
            let room = p.arg::<String>(0).unwrap_or_default();
            tokio::spawn(async move {
                let r = s
                    .ns()
                    .to(&room)
                    .timeout(Duration::from_millis(500))
                    .emit_with_ack("vote", &Payload::default())
                    .await
                    .into_result();
                let out = match r {
                    Ok(mut replies) => {
                        let mut v: Vec<Value> =
                            replies.iter_mut().flat_map(|p| p.args.drain(..)).collect();
                        v.sort_by_key(|x| x.to_string());
                        json!({"votes": v})
                    }
                    Err(e) => json!({"error": e.to_string()}),
                };
                let _ = s.emit("poll-result", &Payload::one(out));
            });
        });
        socket.on("select", |s, p, ack| {
            let op = p.arg::<String>(0).unwrap_or_default();
            let room = p.arg::<String>(1).unwrap_or_default();
            let ns = s.ns().clone();
            let n = ns.to(&room).sockets().len();
            match op.as_str() {
                "join-b" => ns.to(&room).join("b"),
                "leave-b" => ns.to(&room).leave("b"),
                "kick" => ns.to(&room).except("keep").disconnect(),
                _ => {}
            }
            if let Some(ack) = ack {
                let _ = ack.send(Payload::one(json!(n)));
            }
        });
        socket.on("to-b", |s, _, _| {
            s.ns().to("b").emit("in-b", &Payload::default());
        });
        socket.on("volatile-burst", |s, p, _| {
            let n = p.arg::<u64>(0).unwrap_or(0);
            for i in 0..n {
                s.ns()
                    .to(s.id())
                    .volatile()
                    .emit("v", &Payload::one(json!(i)));
            }
            s.ns().to(s.id()).emit("v-done", &Payload::default());
        });
        socket.on_any(|s, event, p, _| {
            if event == "kick-me" {
                // A catch-all handler may disconnect its own socket.
                s.disconnect();
                return;
            }
            let _ = s.emit(
                "any",
                &Payload::new(vec![json!(event), json!(p.args.len())]),
            );
        });
    });
    io.ns_with(
        "/admin",
        NamespaceSetup::new(|socket| {
            let _ = socket.emit("welcome", &Payload::default());
        })
        .middleware(|socket| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if socket.auth().get("token") == Some(&json!("ok")) {
                Ok(())
            } else {
                Err(ConnectError::with_data(
                    "not authorized",
                    json!({"code": "E1"}),
                ))
            }
        }),
    );
    io.dynamic_ns(
        |name| name.starts_with("/dyn-"),
        NamespaceSetup::new(|socket| {
            let name = socket.ns().name().to_string();
            let _ = socket.emit("where", &Payload::one(json!(name)));
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    (addr, io, reasons)
}

/// A raw Engine.IO WebSocket connection (open packet consumed).
async fn ws(addr: SocketAddr) -> Ws {
    let url = "/socket.io/?EIO=4&transport=websocket";
    let mut ws = ws_connect(addr, url).await.unwrap();
    let open = next(&mut ws).await.unwrap();
    assert!(open.starts_with("0{"), "{open}");
    ws
}

/// Waits for the server to close the connection: an Engine.IO `1` may come
/// first, nothing else may.
async fn closed(ws: &mut Ws) {
    match next(ws).await {
        None => {}
        Some(t) if t == "1" => assert_eq!(next(ws).await, None),
        Some(t) => panic!("expected the connection to close, got {t}"),
    }
}

/// Connects to namespace `/` and returns the socket id.
async fn connect_main(ws: &mut Ws) -> String {
    send(ws, "40").await;
    let c = next(ws).await.unwrap();
    let v: Value = serde_json::from_str(c.strip_prefix("40").unwrap()).unwrap();
    v["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn middleware_refuses_with_connect_error_and_data() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    send(&mut c, "40/admin,{\"token\":\"bad\"}").await;
    assert_eq!(
        next(&mut c).await.unwrap(),
        r#"44/admin,{"message":"not authorized","data":{"code":"E1"}}"#
    );
    // The connection stays usable: the same namespace accepts a good token.
    send(&mut c, "40/admin,{\"token\":\"ok\"}").await;
    assert!(next(&mut c)
        .await
        .unwrap()
        .starts_with("40/admin,{\"sid\":"));
    assert_eq!(next(&mut c).await.unwrap(), r#"42/admin,["welcome"]"#);
}

#[tokio::test]
async fn packets_sent_during_an_async_connect_wait_for_it() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    // Pipelined behind the CONNECT, while the middleware is still running.
    send(&mut c, "40/admin,{\"token\":\"ok\"}").await;
    send(&mut c, "42/admin,5[\"anything\"]").await;
    assert!(next(&mut c).await.unwrap().starts_with("40/admin,"));
    assert_eq!(next(&mut c).await.unwrap(), r#"42/admin,["welcome"]"#);
    // No handler for it there: the event is dropped without closing anything.
    send(&mut c, "41/admin,").await;
    let sid = connect_main(&mut c).await;
    assert!(!sid.is_empty());
}

#[tokio::test]
async fn dynamic_namespaces_and_unknown_ones() {
    let (addr, io, _) = start().await;
    let mut c = ws(addr).await;
    send(&mut c, "40/dyn-42,").await;
    assert!(next(&mut c)
        .await
        .unwrap()
        .starts_with("40/dyn-42,{\"sid\":"));
    assert_eq!(
        next(&mut c).await.unwrap(),
        r#"42/dyn-42,["where","/dyn-42"]"#
    );
    assert!(io.of("/dyn-42").is_some());
    send(&mut c, "40/nope,").await;
    assert_eq!(
        next(&mut c).await.unwrap(),
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
}

#[tokio::test]
async fn connect_timeout_closes_an_idle_connection() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    let started = std::time::Instant::now();
    closed(&mut c).await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn typed_data_catch_all_and_acks() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    connect_main(&mut c).await;
    send(&mut c, "421[\"tag\"]").await;
    assert_eq!(next(&mut c).await.unwrap(), "431[7]");
    send(&mut c, "42[\"unheard\",1,2]").await;
    assert_eq!(next(&mut c).await.unwrap(), r#"42["any","unheard",2]"#);
}

#[tokio::test]
async fn catch_all_handler_may_disconnect_its_socket() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    connect_main(&mut c).await;
    let run = async {
        send(&mut c, "42[\"kick-me\"]").await;
        assert_eq!(next(&mut c).await.unwrap(), "41");
        // The connection (its reader included) is still served.
        connect_main(&mut c).await;
        send(&mut c, "42[\"unheard\"]").await;
        assert_eq!(next(&mut c).await.unwrap(), r#"42["any","unheard",0]"#);
    };
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the connection is still served");
}

#[tokio::test]
async fn server_ack_answered_and_timed_out() {
    let (addr, _, _) = start().await;
    let mut c = ws(addr).await;
    connect_main(&mut c).await;
    send(&mut c, "42[\"ask-me\",2000]").await;
    let q = next(&mut c).await.unwrap();
    let id: String = q
        .strip_prefix("42")
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(q, format!("42{id}[\"question\",\"q\"]"));
    send(&mut c, &format!("43{id}[\"yes\",{{\"n\":1}}]")).await;
    assert_eq!(
        next(&mut c).await.unwrap(),
        r#"42["result",{"answer":["yes",{"n":1}]}]"#
    );
    // Unanswered: a timeout error after 100 ms.
    send(&mut c, "42[\"ask-me\",100]").await;
    assert!(next(&mut c).await.unwrap().contains("\"question\""));
    assert_eq!(
        next(&mut c).await.unwrap(),
        r#"42["result",{"error":"operation has timed out"}]"#
    );
}

async fn joined(addr: SocketAddr, rooms: &[&str]) -> (Ws, String) {
    let mut c = ws(addr).await;
    let sid = connect_main(&mut c).await;
    for r in rooms {
        send(&mut c, &format!("420[\"join\",\"{r}\"]")).await;
        assert_eq!(next(&mut c).await.unwrap(), "430[]");
    }
    (c, sid)
}

#[tokio::test]
async fn broadcast_with_aggregated_acks() {
    let (addr, _, _) = start().await;
    let (mut a, _) = joined(addr, &["poll"]).await;
    let (mut b, _) = joined(addr, &["poll"]).await;
    let (mut asker, _) = joined(addr, &[]).await;
    send(&mut asker, "42[\"poll-room\",\"poll\"]").await;
    for (c, vote) in [(&mut a, "\"a\""), (&mut b, "\"b\"")] {
        let q = next(c).await.unwrap();
        let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(q, format!("42{id}[\"vote\"]"));
        send(c, &format!("43{id}[{vote}]")).await;
    }
    assert_eq!(
        next(&mut asker).await.unwrap(),
        r#"42["poll-result",{"votes":["a","b"]}]"#
    );
    // One member never answers: the whole broadcast times out.
    send(&mut asker, "42[\"poll-room\",\"poll\"]").await;
    let q = next(&mut a).await.unwrap();
    let id: String = q[2..].chars().take_while(char::is_ascii_digit).collect();
    send(&mut a, &format!("43{id}[\"a\"]")).await;
    assert!(next(&mut b).await.unwrap().contains("vote"));
    assert_eq!(
        next(&mut asker).await.unwrap(),
        r#"42["poll-result",{"error":"operation has timed out"}]"#
    );
}

#[tokio::test]
async fn selectors_fetch_join_leave_disconnect() {
    let (addr, io, reasons) = start().await;
    let (mut a, _) = joined(addr, &["x"]).await;
    let (mut b, _) = joined(addr, &["x", "keep"]).await;
    let (mut ctl, _) = joined(addr, &[]).await;
    assert_eq!(io.client_count(), 3);
    send(&mut ctl, "421[\"select\",\"join-b\",\"x\"]").await;
    assert_eq!(next(&mut ctl).await.unwrap(), "431[2]");
    send(&mut ctl, "42[\"to-b\"]").await;
    assert_eq!(next(&mut a).await.unwrap(), r#"42["in-b"]"#);
    assert_eq!(next(&mut b).await.unwrap(), r#"42["in-b"]"#);
    send(&mut ctl, "422[\"select\",\"leave-b\",\"keep\"]").await;
    assert_eq!(next(&mut ctl).await.unwrap(), "432[1]");
    send(&mut ctl, "42[\"to-b\"]").await;
    assert_eq!(next(&mut a).await.unwrap(), r#"42["in-b"]"#);
    // Disconnect everyone in x except those in "keep": only a.
    send(&mut ctl, "423[\"select\",\"kick\",\"x\"]").await;
    assert_eq!(next(&mut ctl).await.unwrap(), "433[2]");
    assert_eq!(next(&mut a).await.unwrap(), "41");
    assert!(reasons
        .lock()
        .contains(&DisconnectReason::ServerNamespaceDisconnect));
    // b is still in x: a join-b on x now selects only b.
    send(&mut ctl, "424[\"select\",\"none\",\"x\"]").await;
    assert_eq!(next(&mut ctl).await.unwrap(), "434[1]");
    // The engine connection of a stays open: it can reconnect to the namespace.
    connect_main(&mut a).await;
    drop(b);
    let deadline = std::time::Instant::now() + WAIT;
    while !reasons.lock().contains(&DisconnectReason::TransportClose) {
        assert!(std::time::Instant::now() < deadline, "no transport close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn volatile_packets_are_dropped_for_a_busy_connection() {
    let (addr, io, _) = start().await;
    let (mut c, _) = joined(addr, &[]).await;
    let (es, ss) = (io.engine().stats(), io.stats());
    let (b0, d0, v0) = (
        ss.broadcasts.get(),
        ss.deliveries.get(),
        es.volatile_dropped.get(),
    );
    // 500 volatile packets queued in one go: all but the first find the
    // queue busy and are dropped; the normal packet after them arrives.
    send(&mut c, "42[\"volatile-burst\",500]").await;
    let mut got = 0;
    loop {
        let t = next(&mut c).await.unwrap();
        if t == r#"42["v-done"]"# {
            break;
        }
        assert!(t.starts_with(r#"42["v","#), "{t}");
        got += 1;
    }
    assert!((1..500).contains(&got), "{got} volatile packets delivered");
    // Counted: 501 broadcasts to one socket each, the undelivered volatile
    // ones as dropped, every packet written directly or from the queue.
    assert_eq!(ss.broadcasts.get() - b0, 501);
    assert_eq!(ss.deliveries.get() - d0, 501);
    assert_eq!(es.volatile_dropped.get() - v0, 500 - got);
    assert!(es.sent_packets(1) >= got + 3, "open, CONNECT, packets");
    assert!(es.delivery_latency_us.snapshot().count > 0);
}

#[tokio::test]
async fn client_disconnect_and_malformed_packets() {
    let (addr, _, reasons) = start().await;
    let (mut a, _) = joined(addr, &[]).await;
    send(&mut a, "41").await;
    // Namespace left, engine still open: an event for "/" now closes it.
    send(&mut a, "42[\"tag\"]").await;
    closed(&mut a).await;
    let (mut b, _) = joined(addr, &[]).await;
    send(&mut b, "42[\"connect\"]").await;
    closed(&mut b).await;
    let r = reasons.lock().clone();
    assert!(r.contains(&DisconnectReason::ClientNamespaceDisconnect));
    assert!(r.contains(&DisconnectReason::ParseError));
}

/// Starts a server with `config`, namespace `/` (event `echo` is emitted
/// back) and namespace `/slow`, whose middleware takes 300 ms and whose
/// connection handler runs `on_connection` after registering the same
/// `echo` handler and recording disconnect reasons.
async fn start_slow(
    config: SocketIoConfig,
    on_connection: impl Fn() + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<DisconnectReason>>>) {
    let io = SocketIo::new(config);
    let echo = |s: &Arc<rollcall::socketio::Socket>, p: Payload, _| {
        let _ = s.emit("echo", &p);
    };
    io.ns("/", move |socket| socket.on("echo", echo));
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.ns_with(
        "/slow",
        NamespaceSetup::new(move |socket| {
            let r = r.clone();
            socket.on_disconnect(move |_, reason| r.lock().push(reason));
            socket.on("echo", echo);
            on_connection();
        })
        .middleware(|_| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.serve(listener));
    (addr, reasons)
}

fn quiet_config() -> rollcall::socketio::SocketIoConfigBuilder {
    SocketIoConfig::builder().engine(|e| {
        e.ping_interval(Duration::from_millis(2000))
            .ping_timeout(Duration::from_millis(1000))
    })
}

/// Rule: what a client sends for a namespace while its CONNECT is in
/// progress is kept up to the connect buffer limit (packets and bytes) and
/// handled after the CONNECT; a client going over either limit is closed,
/// and other clients (on the same namespace or another) carry on.
#[tokio::test]
async fn connect_buffer_is_bounded_per_client() {
    let limit = ConnectBufferLimit {
        packets: 4,
        bytes: 200,
    };
    let config = quiet_config().connect_buffer(limit).build();
    assert_eq!(ConnectBufferLimit::default().packets, 128);
    let (addr, _) = start_slow(config, || {}).await;
    let mut other = ws(addr).await;
    connect_main(&mut other).await;

    // Within the limits: all four are handled, in order, after the CONNECT.
    let mut within = ws(addr).await;
    send(&mut within, "40/slow,").await;
    for i in 0..4 {
        send(&mut within, &format!("42/slow,[\"echo\",{i}]")).await;
    }
    assert!(next(&mut within).await.unwrap().starts_with("40/slow,"));
    for i in 0..4 {
        assert_eq!(
            next(&mut within).await.unwrap(),
            format!("42/slow,[\"echo\",{i}]")
        );
    }

    // One packet too many.
    let mut flood = ws(addr).await;
    send(&mut flood, "40/slow,").await;
    for i in 0..5 {
        send(&mut flood, &format!("42/slow,[\"echo\",{i}]")).await;
    }
    closed(&mut flood).await;

    // Too many bytes (one packet of about 300).
    let mut big = ws(addr).await;
    send(&mut big, "40/slow,").await;
    send(
        &mut big,
        &format!("42/slow,[\"echo\",\"{}\"]", "x".repeat(300)),
    )
    .await;
    closed(&mut big).await;

    // Everyone else is unaffected.
    send(&mut other, "42[\"echo\",\"still\"]").await;
    assert_eq!(next(&mut other).await.unwrap(), r#"42["echo","still"]"#);
    send(&mut within, "42/slow,[\"echo\",\"too\"]").await;
    assert_eq!(
        next(&mut within).await.unwrap(),
        r#"42/slow,["echo","too"]"#
    );
}

/// Rule: when the transport closes while the connection handler runs, the
/// socket is disconnected with the real reason ("transport close"), not
/// "forced close".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_close_during_the_connection_handler_keeps_its_reason() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let e = entered.clone();
    let (addr, reasons) = start_slow(quiet_config().build(), move || {
        e.notify_one();
        // Still inside the handler when the client goes away.
        std::thread::sleep(Duration::from_millis(500));
    })
    .await;
    let mut c = ws(addr).await;
    send(&mut c, "40/slow,").await;
    timeout(WAIT, entered.notified()).await.unwrap();
    c.close(None).await.unwrap();
    drop(c);
    let got = timeout(WAIT, async {
        loop {
            if let Some(r) = reasons.lock().first().copied() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the socket was never disconnected");
    assert_eq!(got, DisconnectReason::TransportClose);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(reasons.lock().len(), 1, "reported twice");
}
