//! Binary attachment reassembly, through the real server: a `SocketIo`
//! with namespaces `/` and `/admin`, fed an arbitrary sequence of engine
//! messages (Socket.IO packets, binary attachments: too few, too many,
//! interleaved with text) over long-polling POSTs (public API) or over an
//! in-process WebSocket (`Engine::attach_websocket`).
//!
//! A model of the reassembly rules (a text packet while attachments are
//! due, or an attachment with none due, closes the connection; so does a
//! packet for a namespace not joined) predicts which events the application
//! sees, with which arguments and attachments, and whether the connection
//! ends; the server must agree exactly.
//!
//! Input: a flags byte (bit 0: WebSocket, bits 1-2: POST batch size), a
//! byte for the attachment limit, then records separated by 0xFF: a record
//! starting with 0x00 is a binary message (the rest), any other record is a
//! text message (a Socket.IO packet).
#![no_main]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rollcall::engine::packet::RECORD_SEPARATOR;
use rollcall::engine::Connection;
use rollcall::socketio::packet::{Packet, PacketKind};
use rollcall::socketio::{Limits, Payload, SocketIo, SocketIoConfig};
use rollcall_fuzz::{client_frame, read_all, read_response, request, runtime, settle, Input};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const NAMESPACES: [&str; 2] = ["/", "/admin"];

#[derive(Debug, Clone, PartialEq)]
struct Event {
    ns: String,
    name: String,
    args: Vec<Value>,
    attachments: Vec<Bytes>,
    ack: bool,
}

#[derive(Debug)]
enum Msg {
    Text(String),
    Binary(Vec<u8>),
}

/// The reassembly and routing rules of the Socket.IO server.
struct Model {
    limits: Limits,
    partial: Option<Packet>,
    joined: HashSet<String>,
    closed: bool,
    events: Vec<Event>,
}

impl Model {
    fn message(&mut self, m: &Msg) {
        if self.closed {
            return;
        }
        match m {
            Msg::Text(t) => {
                if self.partial.is_some() {
                    self.closed = true;
                    return;
                }
                match Packet::decode(t, &self.limits) {
                    Err(_) => self.closed = true,
                    Ok(p) if p.attachment_count > 0 => self.partial = Some(p),
                    Ok(p) => self.dispatch(p),
                }
            }
            Msg::Binary(b) => match self.partial.as_mut() {
                None => self.closed = true,
                Some(p) => {
                    p.attachments.push(Bytes::copy_from_slice(b));
                    if p.attachments.len() == p.attachment_count {
                        let p = self.partial.take().unwrap();
                        self.dispatch(p);
                    }
                }
            },
        }
    }

    fn dispatch(&mut self, p: Packet) {
        if p.kind == PacketKind::Connect {
            if NAMESPACES.contains(&p.ns.as_str()) && !self.joined.insert(p.ns.clone()) {
                self.closed = true; // a second CONNECT to a joined namespace
            }
            // An unknown namespace gets CONNECT_ERROR and changes nothing.
            return;
        }
        if !self.joined.contains(&p.ns) {
            self.closed = true;
            return;
        }
        match p.kind {
            PacketKind::Event | PacketKind::BinaryEvent => {
                let name = p.event_name().unwrap_or_default();
                let ack = p.id.is_some();
                let ns = p.ns.clone();
                let payload = p.into_payload();
                self.events.push(Event {
                    ns,
                    name,
                    args: payload.args,
                    attachments: payload.attachments,
                    ack,
                });
            }
            PacketKind::Disconnect => {
                self.joined.remove(&p.ns);
            }
            _ => {}
        }
    }
}

#[derive(Default)]
struct Seen {
    events: Vec<Event>,
    conns: Vec<Arc<Connection>>,
}

