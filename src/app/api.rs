//! The HTTP routes beside the Socket.IO endpoint: login, registration,
//! health, and a session's attendance as CSV.

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
        Route::PREFLIGHT
    } else {
        Route::of_api(req.method(), req.uri().path())
    };
    let span = tracing::debug_span!("http", method = %req.method(), route = ROUTES[route.0]);
    let res = route_inner(&app, io, req, addr).instrument(span).await;
    app.stats().http(route, res.status());
    super::logging::log_http_refusal(ROUTES[route.0], &res);
    res
}

async fn route_inner(
    app: &Arc<App>,
    io: SocketIo,
    req: Request<hyper::body::Incoming>,
    addr: SocketAddr,
) -> Response<Body> {
    if io.matches_path(req.uri().path()) {
        return io.handle(req, addr).await;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut res = if req.method() == Method::OPTIONS {
        Cors::preflight(
            "GET,POST,OPTIONS",
            Some(HeaderValue::from_static("authorization,content-type")),
        )
    } else {
        api(app, &io, req).await
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

async fn api(app: &Arc<App>, io: &SocketIo, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
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
            let user = match app.store().user_by_email(email) {
                Ok(u) => u,
                Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
            };
            let password = password.to_string();
            // Unknown users cost the same argon2 work, so response timing
            // does not tell which emails exist.
            let hash = user
                .as_ref()
                .and_then(|u| u.password_hash.clone())
                .unwrap_or_else(|| DUMMY_HASH.clone());
            let verified = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false);
            let ok = verified && user.as_ref().is_some_and(|u| u.active);
            match (ok, user) {
                (true, Some(u)) => json_response(
                    200,
                    json!({"ok": true, "token": app.keys().issue(&u), "user": user_json(&u)}),
                ),
                _ => error(
                    401,
                    ErrorCode::InvalidCredentials,
                    "wrong email or password",
                ),
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
            let hash = tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .unwrap_or_default();
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

fn csv_route(app: &Arc<App>, req: &Request<hyper::body::Incoming>, sid: &str) -> Response<Body> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = match app.keys().authenticate(app.store(), token) {
        Ok(u) => u,
        Err(e) => return error_with(401, e.code(), &e.to_string()),
    };
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
