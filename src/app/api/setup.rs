//! First-run setup over HTTP (SPEC.md §4.23.6): `GET /setup` serves the
//! form (embedded, no external assets), `POST /api/setup {token, email,
//! name, password}` creates the first admin with the single-use token of
//! `DATA_DIR/setup.json` (see [`crate::app::first_run`]) and removes it.
//!
//! One setup runs at a time (a process-wide lock), so two posts of the same
//! token cannot both create an admin.

use std::sync::Arc;

use http::{Request, Response};
use serde_json::json;

use super::admin::{check_new_user, insert_user, new_user};
use super::{error, error_with, field, json_response, password, read_json, user_json};
use crate::app::first_run::{no_users, remove_synced, setup_token, SETUP_FILE};
use crate::app::{App, ErrorCode};
use crate::http::{response, Body};
use crate::store::{now_ms, Role};

static SETUP_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The setup page.
const PAGE: &str = include_str!("setup.html");

/// `GET /setup`.
pub(super) fn page() -> Response<Body> {
    let mut res = response(200, Some("text/html; charset=utf-8"), PAGE);
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

/// Compares two strings in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `POST /api/setup`.
pub(super) async fn create_admin(
    app: &Arc<App>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let body = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let _one = SETUP_LOCK.lock().await;
    let dir = &app.config().data_dir;
    let Some(stored) = setup_token(dir) else {
        return error_with(
            410,
            "setup_used",
            "no setup link is open (it was used, or the server has users)",
        );
    };
    let sent = field(&body, "token").unwrap_or_default();
    if !same(sent, &stored.token) {
        return error_with(403, "setup_token_invalid", "wrong setup token");
    }
    if now_ms() >= stored.expires_ms {
        return error_with(
            410,
            "setup_token_expired",
            "the setup link has expired: restart the server for a new one",
        );
    }
    match no_users(app.store()) {
        Ok(true) => {}
        Ok(false) => {
            let _ = remove_synced(&dir.join(SETUP_FILE));
            return error_with(410, "setup_used", "the server already has users");
        }
        Err(_) => return error(500, ErrorCode::Internal, "storage failure"),
    }
    let (Some(email), Some(name), Some(pw)) =
        (field(&body, "email"), field(&body, "name"), password(&body))
    else {
        return error(
            400,
            ErrorCode::InvalidPayload,
            "token, email, name and password are required",
        );
    };
    if let Err(m) = check_new_user(email, name, None) {
        return error(400, ErrorCode::InvalidPayload, m);
    }
    if !(8..=1024).contains(&pw.len()) {
        return error(
            400,
            ErrorCode::InvalidPayload,
            "password must be 8 to 1024 bytes",
        );
    }
    let user = new_user(email, name, Role::Admin, Some(pw.to_string()), None).await;
    if let Err(r) = insert_user(app, &user).await {
        return r;
    }
    // The admin is durable; now the token goes (durably too).
    if remove_synced(&dir.join(SETUP_FILE)).is_err() {
        return error(500, ErrorCode::Internal, "could not remove the setup token");
    }
    json_response(
        201,
        json!({"ok": true, "token": app.keys().issue(&user), "user": user_json(&user)}),
    )
}
