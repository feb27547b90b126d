//! The envelopes against what Node's `@socket.io/redis-adapter` 8.3.0 and
//! the emitter wrote (hex and JSON captured from real socket.io 4.8.4
//! servers).

use bytes::Bytes;
use serde_json::json;

use super::handshake::js_date_string;
use super::wire::*;
use super::{sharded, RedisMode};
use crate::socketio::adapter::{BroadcastFlags, BroadcastOptions};
use crate::socketio::Payload;

fn unhex(s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn packet(event: &str, args: serde_json::Value) -> WirePacket {
    WirePacket {
        event: event.into(),
        payload: Payload::new(args.as_array().unwrap().clone()),
    }
}

const HELLO: &str = "93a678775035454f83a47479706502a46461746194a568656c6c6f01a374776f81a5746872656503a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380";

#[test]
fn broadcast_is_byte_identical_to_node() {
    let p = packet("hello", json!([1, "two", {"three": 3}]));
    let b = classic_broadcast("xwP5EO", "/", &p, &BroadcastOptions::default());
    assert_eq!(hex(&b), HELLO);
    let env = classic_decode_broadcast(&unhex(HELLO)).unwrap();
    assert_eq!(env.uid.as_deref(), Some("xwP5EO"));
    assert_eq!(env.nsp.as_deref(), Some("/"));
    assert_eq!(
        env.body,
        Body::Broadcast {
            packet: p,
            opts: BroadcastOptions::default(),
            request_id: None
        }
    );
}

#[test]
fn binary_broadcast_to_a_room_except_a_room() {
    // io.to('room1').except('room2').emit('bin', Buffer [1, 2, 3])
    let node = "93a678775035454f 83 a474797065 02 a464617461 92 a362696e c403010203 \
                a36e7370 a12f 83 a5726f6f6d73 91 a5726f6f6d31 a6657863657074 91 a5726f6f6d32 \
                a5666c616773 80";
    let mut payload = Payload::default();
    let ph = payload.add_binary(Bytes::from_static(&[1, 2, 3]));
    payload.args.push(ph);
    let p = WirePacket {
        event: "bin".into(),
        payload,
    };
    let opts = BroadcastOptions {
        rooms: vec!["room1".into()],
        except: vec!["room2".into()],
        flags: BroadcastFlags::default(),
    };
    let b = classic_broadcast("xwP5EO", "/", &p, &opts);
    assert_eq!(b, unhex(node));
    let env = classic_decode_broadcast(&b).unwrap();
    let Body::Broadcast {
        packet, opts: o, ..
    } = env.body
    else {
        panic!("not a broadcast")
    };
    assert_eq!(o, opts);
    assert_eq!(
        packet.payload.binary(&packet.payload.args[0]).unwrap()[..],
        [1, 2, 3]
    );
}

#[test]
fn broadcast_ack_reply_is_byte_identical_to_node() {
    let b = classic_reply("r4", &Reply::Ack(Payload::one(json!(6))));
    assert_eq!(
        hex(&b),
        "83a47479706509a9726571756573744964a27234a67061636b657406"
    );
    let env = classic_decode_reply(&b).unwrap();
    assert_eq!(
        env.body,
        Body::Reply {
            request_id: "r4".into(),
            reply: Reply::Ack(Payload::one(json!(6)))
        }
    );
}

fn request(s: &str) -> Envelope {
    classic_decode_request(&Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

#[test]
fn reads_nodes_json_requests() {
    let join =
        request(r#"{"uid":"xwP5EO","type":2,"opts":{"rooms":[],"except":[]},"rooms":["r9"]}"#);
    assert_eq!(join.uid.as_deref(), Some("xwP5EO"));
    assert_eq!(
        join.body,
        Body::Join {
            opts: BroadcastOptions::default(),
            rooms: vec!["r9".into()]
        }
    );
    let dc =
        request(r#"{"uid":"xwP5EO","type":4,"opts":{"rooms":["zzz"],"except":[]},"close":true}"#);
    assert_eq!(
        dc.body,
        Body::Disconnect {
            opts: BroadcastOptions::to_rooms(vec!["zzz".into()]),
            close: true
        }
    );
    let sse = request(r#"{"uid":"xwP5EO","type":6,"data":["ping",42]}"#);
    assert_eq!(
        sse.body,
        Body::ServerSideEmit {
            packet: packet("ping", json!([42])),
            request_id: None
        }
    );
    let fetch = request(
        r#"{"uid":"xwP5EO","requestId":"N1IFX2","type":5,"opts":{"rooms":[],"except":[]}}"#,
    );
    assert_eq!(
        fetch.body,
        Body::Fetch {
            request_id: "N1IFX2".into(),
            opts: BroadcastOptions::default()
        }
    );
    let rooms = request(r#"{"uid":"a","requestId":"q","type":1}"#);
    assert_eq!(
        rooms.body,
        Body::AllRooms {
            request_id: "q".into()
        }
    );
    let legacy = request(r#"{"uid":"a","requestId":"q","type":0,"rooms":["x"]}"#);
    assert!(matches!(legacy.body, Body::Sockets { .. }));
    assert!(classic_decode_request(&Bytes::from_static(b"{\"type\":99}")).is_err());
    assert!(classic_decode_request(&Bytes::from_static(b"\xc1")).is_err());
}

#[test]
fn tolerates_the_emitter() {
    // The emitter's socketsJoin has no uid; its broadcasts use "emitter"
    // and write rooms, flags, except in that order.
    let join = request(r#"{"type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}"#);
    assert_eq!(join.uid, None);
    let v = json!(["emitter", {"type": 2, "data": ["e", 1], "nsp": "/"},
                   {"rooms": ["r"], "flags": {}, "except": []}]);
    let env = classic_decode_broadcast(&msgpack(&v, &[])).unwrap();
    assert_eq!(env.uid.as_deref(), Some("emitter"));
    let Body::Broadcast { opts, .. } = env.body else {
        panic!()
    };
    assert_eq!(opts.rooms, vec!["r".into()] as Vec<crate::socketio::Room>);
    // A packet without nsp is for "/".
    let v = json!(["emitter", {"type": 2, "data": ["e"]}, {}]);
    let env = classic_decode_broadcast(&msgpack(&v, &[])).unwrap();
    assert_eq!(env.nsp.as_deref(), Some("/"));
}

#[test]
fn broadcast_with_ack_request_round_trips_as_msgpack() {
    let opts = BroadcastOptions {
        flags: BroadcastFlags {
            timeout: Some(std::time::Duration::from_millis(1000)),
            ..BroadcastFlags::default()
        },
        ..BroadcastOptions::default()
    };
    let body = Body::Broadcast {
        packet: packet("ack?", json!([7])),
        opts,
        request_id: Some("hcK7j5".into()),
    };
    let b = classic_request("xwP5EO", "/", &body).unwrap();
    assert_ne!(b[0], b'{', "msgpack, not JSON");
    let (v, _) = decode_any(&b).unwrap();
    assert_eq!(
        v,
        json!({"uid":"xwP5EO","requestId":"hcK7j5","type":7,
               "packet":{"type":2,"data":["ack?",7],"nsp":"/"},
               "opts":{"rooms":[],"except":[],"flags":{"timeout":1000}}})
    );
    assert_eq!(classic_decode_request(&b).unwrap().body, body);
}

#[test]
fn replies_node_reads() {
    let count = classic_reply("r1", &Reply::ClientCount(3));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&count).unwrap(),
        json!({"type": 8, "requestId": "r1", "clientCount": 3})
    );
    let sse = classic_reply("r2", &Reply::ServerAck(Payload::one(json!("ok"))));
    assert_eq!(&sse[..], br#"{"type":6,"requestId":"r2","data":"ok"}"#);
    let node_fetch = br#"{"requestId":"r1","sockets":[{"id":"nS7nc-87M2dI57UBAAAA","handshake":{"auth":{"token":"t"}},"rooms":["nS7nc-87M2dI57UBAAAA","room1"],"data":{"user":"alice"}}]}"#;
    let env = classic_decode_reply(&Bytes::from_static(node_fetch)).unwrap();
    let Body::Reply {
        reply: Reply::Sockets(s),
        ..
    } = env.body
    else {
        panic!("not a fetch reply")
    };
    assert_eq!(s[0]["data"], json!({"user": "alice"}));
}

#[test]
fn sharded_envelope_matches_node() {
    let node = r#"{"type":3,"data":{"packet":{"type":2,"data":["hello",1]},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"2fb5216b61405cc0","nsp":"/"}"#;
    let body = Body::Broadcast {
        packet: packet("hello", json!([1])),
        opts: BroadcastOptions::default(),
        request_id: None,
    };
    let b = sharded::encode("2fb5216b61405cc0", "/", &body).unwrap();
    assert_eq!(std::str::from_utf8(&b).unwrap(), node);
    let env = sharded::decode(&Bytes::from_static(node.as_bytes())).unwrap();
    assert_eq!(env.uid.as_deref(), Some("2fb5216b61405cc0"));
    assert_eq!(env.body, body);
    let join = r#"{"type":4,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["r9"]},"uid":"x","nsp":"/"}"#;
    let env = sharded::decode(&Bytes::from_static(join.as_bytes())).unwrap();
    assert_eq!(
        env.body,
        Body::Join {
            opts: BroadcastOptions::default(),
            rooms: vec!["r9".into()]
        }
    );
    // With a binary argument, the whole envelope is msgpack.
    let mut payload = Payload::default();
    let ph = payload.add_binary(Bytes::from_static(&[9]));
    payload.args.push(ph);
    let bin = Body::Broadcast {
        packet: WirePacket {
            event: "b".into(),
            payload,
        },
        opts: BroadcastOptions::to_rooms(vec!["room1".into()]),
        request_id: None,
    };
    let b = sharded::encode("u", "/", &bin).unwrap();
    assert_eq!(b[0], 0x84, "a msgpack map of four keys");
    assert_eq!(sharded::decode(&b).unwrap().body, bin);
    let heartbeat = br#"{"type":2,"uid":"x","nsp":"/"}"#;
    assert_eq!(
        sharded::decode(&Bytes::from_static(heartbeat))
            .unwrap()
            .body,
        Body::Ignored
    );
}

#[test]
fn ids_like_node() {
    assert_eq!(super::node::random_uid(RedisMode::Classic).len(), 6);
    let u = super::node::random_uid(RedisMode::Sharded);
    assert!(u.len() == 16 && u.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        crate::util::random_id(15).len(),
        20,
        "socket ids as long as Node's"
    );
}

#[test]
fn handshake_time_like_javascript() {
    assert_eq!(
        js_date_string(1_795_324_638_018),
        "Sun Nov 22 2026 05:17:18 GMT+0000 (Coordinated Universal Time)"
    );
    assert_eq!(
        js_date_string(0),
        "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
    );
}

#[test]
fn config_from_env_values() {
    assert_eq!("sharded".parse::<RedisMode>(), Ok(RedisMode::Sharded));
    assert!("cluster".parse::<RedisMode>().is_err());
    assert_eq!(super::redacted("redis://u:pw@h:1/0"), "redis://***@h:1/0");
}
