//! Generators shared by the codec property tests (`proptest_codec.rs` for
//! the JSON codec, `proptest_msgpack.rs` for msgpack): argument trees with
//! binary values anywhere, the payload an application would build from
//! them, and the packet a client should decode, whatever the wire format.

#![allow(dead_code)]

use bytes::Bytes;
use proptest::prelude::*;
use rollcall::socketio::packet::{Packet, PacketKind, ParseError, RESERVED_EVENTS};
use rollcall::socketio::Payload;
use serde_json::{Map, Value};

/// A JSON tree whose leaves may be binary values.
#[derive(Debug, Clone)]
pub enum Tree {
    /// A JSON value with no binary inside.
    Json(Value),
    /// A binary value.
    Binary(Vec<u8>),
    /// An array.
    Array(Vec<Tree>),
    /// An object (keys may repeat: the last value wins, in the first key's place).
    Object(Vec<(String, Tree)>),
}

pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

pub fn key() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("placeholder key", |k| k != "_placeholder")
}

pub fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        4 => scalar().prop_map(Tree::Json),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Tree::Binary),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Tree::Array),
            proptest::collection::vec((key(), inner), 0..6).prop_map(Tree::Object),
        ]
    })
}

/// Depth-first binary leaves, in the order the encoder walks them.
pub fn binaries(t: &Tree, out: &mut Vec<Vec<u8>>) {
    match t {
        Tree::Json(_) => {}
        Tree::Binary(b) => out.push(b.clone()),
        Tree::Array(a) => a.iter().for_each(|x| binaries(x, out)),
        Tree::Object(o) => {
            // Later duplicate keys replace earlier ones, in the first one's place.
            let mut m: Vec<(&String, &Tree)> = Vec::new();
            for (k, v) in o {
                match m.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(slot) => slot.1 = v,
                    None => m.push((k, v)),
                }
            }
            m.iter().for_each(|(_, x)| binaries(x, out));
        }
    }
}

/// The JSON of `t`, the i-th binary leaf (depth-first) becoming placeholder `num(i)`.
pub fn to_json(t: &Tree, num: &dyn Fn(usize) -> usize, next: &mut usize) -> Value {
    match t {
        Tree::Json(v) => v.clone(),
        Tree::Binary(_) => {
            let mut m = Map::new();
            m.insert("_placeholder".into(), Value::Bool(true));
            m.insert("num".into(), Value::from(num(*next)));
            *next += 1;
            Value::Object(m)
        }
        Tree::Array(a) => Value::Array(a.iter().map(|x| to_json(x, num, next)).collect()),
        Tree::Object(o) => {
            let mut m = Map::new();
            // Walk like `binaries`: duplicates keep the first key's place and the last value.
            let mut order: Vec<(&String, &Tree)> = Vec::new();
            for (k, v) in o {
                match order.iter_mut().find(|(ok, _)| *ok == k) {
                    Some(slot) => slot.1 = v,
                    None => order.push((k, v)),
                }
            }
            for (k, v) in order {
                m.insert(k.clone(), to_json(v, num, next));
            }
            Value::Object(m)
        }
    }
}

/// Arguments with binary values anywhere, and a permutation: the attachment
/// of the i-th binary leaf is stored at index `perm[i]` of the payload.
pub fn args_with_binaries() -> impl Strategy<Value = (Vec<Tree>, Vec<usize>)> {
    proptest::collection::vec(tree(), 0..5).prop_flat_map(|args| {
        let mut bins = Vec::new();
        args.iter().for_each(|a| binaries(a, &mut bins));
        let perm: Vec<usize> = (0..bins.len()).collect();
        (Just(args), Just(perm).prop_shuffle())
    })
}

/// The payload the application would build: attachments in `perm` order.
pub fn payload_of(args: &[Tree], perm: &[usize]) -> Payload {
    let mut bins = Vec::new();
    args.iter().for_each(|a| binaries(a, &mut bins));
    let mut attachments = vec![Bytes::new(); bins.len()];
    for (i, b) in bins.iter().enumerate() {
        attachments[perm[i]] = Bytes::from(b.clone());
    }
    let mut next = 0;
    let json = args
        .iter()
        .map(|a| to_json(a, &|i| perm[i], &mut next))
        .collect();
    Payload {
        args: json,
        attachments,
    }
}

/// The packet a client should decode: placeholders numbered depth-first,
/// attachments in that order.
pub fn expected(
    kind: PacketKind,
    ns: &str,
    id: Option<u64>,
    name: Option<&str>,
    args: &[Tree],
) -> Packet {
    let mut bins = Vec::new();
    args.iter().for_each(|a| binaries(a, &mut bins));
    let mut next = 0;
    let mut data: Vec<Value> = name.map(|n| Value::String(n.into())).into_iter().collect();
    data.extend(args.iter().map(|a| to_json(a, &|i| i, &mut next)));
    let count = bins.len();
    let kind = match (kind, count > 0) {
        (PacketKind::Event, true) => PacketKind::BinaryEvent,
        (PacketKind::Ack, true) => PacketKind::BinaryAck,
        (k, _) => k,
    };
    Packet {
        kind,
        ns: ns.to_string(),
        id,
        data: Some(Value::Array(data)),
        attachments: bins.into_iter().map(Bytes::from).collect(),
        attachment_count: count,
    }
}

pub fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/".to_string()),
        "/[^,\\p{Cc}]{1,40}",
        "/[a-z0-9_-]{1,12}",
    ]
}

pub fn event_name() -> impl Strategy<Value = String> {
    any::<String>().prop_filter("reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

pub fn ack_id() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1000, 0u64..=(1u64 << 53) - 1]
}

/// A CONNECT (with or without an auth object) or a DISCONNECT, as a client
/// should decode it.
pub fn control_packet() -> impl Strategy<Value = Packet> {
    (
        namespace(),
        proptest::option::of(proptest::collection::vec((key(), scalar()), 0..5)),
        any::<bool>(),
    )
        .prop_map(|(ns, data, connect)| {
            let (kind, data) = if connect {
                (
                    PacketKind::Connect,
                    data.map(|d| Value::Object(d.into_iter().collect())),
                )
            } else {
                (PacketKind::Disconnect, None)
            };
            Packet {
                kind,
                ns,
                id: None,
                data,
                attachments: Vec::new(),
                attachment_count: 0,
            }
        })
}

/// One decoder limit: within it (`within`) the decoder gives `Ok(want)`,
/// past it exactly the error `err`.
pub fn check_limit<T: PartialEq + std::fmt::Debug>(
    within: bool,
    r: Result<T, ParseError>,
    want: T,
    err: ParseError,
) -> Result<(), TestCaseError> {
    if within {
        prop_assert_eq!(r, Ok(want));
    } else {
        prop_assert_eq!(r.err(), Some(err));
    }
    Ok(())
}
