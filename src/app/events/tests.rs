//! Holds [`EVENTS`] to SPEC.md (names, error events, permission rules) and
//! [`MESSENGER_EVENTS`] to its §4.22.5, and checks over a real connection
//! that every entry of both is registered with its namespace and refuses
//! with its own error event.

use super::{Who, EVENTS, MESSENGER_EVENTS};

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md"));

/// The text between `start` and the next `end` heading.
fn section<'a>(start: &str, end: &str) -> &'a str {
    let from = SPEC.find(start).expect("SPEC.md section") + start.len();
    let rest = &SPEC[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The backquoted words of `text`, in order.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// SPEC.md §4.7: each `#### ` heading names one or more events; the text
/// under it describes them.
fn spec_events() -> Vec<(&'static str, &'static str)> {
    let events = section("### 4.7 Events", "\n### ");
    let mut out = Vec::new();
    for part in events.split("\n#### ").skip(1) {
        let (heading, body) = part.split_once('\n').unwrap_or((part, ""));
        for name in quoted(heading) {
            out.push((name, body));
        }
    }
    out
}

/// The rule SPEC.md's "Checks" of an event state.
fn spec_rule(body: &str) -> Who {
    let b = body.to_lowercase();
    if b.contains("requester is a student") {
        Who::Student
    } else if b.contains("checks: staff") || b.contains("checks staff") {
        Who::Staff
    } else if b.contains("checks: member") {
        Who::Member
    } else {
        Who::Any
    }
}

#[test]
fn table_lists_the_spec_events_in_order() {
    let spec: Vec<&str> = spec_events().iter().map(|(n, _)| *n).collect();
    let ours: Vec<&str> = EVENTS.iter().map(|e| e.name).collect();
    assert_eq!(ours, spec);
    let mut unique = ours.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ours.len(), "an event is listed twice");
}

#[test]
fn table_error_events_match_the_spec() {
    // §4.5: "… emitted to the requester … as `attendanceError` — or
    // `activeSessionsError` for `a`, `b`, `c`; `topicError` for `d`, `e`
    // — with …": groups separated by ";", each an error event and the
    // events that use it.
    let para = section("**Error event**", "\n\n");
    let (default, rest) = para.split_once(" — or ").expect("error event sentence");
    let default = *quoted(default).last().expect("default error event");
    let rest = rest.split(" — ").next().unwrap_or(rest);
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for group in rest.split(';') {
        let words = quoted(group);
        let (other, events) = words.split_first().expect("other error event");
        assert!(!events.is_empty(), "{other} has no events");
        groups.push((*other, events.to_vec()));
    }
    for e in EVENTS {
        let want = groups
            .iter()
            .find(|(_, events)| events.contains(&e.name))
            .map_or(default, |(other, _)| *other);
        assert_eq!(e.error_event, want, "{}", e.name);
    }
}

#[test]
fn table_permission_rules_match_the_spec() {
    let spec = spec_events();
    for e in EVENTS {
        let (_, body) = spec.iter().find(|(n, _)| *n == e.name).expect("in spec");
        assert_eq!(e.who, spec_rule(body), "{}", e.name);
    }
}

#[test]
fn messenger_table_matches_the_spec() {
    // §4.22.5: one `##### ` heading per event, in the table's order; the
    // error event named once for all; no role rule.
    let part = section("#### 4.22.5 `/messenger` events", "\n---");
    let (intro, _) = part.split_once("\n##### ").expect("event headings");
    let error_event = intro
        .split("the error event is ")
        .nth(1)
        .and_then(|r| quoted(r).first().copied())
        .expect("error event sentence");
    let spec: Vec<(&str, &str)> = part
        .split("\n##### ")
        .skip(1)
        .flat_map(|p| {
            let (heading, body) = p.split_once('\n').unwrap_or((p, ""));
            quoted(heading).into_iter().map(move |n| (n, body))
        })
        .collect();
    let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
    let ours: Vec<&str> = MESSENGER_EVENTS.iter().map(|e| e.name).collect();
    assert_eq!(ours, names);
    for (e, (_, body)) in MESSENGER_EVENTS.iter().zip(&spec) {
        assert_eq!(e.error_event, error_event, "{}", e.name);
        assert_eq!(e.who, spec_rule(body), "{}", e.name);
    }
}

/// A minimal Engine.IO long-polling client, enough to send events and read
/// what comes back.
mod polling {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// One HTTP/1.1 request; the body of a 200 answer.
    pub async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.expect("read");
        let text = String::from_utf8(out).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        }
    }

    fn dechunk(mut body: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            body = &rest[n + 2..];
        }
        out
    }
}

#[tokio::test]
async fn every_table_event_is_registered_and_refuses_with_its_error_event() {
    refuses_every_event_with_null("/", EVENTS).await;
}

#[tokio::test]
async fn every_messenger_event_is_registered_and_refuses_with_its_error_event() {
    refuses_every_event_with_null("/messenger", MESSENGER_EVENTS).await;
}

/// Connects to namespace `ns` over long-polling, sends every event of
/// `table` with a null argument, and checks one refusal per event, in order,
/// as the event's error event with `invalid_payload`.
async fn refuses_every_event_with_null(ns: &str, table: &[super::EventSpec]) {
    use std::sync::Arc;

    use serde_json::Value;

    let (app, io, user, dir) =
        crate::app::test_support::app_with_student("app-events", b"test secret");
    let token = app.keys().issue(&user);
    let listener = crate::http::bind("127.0.0.1", 0).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_app: Arc<crate::app::App> = app.clone();
    tokio::spawn(crate::http::serve(listener, move |req, peer| {
        crate::app::api::route(server_app.clone(), io.clone(), req, peer)
    }));
    // The namespace prefix of every packet (`/` has none).
    let nsp = if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    };

    let base = "/socket.io/?EIO=4&transport=polling";
    let open = polling::request(addr, "GET", base, "").await;
    let handshake: Value = serde_json::from_str(&open[1..]).expect("handshake");
    let sid = handshake["sid"].as_str().expect("sid");
    let path = format!("{base}&sid={sid}");
    let connect = format!(r#"40{nsp}{{"token":"{token}"}}"#);
    assert_eq!(polling::request(addr, "POST", &path, &connect).await, "ok");
    let connected = polling::request(addr, "GET", &path, "").await;
    assert!(connected.starts_with(&format!("40{nsp}{{")), "{connected}");

    // Every event with a null argument: each handler refuses it.
    let sends: Vec<String> = table
        .iter()
        .map(|e| format!(r#"42{nsp}["{}",null]"#, e.name))
        .collect();
    assert_eq!(
        polling::request(addr, "POST", &path, &sends.join("\u{1e}")).await,
        "ok"
    );
    let mut got: Vec<Value> = Vec::new();
    let prefix = format!("42{nsp}");
    let read = async {
        while got.len() < table.len() {
            let body = polling::request(addr, "GET", &path, "").await;
            for packet in body.split('\u{1e}') {
                if let Some(event) = packet.strip_prefix(prefix.as_str()) {
                    got.push(serde_json::from_str(event).expect("event"));
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("an answer for every event");
    // One refusal per event, in the order sent (one pipeline per socket).
    for (e, packet) in table.iter().zip(&got) {
        assert_eq!(packet[0], e.error_event, "{}: {packet}", e.name);
        assert_eq!(packet[1]["code"], "invalid_payload", "{}: {packet}", e.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
