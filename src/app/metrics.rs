//! `GET /metrics`, in the Prometheus text format (version 0.0.4).
//!
//! The layers below count into their own plain counter structs
//! ([`crate::engine::EngineStats`], [`crate::socketio::SocketIoStats`],
//! [`crate::store::StoreStats`], [`super::stats::AppStats`], the accept
//! loop's counter in [`crate::http`]) and know nothing of Prometheus. This
//! module is the one collector (`prometheus-client`'s collector pattern): at
//! each scrape it reads those counters and encodes them, so the hot path
//! pays a relaxed add on its own shard and nothing else. Gauges (sessions
//! and sockets by transport) are counted at scrape time from the session
//! table and the namespaces.
//!
//! Access: with `METRICS_TOKEN` set a scrape needs `Authorization: Bearer
//! <token>` (compared in constant time); with `METRICS_ADDR` set the
//! endpoint is served only on that address (see `serve_separate`).

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use serde_json::json;

use super::stats::{mark_method, Route};
use super::App;
use crate::engine::stats::{CLOSE_REASONS, TRANSPORTS};
use crate::http::{response, Body};
use crate::socketio::stats::DISCONNECT_REASONS;
use crate::socketio::SocketIo;
use crate::util::counter::{Histogram, HistogramSnapshot, BUCKETS};

/// Content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Reads every layer's counters at scrape time.
struct Collected {
    app: Arc<App>,
    io: SocketIo,
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Collected")
    }
}

type Res = Result<(), std::fmt::Error>;

fn packets() -> Option<Unit> {
    Some(Unit::Other("packets".into()))
}

/// One counter without labels.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<Unit>, v: u64) -> Res {
    let mut m = e.encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// A family of counters or gauges, one per label set.
fn family<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    (name, help, unit, kind): (&str, &str, Option<Unit>, MetricType),
    items: impl IntoIterator<Item = (L, u64)>,
) -> Res {
    let mut m = e.encode_descriptor(name, help, unit.as_ref(), kind)?;
    for (labels, v) in items {
        let mut f = m.encode_family(&labels)?;
        match kind {
            MetricType::Gauge => f.encode_gauge(&(v as i64))?,
            _ => f.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
        }
    }
    Ok(())
}

/// A histogram of a [`Histogram`], its values divided by `scale` (e.g.
/// microseconds to seconds).
fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    s: HistogramSnapshot,
    scale: f64,
) -> Res {
    let mut m = e.encode_descriptor(name, help, unit.as_ref(), MetricType::Histogram)?;
    let mut prev = 0;
    let buckets: Vec<(f64, u64)> = (0..BUCKETS)
        .map(|i| {
            let n = s.cumulative[i] - prev;
            prev = s.cumulative[i];
            (Histogram::bound(i) as f64 / scale, n)
        })
        .collect();
    m.encode_histogram::<NoLabelSet>(s.sum as f64 / scale, s.count, &buckets, None)
}

