//! Course tracking: members follow a course's room to hear of its sessions
//! starting and ending, and ask for its active sessions. Refusals go out as
//! `activeSessionsError`.

use serde_json::{json, Value};

use super::args::{course_id, require_member};
use super::views::active_sessions_json;
use super::Ctx;
use crate::app::{course_room, AppError, Outcome};

/// `subscribeToCourse`: join the course's room, get its active sessions.
pub(super) fn subscribe(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let cid = course_id(arg)?;
    require_member(cx.app, cx.user, &cid)?;
    let data = active_sessions_json(cx.app, &cid)?;
    Ok(Outcome::new()
        .join(course_room(&cid))
        .emit_and_reply("activeSessionsData", "data", data))
}

/// `unsubscribeFromCourse`: leave the course's room (no permission check).
pub(super) fn unsubscribe(_cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let cid = course_id(arg)?;
    Ok(Outcome::new()
        .leave(course_room(&cid))
        .reply("course_id", json!(cid)))
}

/// `checkActiveSessions`: the course's active sessions.
pub(super) fn check_active(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let cid = course_id(arg)?;
    require_member(cx.app, cx.user, &cid)?;
    let data = active_sessions_json(cx.app, &cid)?;
    Ok(Outcome::new().emit_and_reply("activeSessionsResponse", "data", data))
}
