//! The long-polling transport: a GET waits for what is queued for the client,
//! a POST carries the client's packets.
//!
//! Long-polling has no task of its own: each request is answered inside its
//! HTTP exchange, and the request/session rules (one GET and one POST at a
//! time, the queue drain, the noop that releases a GET during an upgrade)
//! are methods of the [`Connection`]; this file turns them into responses.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::{BodyExt, Limited};

use super::dispatch::{handle_packet, EngineHandler, EngineInner, Session};
use super::error::{CloseReason, HttpError, TransportFault};
use super::packet::{decode_payload, encode_payload, PacketType};
use super::session::{Connection, PollStep, PostRefusal};
use crate::http::{response, Body};

/// Answers a long-poll GET: at once with whatever is queued, else when
/// something is (or with a noop when the session closes or upgrades).
pub(crate) async fn get(conn: &Connection) -> Response<Body> {
    if let Err(e) = conn.begin_get() {
        return e.response();
    }
    let _pending = Pending { conn, get: true };
    loop {
        match conn.poll_step() {
            PollStep::Frames(frames) => return payload_response(encode_payload(&frames)),
            PollStep::Noop => return payload_response(vec![PacketType::Noop.as_char()]),
            PollStep::Wait => conn.poll_wakeup().await,
        }
    }
}

/// Answers a POST: reads its body (at most `maxPayload`, within the body
/// deadline of [`super::AbuseLimits::body_deadline`]) and hands each packet
/// to the engine.
pub(crate) async fn post<H, B>(
    engine: &EngineInner<H>,
    session: &Arc<Session<H>>,
    req: Request<B>,
) -> Response<Body>
where
    H: EngineHandler,
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = &session.conn;
    let binary_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/octet-stream"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match conn.begin_post(binary_body, declared) {
        Ok(()) => {}
        Err(PostRefusal::Http(e)) => return e.response(),
        Err(PostRefusal::TooLarge) => return too_large(),
    }
    let _pending = Pending { conn, get: false };
    let cfg = engine.config();
    let max = cfg.max_payload;
    let within = cfg.abuse.body_deadline(declared, max);
    let read = Limited::new(req.into_body(), max).collect();
    let body = match tokio::time::timeout(within, read).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                conn.close_with(CloseReason::PayloadTooLarge);
                return too_large();
            }
            return HttpError::BadRequest.response();
        }
        Err(_) => {
            // Slower than the rate floor (SPEC.md §2.16): the session ends,
            // and the request with it.
            conn.close_with(CloseReason::TransportError(TransportFault::SlowBody));
            return response(408, None, Bytes::new());
        }
    };
    let received = &conn.stats().received[0];
    received.bytes.add(body.len() as u64);
    let (packets, err) = decode_payload(body);
    received.packets.add(packets.len() as u64);
    for p in packets {
        if !handle_packet(engine, session, p) {
            return post_answer(conn);
        }
    }
    if err.is_some() {
        conn.close_with(CloseReason::ParseError);
    }
    post_answer(conn)
}

/// Ends the pending GET or the running POST when the request ends, even
/// when the client goes away and hyper drops the request future.
struct Pending<'a> {
    conn: &'a Connection,
    get: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.get {
            self.conn.end_get();
        } else {
            self.conn.end_post();
        }
    }
}

/// A polling payload (the GET answer, also the polling handshake's).
pub(crate) fn payload_response(body: Vec<u8>) -> Response<Body> {
    response(200, Some("text/plain; charset=UTF-8"), body)
}

fn too_large() -> Response<Body> {
    response(413, None, Bytes::new())
}

/// The answer to a POST whose packets have been handled: error 3 when the
/// session ended on a protocol violation (an undecodable record, a `0` or
/// `2` from the client, or a violation the upper layer found in a message),
/// else `ok` (also when the client closed the session with `1`).
fn post_answer(conn: &Connection) -> Response<Body> {
    if conn.close_reason() == Some(CloseReason::ParseError) {
        HttpError::BadRequest.response()
    } else {
        response(200, Some("text/html"), Bytes::from_static(b"ok"))
    }
}
