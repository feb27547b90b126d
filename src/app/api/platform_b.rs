//! The HTTP routes of SPEC.md §4.22: logout (this device or all), the
//! caller's devices, and the admin's user routes (change role / active
//! flag, force a logout, list a user's devices). Answers follow the API's
//! JSON-error style (`{"ok":false,"error":{"code","message"}}`).
//!
//! Each route makes its change durable before it tells any socket, then
//! answers.

use std::sync::Arc;

use http::{header, Method, Request, Response};
use serde_json::{json, Value};

use super::{error, error_with, json_response, read_json, user_json};
use crate::app::auth::Claims;
use crate::app::{App, ErrorCode};
use crate::http::Body;
use crate::store::{Role, User};

type Req = Request<hyper::body::Incoming>;

/// Whether `path` is one of this file's routes.
pub(super) fn handles(path: &str) -> bool {
    path == "/api/auth/logout"
        || path == "/api/auth/devices"
        || path.starts_with("/api/admin/users/")
}

/// Answers one of this file's routes.
pub(super) async fn route(app: &Arc<App>, req: Req) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let caller = match caller(app, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match (method, path.as_str()) {
        (Method::POST, "/api/auth/logout") => logout(app, req, caller).await,
        (Method::GET, "/api/auth/devices") => json_response(
            200,
            json!({"ok": true, "devices": app.devices_json(&caller.0.id, caller.1.jti.as_deref())}),
        ),
        (method, p) => {
            if caller.0.role != Role::Admin {
                return error(403, ErrorCode::Forbidden, "admins only");
            }
            let rest = p.strip_prefix("/api/admin/users/").unwrap_or_default();
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let target = match app.store().user(id) {
                _ if id.is_empty() => return not_found(),
                Ok(Some(u)) => u,
                Ok(None) => return error(404, ErrorCode::NotFound, "user not found"),
                Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
            };
            match (method, action) {
                (Method::PATCH, "") => patch_user(app, req, target).await,
                (Method::POST, "logout") => logout_all(app, &target, "admin_logout").await,
                (Method::GET, "devices") => json_response(
                    200,
                    json!({"ok": true, "devices": app.devices_json(&target.id, None)}),
                ),
                _ => not_found(),
            }
        }
    }
}

fn not_found() -> Response<Body> {
    error(404, ErrorCode::NotFound, "no such route")
}

/// The bearer token's user and claims (`401` with the auth codes).
// The error is the answer itself, made once per request: boxing it would
// only add an allocation.
#[allow(clippy::result_large_err)]
fn caller(app: &Arc<App>, req: &Req) -> Result<(User, Claims), Response<Body>> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    app.keys()
        .authenticate_claims(app.store(), token)
        .map_err(|e| error_with(401, e.code(), &e.to_string()))
}

/// The JSON body, `{}` when there is none.
pub(super) async fn body_or_empty(req: Req) -> Result<Value, Response<Body>> {
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0")
        || (req.headers().get(header::CONTENT_LENGTH).is_none()
            && req.headers().get(header::TRANSFER_ENCODING).is_none());
    if empty {
        return Ok(json!({}));
    }
    let v = read_json(req).await?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(error(
            400,
            ErrorCode::InvalidPayload,
            "body must be a JSON object",
        ))
    }
}

/// Waits until `ticket` is durable (`500` otherwise).
pub(super) async fn durable(
    app: &Arc<App>,
    ticket: crate::store::Ticket,
) -> Result<(), Response<Body>> {
    app.store()
        .durable(ticket)
        .await
        .map_err(|_| error(500, ErrorCode::Internal, "storage failure"))
}

/// `POST /api/auth/logout {all?}`.
async fn logout(app: &Arc<App>, req: Req, (user, claims): (User, Claims)) -> Response<Body> {
    let body = match body_or_empty(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let all = match body.get("all") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return error(400, ErrorCode::InvalidPayload, "all must be true or false"),
    };
    if all {
        return logout_all(app, &user, "logout").await;
    }
    let Some(jti) = claims.jti else {
        return error(
            400,
            ErrorCode::InvalidPayload,
            "this token has no id: log out with {\"all\":true}",
        );
    };
    let ticket = match app.store().revoke_token(&jti, claims.exp) {
        Ok(t) => t,
        Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
    };
    if let Err(r) = durable(app, ticket).await {
        return r;
    }
    let n = app.force_logout(&user.id, Some(&jti), "logout");
    json_response(200, json!({"ok": true, "all": false, "disconnected": n}))
}

/// Every token of `user` stops working (token version bump), then every
/// socket of theirs is logged out.
async fn logout_all(app: &Arc<App>, user: &User, reason: &str) -> Response<Body> {
    let ticket = match app.store().update_user(&user.id, |u| u.token_version += 1) {
        Ok((_, t)) => t,
        Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
    };
    if let Err(r) = durable(app, ticket).await {
        return r;
    }
    let n = app.force_logout(&user.id, None, reason);
    json_response(200, json!({"ok": true, "all": true, "disconnected": n}))
}

/// `PATCH /api/admin/users/<id> {role?, active?}`.
async fn patch_user(app: &Arc<App>, req: Req, old: User) -> Response<Body> {
    let body = match body_or_empty(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let role = match body.get("role") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().map(str::parse::<Role>) {
            Some(Ok(r)) => Some(r),
            _ => {
                return error(
                    400,
                    ErrorCode::InvalidPayload,
                    "role must be admin, teacher or student",
                )
            }
        },
    };
    let active = match body.get("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return error(
                400,
                ErrorCode::InvalidPayload,
                "active must be true or false",
            )
        }
    };
    if role.is_none() && active.is_none() {
        return error(400, ErrorCode::InvalidPayload, "role or active is required");
    }
    let role_changed = role.is_some_and(|r| r != old.role);
    let disabled = active == Some(false) && old.active;
    let (new, ticket) = match app.store().update_user(&old.id, |u| {
        if let Some(r) = role {
            u.role = r;
        }
        if let Some(a) = active {
            u.active = a;
        }
        if role_changed || disabled {
            u.token_version += 1;
        }
    }) {
        Ok(x) => x,
        Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
    };
    if let Err(r) = durable(app, ticket).await {
        return r;
    }
    let n = if !new.active {
        app.force_logout(&new.id, None, "account_disabled")
    } else if role_changed {
        app.push_user_update(&old, &new)
    } else {
        0
    };
    json_response(
        200,
        json!({"ok": true, "user": user_json(&new), "sockets": n}),
    )
}
