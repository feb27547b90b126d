//! The HTTP routes of the platform features (SPEC.md §4.16, §4.17, §4.19),
//! all admin only (`Authorization: Bearer <token>` of an admin):
//! notifications to a user or a role, publishing to a topic, and the
//! monitor API (`/api/socket-test`, seed 004's name).

use std::sync::Arc;

use http::{Method, Request, Response};
use serde_json::{json, Value};

use super::{bearer, error, error_with, json_response, read_json};
use crate::app::platform::notify::input_from_json;
use crate::app::{App, AppError, ErrorCode};
use crate::http::Body;
use crate::socketio::SocketIo;
use crate::store::{Role, User};

/// Whether `path` is one of these routes.
pub(super) fn handles(path: &str) -> bool {
    path == "/api/admin/notifications"
        || path.starts_with("/api/admin/topics/")
        || path == "/api/socket-test"
}

/// An [`AppError`] as an HTTP answer.
fn refusal(e: &AppError) -> Response<Body> {
    error(super::routes::status_of(e.code), e.code, &e.message)
}

/// The admin behind the request's bearer token.
fn admin(app: &App, req: &Request<hyper::body::Incoming>) -> Result<User, Box<Response<Body>>> {
    let user = app
        .keys()
        .authenticate(app.store(), bearer(req))
        .map_err(|e| Box::new(error_with(401, e.code(), &e.to_string())))?;
    if user.role != Role::Admin {
        return Err(Box::new(error(403, ErrorCode::Forbidden, "admins only")));
    }
    Ok(user)
}

/// Answers one of the platform routes.
pub(super) async fn route(
    app: &Arc<App>,
    io: &SocketIo,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let user = match admin(app, &req) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if (&method, path.as_str()) == (&Method::GET, "/api/socket-test") {
        return json_response(200, app.monitor_status(io));
    }
    if method != Method::POST {
        return error(404, ErrorCode::NotFound, "no such route");
    }
    let body = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let topic = path
        .strip_prefix("/api/admin/topics/")
        .and_then(|p| p.strip_suffix("/publish"));
    let result = match (path.as_str(), topic) {
        ("/api/socket-test", _) => app.monitor_action(&body, &user.id).map(|n| {
            (
                200,
                json!({"ok": true, "action": body["action"], "delivered": n}),
            )
        }),
        ("/api/admin/notifications", _) => notify(app, &body).await,
        (_, Some(t)) if !t.is_empty() && !t.contains('/') => {
            let data = body.get("data").cloned().unwrap_or(body.clone());
            app.publish(t, data)
                .map(|n| (200, json!({"ok": true, "topic": t, "delivered": n})))
        }
        _ => return error(404, ErrorCode::NotFound, "no such route"),
    };
    match result {
        Ok((status, v)) => json_response(status, v),
        Err(e) => refusal(&e),
    }
}

/// `POST /api/admin/notifications`: `{userId | role, title, message, ...}`.
async fn notify(app: &Arc<App>, body: &Value) -> Result<(u16, Value), AppError> {
    let input = input_from_json(body)?;
    let user = body.get("userId").and_then(Value::as_str);
    let role = body.get("role").and_then(Value::as_str);
    let (n, delivered) = match (user, role) {
        (Some(u), None) => app.notify_user(u, input).await?,
        (None, Some(r)) => {
            let role = r.parse::<Role>().map_err(AppError::invalid)?;
            app.notify_role(role, input).await?
        }
        _ => return Err(AppError::invalid("give exactly one of userId and role")),
    };
    let v = crate::app::platform::notify::notification_json(&n);
    Ok((
        201,
        json!({"ok": true, "notification": v, "delivered": delivered}),
    ))
}
