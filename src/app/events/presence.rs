//! Presence requests (SPEC.md §4.18): who is online (everyone, for an
//! admin; a course's members, for its members) and who is present in an
//! attendance session (for its staff). Refusals go out as `presenceError`.

use serde_json::{json, Value};

use super::args::{course_id, require_member, staff_session};
use super::Ctx;
use crate::app::platform::monitor::ONLINE_EVENT;
use crate::app::{AppError, Outcome};
use crate::store::Role;

/// `getOnlineUsers {course_id?}`.
pub(super) fn online(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let obj = arg
        .as_object()
        .ok_or_else(|| AppError::invalid("getOnlineUsers takes {course_id?}"))?;
    let data = if obj.contains_key("course_id") || obj.contains_key("courseId") {
        let cid = course_id(arg)?;
        let course = require_member(cx.app, cx.user, &cid)?;
        cx.app.online_in_course_json(&course)
    } else if cx.user.role == Role::Admin {
        cx.app.online_users_json()
    } else {
        return Err(AppError::forbidden(
            "Only admins list every online user; give a course_id",
        ));
    };
    Ok(Outcome::new().emit_and_reply(ONLINE_EVENT, "data", data))
}

/// `getSessionPresence {session_id}`: the course's students, each with
/// whether they joined the session (and are still connected) and whether
/// they are online at all.
pub(super) fn session(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (sid, session) = staff_session(cx, arg)?;
    let app = cx.app;
    let joined = app.presence().session_students(&sid);
    let mut ids: Vec<String> = app
        .store()
        .course(&session.course_id)?
        .map(|c| c.students.clone())
        .unwrap_or_default();
    ids.extend(joined.iter().map(|(id, _)| id.clone()));
    ids.sort();
    ids.dedup();
    let students: Vec<Value> = ids
        .iter()
        .map(|id| {
            let name = app.store().user_name(id).ok().flatten();
            let sockets = joined.iter().find(|(j, _)| j == id).map_or(0, |(_, n)| *n);
            json!({"studentId": id, "studentName": name.as_deref(),
                   "joined": sockets > 0, "joinedSockets": sockets,
                   "online": app.presence().online_user(id).is_some()})
        })
        .collect();
    let data = json!({"session_id": sid, "status": session.status,
                      "joinedCount": joined.len(), "students": students});
    Ok(Outcome::new().emit_and_reply("sessionPresence", "data", data))
}