impl Collector for Collected {
    fn encode(&self, mut e: DescriptorEncoder) -> Res {
        let (counter_t, gauge_t) = (MetricType::Counter, MetricType::Gauge);
        let engine = self.io.engine();
        let es = engine.stats();
        let by_transport = |c: &[crate::util::counter::Counter; 2]| {
            let v: Vec<_> = TRANSPORTS
                .iter()
                .zip(c)
                .map(|(t, c)| ([("transport", *t)], c.get()))
                .collect();
            v
        };
        // ---- connections (gauges)
        let sessions = engine.sessions_by_transport();
        family(
            &mut e,
            (
                "rollcall_engine_sessions",
                "Open Engine.IO sessions by current transport.",
                None,
                gauge_t,
            ),
            TRANSPORTS
                .iter()
                .zip(sessions)
                .map(|(t, n)| ([("transport", *t)], n as u64)),
        )?;
        let conns = self.io.connections_by_namespace();
        family(
            &mut e,
            (
                "rollcall_socketio_connections",
                "Connected Socket.IO sockets by namespace and transport.",
                None,
                gauge_t,
            ),
            conns.iter().flat_map(|c| {
                [
                    (
                        [
                            ("namespace", c.namespace.clone()),
                            ("transport", "polling".to_string()),
                        ],
                        c.polling as u64,
                    ),
                    (
                        [
                            ("namespace", c.namespace.clone()),
                            ("transport", "websocket".to_string()),
                        ],
                        c.websocket as u64,
                    ),
                ]
            }),
        )?;
        // ---- Engine.IO
        family(
            &mut e,
            (
                "rollcall_engine_handshakes",
                "Engine.IO sessions opened, by handshake transport.",
                None,
                counter_t,
            ),
            by_transport(&es.handshakes),
        )?;
        counter(
            &mut e,
            "rollcall_engine_upgrades",
            "Polling sessions upgraded to WebSocket.",
            None,
            es.upgrades.get(),
        )?;
        family(
            &mut e,
            (
                "rollcall_engine_disconnects",
                "Engine.IO sessions ended, by reason (buffer_full: slow consumers).",
                None,
                counter_t,
            ),
            CLOSE_REASONS
                .iter()
                .zip(&es.closes)
                .map(|(r, c)| ([("reason", *r)], c.get())),
        )?;
        let traffic = |t: &[crate::engine::stats::Traffic; 2], bytes: bool| {
            let v: Vec<_> = TRANSPORTS
                .iter()
                .zip(t)
                .map(|(n, t)| {
                    (
                        [("transport", *n)],
                        if bytes {
                            t.bytes.get()
                        } else {
                            t.packets.get()
                        },
                    )
                })
                .collect();
            v
        };
        family(
            &mut e,
            (
                "rollcall_engine_received",
                "Engine.IO packets received from clients.",
                packets(),
                counter_t,
            ),
            traffic(&es.received, false),
        )?;
        family(
            &mut e,
            (
                "rollcall_engine_received",
                "Bytes received from clients (WebSocket frames as read, polling bodies).",
                Some(Unit::Bytes),
                counter_t,
            ),
            traffic(&es.received, true),
        )?;
        family(
            &mut e,
            (
                "rollcall_engine_sent",
                "Engine.IO packets written to clients.",
                packets(),
                counter_t,
            ),
            TRANSPORTS
                .iter()
                .enumerate()
                .map(|(i, t)| ([("transport", *t)], es.sent_packets(i))),
        )?;
        family(
            &mut e,
            (
                "rollcall_engine_sent",
                "Bytes written to clients (WebSocket frames, polling packets).",
                Some(Unit::Bytes),
                counter_t,
            ),
            TRANSPORTS
                .iter()
                .enumerate()
                .map(|(i, t)| ([("transport", *t)], es.sent_bytes(i))),
        )?;
        family(&mut e, ("rollcall_engine_websocket_writes", "WebSocket packets written by their sender (direct) or by the connection's task (queued).", packets(), counter_t),
            [([("path", "direct")], es.direct_frames.get()), ([("path", "queued")], es.queued_frames.get())])?;
        counter(
            &mut e,
            "rollcall_engine_volatile_dropped",
            "Volatile packets dropped because the connection could not take them at once.",
            packets(),
            es.volatile_dropped.get(),
        )?;
        counter(
            &mut e,
            "rollcall_engine_queue_full_dropped",
            "Packets refused by a full outbound queue.",
            packets(),
            es.overflow_dropped.get(),
        )?;
        histogram(&mut e, "rollcall_engine_delivery_latency", "Time from a packet's encoding to its write on the socket (oldest packet of each write).", Some(Unit::Seconds), es.delivery_latency_us.snapshot(), 1e6)?;
        histogram(
            &mut e,
            "rollcall_engine_queue_depth",
            "Packets taken from a session's outbound queue per write.",
            packets(),
            es.queue_depth.snapshot(),
            1.0,
        )?;
        // ---- Socket.IO
        let ss = self.io.stats();
        counter(
            &mut e,
            "rollcall_socketio_connects",
            "Sockets connected.",
            None,
            ss.connects.get(),
        )?;
        counter(
            &mut e,
            "rollcall_socketio_connect_refusals",
            "CONNECTs refused by a middleware.",
            None,
            ss.connect_refusals.get(),
        )?;
        counter(
            &mut e,
            "rollcall_socketio_invalid_namespace",
            "CONNECTs for an unknown namespace.",
            None,
            ss.invalid_namespace.get(),
        )?;
        family(
            &mut e,
            (
                "rollcall_socketio_disconnects",
                "Sockets disconnected, by reason.",
                None,
                counter_t,
            ),
            DISCONNECT_REASONS
                .iter()
                .zip(&ss.disconnects)
                .map(|(r, c)| ([("reason", *r)], c.get())),
        )?;
        family(
            &mut e,
            (
                "rollcall_socketio_recoveries",
                "Connection state recovery attempts, by result.",
                None,
                counter_t,
            ),
            [
                ([("result", "recovered")], ss.recoveries[0].get()),
                ([("result", "not_recovered")], ss.recoveries[1].get()),
            ],
        )?;
        counter(
            &mut e,
            "rollcall_socketio_broadcasts",
            "Broadcasts (without ack).",
            None,
            ss.broadcasts.get(),
        )?;
        counter(
            &mut e,
            "rollcall_socketio_deliveries",
            "Sockets selected by broadcasts on this node.",
            None,
            ss.deliveries.get(),
        )?;
        // ---- store
        let store = self.app.store();
        let st = store.commit_stats();
        counter(
            &mut e,
            "rollcall_store_writes",
            "Changes written to the store.",
            None,
            store.writes(),
        )?;
        counter(
            &mut e,
            "rollcall_store_commits",
            "Group commits (flush and fdatasync) that succeeded.",
            None,
            st.commits.get(),
        )?;
        counter(
            &mut e,
            "rollcall_store_commit_failures",
            "Group commits that failed.",
            None,
            st.commit_failures.get(),
        )?;
        histogram(
            &mut e,
            "rollcall_store_commit_latency",
            "Duration of each group commit.",
            Some(Unit::Seconds),
            st.commit_latency_us.snapshot(),
            1e6,
        )?;
        // ---- application
        let app = self.app.stats();
        let requests = app.requests();
        family(
            &mut e,
            (
                "rollcall_app_requests",
                "Application requests answered, by event and result.",
                None,
                counter_t,
            ),
            requests
                .iter()
                .map(|(ev, r, n)| ([("event", *ev), ("result", *r)], *n)),
        )?;
        let mut marks: Vec<([(&str, &str); 2], u64)> = Vec::new();
        for (ev, r, n) in &requests {
            let Some(method) = mark_method(ev) else {
                continue;
            };
            match marks
                .iter_mut()
                .find(|(l, _)| l[0].1 == method && l[1].1 == *r)
            {
                Some((_, total)) => *total += n,
                None => marks.push(([("method", method), ("result", r)], *n)),
            }
        }
        family(
            &mut e,
            (
                "rollcall_attendance_marks",
                "Attendance marks (teacher, bulk) and self check-ins, by result.",
                None,
                counter_t,
            ),
            marks,
        )?;
        family(
            &mut e,
            (
                "rollcall_auth_refusals",
                "Connections refused by authentication, by code.",
                None,
                counter_t,
            ),
            app.auth_refusals()
                .into_iter()
                .map(|(c, n)| ([("code", c)], n)),
        )?;
        family(
            &mut e,
            (
                "rollcall_http_requests",
                "HTTP requests by route pattern and status.",
                None,
                counter_t,
            ),
            app.http_requests()
                .into_iter()
                .map(|(r, s, n)| ([("route", r.to_string()), ("status", s.to_string())], n)),
        )?;
        counter(
            &mut e,
            "rollcall_http_accept_errors",
            "Failed accepts on the listening socket.",
            None,
            crate::http::accept_errors(),
        )?;
        family(
            &mut e,
            (
                "rollcall_log_suppressed_lines",
                "Log lines held back by the log rate limits, by kind.",
                None,
                counter_t,
            ),
            super::logging::suppressed()
                .into_iter()
                .map(|(k, n)| ([("kind", k)], n)),
        )
    }
}

