//! Engine.IO and Socket.IO encode/decode: text, binary and acks at several sizes.
//!
//! `cargo bench --bench codec` (a few seconds per group).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rollcall::engine::packet::{decode_payload, encode_payload};
use rollcall::engine::{Frame, Packet as EioPacket, Utf8Bytes};
use rollcall::socketio::packet::{encode_ack, encode_event, Limits, Packet as SioPacket};
use rollcall::socketio::Payload;
use serde_json::json;

mod common;

/// Payload sizes (bytes of the string argument).
const SIZES: [usize; 3] = [32, 1024, 65536];

fn text_of(len: usize) -> String {
    "abcdefghijklmnopqrstuvwxyz0123456789"
        .chars()
        .cycle()
        .take(len)
        .collect()
}

fn engineio(c: &mut Criterion) {
    let mut g = common::quick_group(c, "engineio");
    for &n in &SIZES {
        let body = text_of(n);
        let wire: Utf8Bytes = format!("4{body}").into();
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("decode_text", n), &wire, |b, w| {
            b.iter(|| EioPacket::decode_text(black_box(w.clone()), false).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("encode_text", n), &body, |b, s| {
            b.iter(|| Frame::message(black_box(s)))
        });
        let bin = Bytes::from(vec![7u8; n]);
        g.bench_with_input(BenchmarkId::new("encode_binary", n), &bin, |b, d| {
            b.iter(|| Frame::binary(black_box(d)))
        });
        // Long-polling: ten packets, one of them binary (base64 on the wire).
        let frames: Vec<Frame> = (0..9)
            .map(|_| Frame::message(&body))
            .chain(std::iter::once(Frame::binary(&bin)))
            .collect();
        g.throughput(Throughput::Bytes(10 * n as u64));
        g.bench_with_input(
            BenchmarkId::new("encode_payload_x10", n),
            &frames,
            |b, f| b.iter(|| encode_payload(black_box(f))),
        );
        let payload = Bytes::from(encode_payload(&frames));
        g.bench_with_input(
            BenchmarkId::new("decode_payload_x10", n),
            &payload,
            |b, p| b.iter(|| decode_payload(black_box(p.clone()))),
        );
    }
    g.finish();
}

fn socketio(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = common::quick_group(c, "socketio");
    for &n in &SIZES {
        let s = text_of(n);
        g.throughput(Throughput::Bytes(n as u64));

        // A typical event: a name and an object argument holding the text.
        let obj = json!({"room": "lobby", "user": 42, "text": s, "tags": ["a", "b"]});
        let event = format!(r#"2["message",{obj}]"#);
        g.bench_with_input(BenchmarkId::new("decode_event", n), &event, |b, e| {
            b.iter(|| SioPacket::decode(black_box(e), &limits).unwrap())
        });
        let ack = format!(r#"3/chat,1234[{obj}]"#);
        g.bench_with_input(BenchmarkId::new("decode_ack", n), &ack, |b, e| {
            b.iter(|| SioPacket::decode(black_box(e), &limits).unwrap())
        });

        let payload = Payload::one(obj.clone());
        g.bench_with_input(BenchmarkId::new("encode_event", n), &payload, |b, p| {
            b.iter(|| encode_event("/", black_box("message"), black_box(p), None, None))
        });
        g.bench_with_input(
            BenchmarkId::new("encode_event_ack_id_ns", n),
            &payload,
            |b, p| b.iter(|| encode_event("/chat", "message", black_box(p), Some(1234), None)),
        );
        g.bench_with_input(BenchmarkId::new("encode_ack", n), &payload, |b, p| {
            b.iter(|| encode_ack("/", black_box(1234), black_box(p)))
        });
        let mut bin = Payload::default();
        let ph = bin.add_binary(Bytes::from(vec![1u8; n]));
        bin.args.push(json!({"name": "f"}));
        bin.args.push(ph);
        g.bench_with_input(BenchmarkId::new("encode_binary_event", n), &bin, |b, p| {
            b.iter(|| encode_event("/", "upload", black_box(p), None, None))
        });
    }
    // A binary event's text part (its attachment follows as a binary frame).
    let bin_event = r#"51-["upload",{"name":"f","data":{"_placeholder":true,"num":0}}]"#;
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_binary_event_text", |b| {
        b.iter(|| SioPacket::decode(black_box(bin_event), &limits).unwrap())
    });
    // What a broadcast encodes: the contract's `bcast` with a small object.
    let small = Payload::one(json!({"s": 1, "t": 123456789012u64}));
    g.bench_function("encode_bcast_small", |b| {
        b.iter(|| encode_event("/", "bcast", black_box(&small), None, None))
    });
    g.finish();
}

criterion_group!(benches, engineio, socketio);
criterion_main!(benches);
