//! The HTTP API's abuse guards (SPEC.md §4.24): cross-origin state-changing
//! requests, and the refusals of the login and registration limits (429
//! `rate_limited` with `Retry-After`).

use std::net::IpAddr;

use http::{header, HeaderValue, Method, Request, Response};

use super::error;
use crate::app::abuse::{HashBusy, Refusal};
use crate::app::{App, ErrorCode};
use crate::http::Body;
use crate::socketio::Cors;

/// `403 forbidden_origin` for a POST, PATCH, PUT or DELETE whose `Origin`
/// is not allowed by the CORS settings (no `Origin`: not a browser's
/// cross-origin request, allowed; no CORS settings: no origin is allowed).
pub(super) fn foreign_origin<B>(req: &Request<B>, cors: Option<&Cors>) -> Option<Response<Body>> {
    let m = req.method();
    if !(m == Method::POST || m == Method::PATCH || m == Method::PUT || m == Method::DELETE) {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    let origin = origin.to_str().ok();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let allowed = origin.is_some_and(|o| {
        crate::engine::same_origin(o, host)
            || cors.is_some_and(|c| c.allow_origin(Some(o)).is_some())
    });
    (!allowed).then(|| {
        error(
            403,
            ErrorCode::ForbiddenOrigin,
            "cross-origin request from an origin that is not allowed",
        )
    })
}

/// `429 rate_limited` with `Retry-After`.
pub(super) fn too_many(r: Refusal, message: &str) -> Response<Body> {
    let mut res = error(429, ErrorCode::RateLimited, message);
    if let Ok(v) = HeaderValue::from_str(&r.retry_after_secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The refusal of a full hashing queue.
pub(super) fn hash_busy(_: HashBusy) -> Response<Body> {
    too_many(
        Refusal {
            retry_after_secs: 1,
        },
        "too many password checks at once",
    )
}

/// The per-address login bucket: the refusal, if any.
pub(super) fn login_address(app: &App, ip: IpAddr) -> Option<Response<Body>> {
    app.abuse()
        .login
        .take(ip)
        .err()
        .map(|r| too_many(r, "too many login attempts from this address"))
}

/// The per-account backoff: the refusal, if any.
pub(super) fn login_account(app: &App, account: &str, ip: IpAddr) -> Option<Response<Body>> {
    app.abuse()
        .accounts
        .check(account, ip)
        .err()
        .map(|r| too_many(r, "too many failed logins for this account"))
}

/// The per-address registration bucket: the refusal, if any.
pub(super) fn register_address(app: &App, ip: IpAddr) -> Option<Response<Body>> {
    app.abuse()
        .register
        .take(ip)
        .err()
        .map(|r| too_many(r, "too many registrations from this address"))
}
