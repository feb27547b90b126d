//! The HTTP routes beside the Socket.IO endpoint: login, registration,
//! health, and a session's attendance as CSV; the platform routes are in
//! `platform` (SPEC.md §4.16–§4.19).

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use super::auth::{hash_password, verify_password};
use super::stats::{Route, ROUTES};
use super::{App, ErrorCode};
use crate::http::{response, Body};
use crate::socketio::{Cors, SocketIo};
use crate::store::{Role, User};
use tracing::Instrument;

mod admin;
mod client_bundle;
mod enrol;
mod limits;
mod paging;
mod platform;
mod platform_b;
mod reports;
mod routes;
mod setup;

/// The paths of the router's route table, in order (a path served for
/// several methods comes once per method).
pub(crate) fn route_paths() -> impl Iterator<Item = &'static str> {
    routes::ROUTES.iter().map(|(_, p)| *p)
}

/// The route table's pattern for `method` and `path`, if it has one.
pub(crate) fn route_path(method: &Method, path: &str) -> Option<&'static str> {
    routes::pattern(method, path)
}

/// A hash to verify against when the user is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("no such user"));

/// Largest accepted request body for the JSON routes.
const MAX_BODY: usize = 64 * 1024;

fn json_response(status: u16, v: Value) -> Response<Body> {
    response(status, Some("application/json"), v.to_string())
}

/// An error answer with one of the application's codes.
fn error(status: u16, code: ErrorCode, message: &str) -> Response<Body> {
    error_with(status, code.code(), message)
}

/// An error answer: `{"ok":false,"error":{"code","message"}}`, marked
/// as a refusal with its code (logged by [`route`]).
fn error_with(status: u16, code: &'static str, message: &str) -> Response<Body> {
    let res = json_response(
        status,
        json!({"ok": false, "error": {"code": code, "message": message}}),
    );
    super::logging::mark_refusal(res, code)
}

/// A user as the API shows it (no password hash).
pub fn user_json(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "name": u.name, "role": u.role.as_str(), "active": u.active})
}

/// Answers one request: Socket.IO under `/socket.io/`, the API under `/api/`.
pub async fn route(
    app: Arc<App>,
    io: SocketIo,
    req: Request<hyper::body::Incoming>,
    addr: SocketAddr,
) -> Response<Body> {
    let route = if io.matches_path(req.uri().path()) {
        Route::SOCKET_IO
    } else if req.method() == Method::OPTIONS {
        Route::preflight()
    } else {
        Route::of_api(req.method(), req.uri().path())
    };
    let span =
        tracing::debug_span!("http", method = %req.method(), route = ROUTES[route.0].as_str());
    let res = route_inner(&app, io, req, addr).instrument(span).await;
    app.stats().http(route, res.status());
    super::logging::log_http_refusal(ROUTES[route.0].as_str(), &res);
    res
}