fn server(limits: Limits, seen: Arc<Mutex<Seen>>) -> SocketIo {
    let io = SocketIo::new(SocketIoConfig::builder().limits(limits).build());
    for ns in NAMESPACES {
        let seen = seen.clone();
        io.ns(ns, move |socket| {
            seen.lock().unwrap().conns.push(socket.conn().clone());
            let seen = seen.clone();
            socket.on_any(move |s, name, payload: Payload, ack| {
                seen.lock().unwrap().events.push(Event {
                    ns: s.ns().name().to_string(),
                    name: name.to_string(),
                    args: payload.args.clone(),
                    attachments: payload.attachments.clone(),
                    ack: ack.is_some(),
                });
                // Answer acks with the same payload: exercises BINARY_ACK encoding.
                if let Some(ack) = ack {
                    let _ = ack.send(payload);
                }
            });
        });
    }
    io
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let websocket = flags & 1 == 1;
    let batch = 1 + ((flags >> 1) & 3) as usize;
    let limits = Limits {
        max_attachments: 1 + input.byte() as usize % 12,
        ..Limits::default()
    };
    let msgs: Vec<Msg> = input
        .rest()
        .split(|&b| b == 0xff)
        .take(512)
        .map(|r| match r.split_first() {
            Some((0, rest)) => Msg::Binary(rest.to_vec()),
            _ => {
                let t = String::from_utf8_lossy(r).into_owned();
                // On polling a record separator would split the message.
                Msg::Text(if websocket {
                    t
                } else {
                    t.replace('\u{1e}', "")
                })
            }
        })
        .collect();

    let mut model = Model {
        limits,
        partial: None,
        joined: HashSet::new(),
        closed: false,
        events: Vec::new(),
    };
    for m in &msgs {
        model.message(m);
    }

    let seen = Arc::new(Mutex::new(Seen::default()));
    let io = server(limits, seen.clone());
    let rt = runtime();
    rt.block_on(async {
        let mut ws_client = None;
        let mut poll_query = None;
        if websocket {
            let (mut client, server_end) = tokio::io::duplex(1 << 20);
            io.engine()
                .attach_websocket(None, server_end)
                .expect("attach");
            let mut sink = Vec::new();
            for m in &msgs {
                let frame = match m {
                    Msg::Text(t) => client_frame(true, 1, format!("4{t}").as_bytes(), [1, 2, 3, 4]),
                    Msg::Binary(b) => client_frame(true, 2, b, [5, 6, 7, 8]),
                };
                if client.write_all(&frame).await.is_err() {
                    break;
                }
                read_all(&mut client, &mut sink).await;
                sink.clear();
            }
            settle().await;
            read_all(&mut client, &mut sink).await;
            ws_client = Some(client);
        } else {
            let (status, body) = read_response(
                io.handle(
                    request("GET", "EIO=4&transport=polling", Vec::new(), None),
                    rollcall_fuzz::peer(),
                )
                .await,
            )
            .await;
            assert_eq!(status, 200);
            let open: Value = serde_json::from_slice(&body[1..]).expect("open packet");
            let sid = open["sid"].as_str().expect("sid").to_string();
            let query = format!("EIO=4&transport=polling&sid={sid}");
            for group in msgs.chunks(batch) {
                let mut body = Vec::new();
                for (i, m) in group.iter().enumerate() {
                    if i > 0 {
                        body.push(RECORD_SEPARATOR);
                    }
                    match m {
                        Msg::Text(t) => {
                            body.push(b'4');
                            body.extend_from_slice(t.as_bytes());
                        }
                        Msg::Binary(b) => {
                            body.push(b'b');
                            body.extend_from_slice(
                                base64::engine::general_purpose::STANDARD
                                    .encode(b)
                                    .as_bytes(),
                            );
                        }
                    }
                }
                let res = io
                    .handle(request("POST", &query, body, None), rollcall_fuzz::peer())
                    .await;
                let (status, _) = read_response(res).await;
                settle().await;
                if status != 200 {
                    break;
                }
            }
            settle().await;
            poll_query = Some(query);
        }
        {
            let s = seen.lock().unwrap();
            assert_eq!(
                s.events, model.events,
                "events seen by the application differ from the model"
            );
        }
        let open = io.client_count() == 1;
        assert_eq!(
            open, !model.closed,
            "connection open: {open}, model says closed: {}",
            model.closed
        );
        // Tear down: close the connection so sockets leave their namespaces.
        let conns = std::mem::take(&mut seen.lock().unwrap().conns);
        for c in conns {
            c.close();
        }
        // A connection that joined no namespace: the client closes it.
        if let Some(mut client) = ws_client {
            let _ = client.write_all(&client_frame(true, 1, b"1", [0; 4])).await;
            settle().await;
        }
        if let Some(query) = poll_query {
            let res = io
                .handle(
                    request("POST", &query, b"1".to_vec(), None),
                    rollcall_fuzz::peer(),
                )
                .await;
            let _ = read_response(res).await;
        }
        settle().await;
        assert_eq!(io.client_count(), 0);
    });
});
