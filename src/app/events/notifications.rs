//! A user's stored notifications (SPEC.md §4.16): a page of them, and
//! marking them read. Refusals go out as `notificationError`.

use serde_json::{json, Value};

use super::Ctx;
use crate::app::platform::notify::notification_json;
use crate::app::{AppError, Outcome};

/// Most notifications in one page.
const MAX_PAGE: u64 = 100;
/// Most ids in one `markNotificationRead`.
const MAX_IDS: usize = 1000;

/// A notification id: 16 lower-case hex digits.
fn valid_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `getNotifications {limit?, before?, unreadOnly?}`: newest first.
pub(super) fn page(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let obj = arg
        .as_object()
        .ok_or_else(|| AppError::invalid("getNotifications takes {limit, before, unreadOnly}"))?;
    let limit = match obj.get("limit") {
        None | Some(Value::Null) => 20,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| AppError::invalid("limit must be 1-100"))?,
    };
    let before = match obj.get("before") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if valid_id(s) => Some(s.as_str()),
        Some(_) => return Err(AppError::invalid("before must be a notification id")),
    };
    let unread_only = match obj.get("unreadOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AppError::invalid("unreadOnly must be a boolean")),
    };
    let store = cx.app.store();
    let page = store.notifications_page(cx.user, before, limit as usize, unread_only)?;
    let unread = store.unread_count(cx.user)?;
    let items: Vec<Value> = page.items.iter().map(notification_json).collect();
    Ok(Outcome::new()
        .reply("notifications", json!(items))
        .reply("nextBefore", json!(page.next_before))
        .reply("unread", json!(unread)))
}

/// `markNotificationRead {id}` / `{ids: [...]}` / `{all: true}` (or a bare
/// id): the user's other devices hear of it.
pub(super) fn mark_read(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let ids: Option<Vec<String>> = match arg {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Object(m) if m.get("all") == Some(&Value::Bool(true)) => None,
        Value::Object(m) => match (m.get("id"), m.get("ids")) {
            (Some(Value::String(s)), _) => Some(vec![s.clone()]),
            (_, Some(Value::Array(a))) if !a.is_empty() && a.len() <= MAX_IDS => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| AppError::invalid("ids must be notification ids"))?,
            ),
            _ => {
                return Err(AppError::invalid(
                    "markNotificationRead takes {id}, {ids} or {all: true}",
                ))
            }
        },
        _ => {
            return Err(AppError::invalid(
                "markNotificationRead takes {id}, {ids} or {all: true}",
            ))
        }
    };
    if ids
        .as_ref()
        .is_some_and(|ids| !ids.iter().all(|i| valid_id(i)))
    {
        return Err(AppError::invalid("ids must be notification ids"));
    }
    let store = cx.app.store();
    let (changed, ticket) = store.mark_notifications_read(cx.user, ids.as_deref())?;
    let unread = store.unread_count(cx.user)?;
    let data = json!({"ids": changed, "unread": unread});
    Ok(Outcome::new()
        .ticket(ticket)
        .broadcast_others(format!("user:{}", cx.user.id), "notificationsRead", data)
        .reply("read", json!(changed))
        .reply("unread", json!(unread)))
}