async fn route_inner(
    app: &Arc<App>,
    io: SocketIo,
    req: Request<hyper::body::Incoming>,
    addr: SocketAddr,
) -> Response<Body> {
    let bundle = &client_bundle::EMBEDDED;
    if let Some(res) = client_bundle::serve(&req, &app.config().server.socket_path, bundle) {
        return res;
    }
    if io.matches_path(req.uri().path()) {
        return io.handle(req, addr).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut res = if let Some(refused) = limits::foreign_origin(&req, io.cors()) {
        refused
    } else if req.method() == Method::OPTIONS {
        Cors::preflight(
            "GET,POST,PATCH,DELETE,OPTIONS",
            Some(HeaderValue::from_static("authorization,content-type")),
        )
    } else {
        api(app, &io, req, addr).await
    };
    if let Some(cors) = io.cors() {
        cors.apply(res.headers_mut(), origin.as_deref());
    }
    res
}

async fn read_json(req: Request<hyper::body::Incoming>) -> Result<Value, Response<Body>> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| error(413, ErrorCode::PayloadTooLarge, "body over 64 KiB"))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|_| error(400, ErrorCode::InvalidPayload, "body must be JSON"))
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The password exactly as sent (never trimmed).
fn password(v: &Value) -> Option<&str> {
    v.get("password")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn api(
    app: &Arc<App>,
    io: &SocketIo,
    req: Request<hyper::body::Incoming>,
    addr: SocketAddr,
) -> Response<Body> {
    let ip = addr.ip();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if !routes::known(&method, &path) {
        return error(404, ErrorCode::NotFound, "no such route");
    }
    match (method, path.as_str()) {
        (_, p) if platform::handles(p) => platform::route(app, io, req).await,
        (Method::GET, "/api/health") => json_response(
            200,
            json!({"status": "ok", "clients": io.client_count(),
                   "activeSessions": app.store().active_sessions().map(|s| s.len()).unwrap_or(0)}),
        ),
        (Method::GET, "/api/ready") => super::ready::ready(app, io).await,
        (Method::GET, "/metrics") if app.config().metrics_addr.is_none() => {
            super::metrics::serve(app, io, &req)
        }
        (Method::POST, "/api/auth/login") => {
            if let Some(r) = limits::login_address(app, ip) {
                return r;
            }
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (Some(email), Some(password)) = (field(&body, "email"), password(&body)) else {
                return error(
                    400,
                    ErrorCode::InvalidPayload,
                    "email and password are required",
                );
            };
            let account = email.to_lowercase();
            if let Some(r) = limits::login_account(app, &account, ip) {
                return r;
            }
            let user = match app.store().user_by_email(email) {
                Ok(u) => u,
                Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
            };
            let password = password.to_string();
            // Unknown users cost the same argon2 work, so response timing
            // does not tell which emails exist.
            // The hash runs on the bounded pool (SPEC.md §4.24).
            let hash = user.as_ref().and_then(|u| u.password_hash.clone());
            let verified = match app
                .abuse()
                .hashes
                .run(move || verify_password(&password, hash.as_deref().unwrap_or(&DUMMY_HASH)))
                .await
            {
                Ok(v) => v,
                Err(busy) => return limits::hash_busy(busy),
            };
            let ok = verified && user.as_ref().is_some_and(|u| u.active);
            match (ok, user) {
                (true, Some(u)) => {
                    app.abuse().accounts.succeeded(&account);
                    json_response(
                        200,
                        json!({"ok": true, "token": app.keys().issue(&u), "user": user_json(&u)}),
                    )
                }
                _ => {
                    app.abuse().accounts.failed(&account, ip);
                    error(
                        401,
                        ErrorCode::InvalidCredentials,
                        "wrong email or password",
                    )
                }
            }
        }
        (Method::POST, "/api/auth/register") => {
            if !app.config().allow_registration {
                return error(
                    403,
                    ErrorCode::RegistrationClosed,
                    "registration is turned off",
                );
            }
            if let Some(r) = limits::register_address(app, ip) {
                return r;
            }
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (Some(email), Some(password), Some(name)) =
                (field(&body, "email"), password(&body), field(&body, "name"))
            else {
                return error(
                    400,
                    ErrorCode::InvalidPayload,
                    "email, password and name are required",
                );
            };
            if !email.contains('@')
                || email.len() > 254
                || name.len() > 200
                || password.len() < 8
                || password.len() > 1024
            {
                return error(
                    400,
                    ErrorCode::InvalidPayload,
                    "a valid email, a name and a password of at least 8 characters are required",
                );
            }
            let password = password.to_string();
            let hash = match app
                .abuse()
                .hashes
                .run(move || hash_password(&password))
                .await
            {
                Ok(h) => h,
                Err(busy) => return limits::hash_busy(busy),
            };
            let user = User {
                id: crate::util::random_id(12),
                email: email.to_string(),
                name: name.to_string(),
                role: Role::Student,
                password_hash: Some(hash),
                active: true,
                token_version: 0,
                created_at: crate::store::now_rfc3339(),
            };
            let ticket = match app.store().create_user(&user) {
                Ok(t) => t,
                Err(crate::store::StoreError::Exists(_)) => {
                    return error(409, ErrorCode::Conflict, "email already registered")
                }
                Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
            };
            if app.store().durable(ticket).await.is_err() {
                return error(500, ErrorCode::Internal, "storage failure");
            }
            json_response(
                201,
                json!({"ok": true, "token": app.keys().issue(&user), "user": user_json(&user)}),
            )
        }
        (Method::GET, "/setup") => setup::page(),
        (Method::POST, "/api/setup") => setup::create_admin(app, req).await,
        (ref m, p) if admin::handles(m, p) => admin::route(app, req).await,
        (_, p) if platform_b::handles(p) => platform_b::route(app, req).await,
        (Method::GET, p) if p.starts_with("/api/sessions/") && p.ends_with("/attendance.csv") => {
            match p
                .strip_prefix("/api/sessions/")
                .and_then(|r| r.strip_suffix("/attendance.csv"))
            {
                Some(sid) if !sid.is_empty() => csv_route(app, &req, sid),
                _ => error(404, ErrorCode::NotFound, "no such route"),
            }
        }
        _ => error(404, ErrorCode::NotFound, "no such route"),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn csv_route(app: &Arc<App>, req: &Request<hyper::body::Incoming>, sid: &str) -> Response<Body> {
    let user = match app.keys().authenticate(app.store(), bearer(req)) {
        Ok(u) => u,
        Err(e) => return error_with(401, e.code(), &e.to_string()),
    };
    // Authorization before existence (SPEC.md §4.24): no student may export,
    // whether or not the session exists.
    if user.role == Role::Student {
        return error(
            403,
            ErrorCode::Forbidden,
            "only the course's teacher or an admin",
        );
    }
    let session = match app.store().session(sid) {
        Ok(Some(s)) => s,
        Ok(None) => return error(404, ErrorCode::NotFound, "session not found"),
        Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
    };
    let course = app.store().course(&session.course_id).ok().flatten();
    let allowed = user.role == Role::Admin
        || (user.role == Role::Teacher && course.is_some_and(|c| c.teachers.contains(&user.id)));
    if !allowed {
        return error(
            403,
            ErrorCode::Forbidden,
            "only the course's teacher or an admin",
        );
    }
    match export_csv(app.store(), sid) {
        Ok(csv) => response(200, Some("text/csv; charset=utf-8"), csv),
        Err(_) => error(500, ErrorCode::Internal, "storage failure"),
    }
}

fn csv_field(s: &str) -> String {
    // Text a spreadsheet would run as a formula gets a leading quote; numbers
    // (e.g. negative coordinates) are left alone.
    let formula = s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err();
    let needs = s.contains([',', '"', '\n', '\r']) || formula;
    if needs {
        let guarded = if formula {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A session's attendance as CSV (one row per student).
pub fn export_csv(
    store: &crate::store::Store,
    sid: &str,
) -> Result<String, crate::store::StoreError> {
    let mut out = String::from(
        "session_id,student_id,student_name,email,status,marked_by,marked_at,method,lat,lng\n",
    );
    for r in store.records(sid)? {
        let u = store.user(&r.student_id)?;
        let (name, email) = u.map(|u| (u.name, u.email)).unwrap_or_default();
        let cols = [
            r.session_id.clone(),
            r.student_id.clone(),
            name,
            email,
            r.status.as_str().to_string(),
            r.marked_by.clone().unwrap_or_default(),
            r.marked_at.clone().unwrap_or_default(),
            r.method.clone(),
            r.location.map(|l| l.lat.to_string()).unwrap_or_default(),
            r.location.map(|l| l.lng.to_string()).unwrap_or_default(),
        ];
        out.push_str(
            &cols
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok(out)
}