/// The whole exposition.
pub fn render(app: &Arc<App>, io: &SocketIo) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Collected {
        app: app.clone(),
        io: io.clone(),
    }));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// Equal in time independent of where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers `GET /metrics`: 401 without the configured bearer token.
pub fn serve<B>(app: &Arc<App>, io: &SocketIo, req: &Request<B>) -> Response<Body> {
    if let Some(token) = app.config().metrics_token.as_deref() {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let code = match given {
            None => Some("missing_token"),
            Some(g) if !same(g.as_bytes(), token.as_bytes()) => Some("invalid_token"),
            Some(_) => None,
        };
        if let Some(code) = code {
            let body = json!({"ok": false, "error": {"code": code, "message": "metrics need the bearer token"}});
            let mut res = response(401, Some("application/json"), body.to_string());
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return super::logging::mark_refusal(res, code);
        }
    }
    response(200, Some(CONTENT_TYPE), render(app, io))
}

/// With `METRICS_ADDR` set: binds it, prints `metrics on <address>` and
/// serves `/metrics` there ([`serve_separate`]) in a task of its own.
pub async fn start_separate(app: &Arc<App>, io: &SocketIo) -> std::io::Result<()> {
    let Some(addr) = &app.config().metrics_addr else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("metrics on {}", listener.local_addr()?);
    tokio::spawn(serve_separate(app.clone(), io.clone(), listener));
    Ok(())
}

/// The metrics listener of `METRICS_ADDR`: `/metrics` only, everything
/// else 404.
pub async fn serve_separate(app: Arc<App>, io: SocketIo, listener: tokio::net::TcpListener) {
    crate::http::serve(listener, move |req, _addr| {
        let (app, io) = (app.clone(), io.clone());
        async move {
            let res = if req.method() == http::Method::GET && req.uri().path() == "/metrics" {
                serve(&app, &io, &req)
            } else {
                response(
                    404,
                    Some("application/json"),
                    r#"{"ok":false,"error":{"code":"not_found","message":"no such route"}}"#,
                )
            };
            app.stats().http(Route::metrics(), res.status());
            super::logging::log_http_refusal("/metrics", &res);
            res
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
