//! What every handler checks first: the argument's ids, statuses and
//! locations (SPEC.md §4.6 "Payload conventions"), and the permission rules
//! (staff, member, active session). Errors carry the exact texts of the spec.

use std::sync::Arc;

use serde_json::Value;

use super::Ctx;
use crate::app::{App, AppError};
use crate::store::{Course, Location, Role, Session, SessionStatus, Status, User};

/// Longest accepted id.
const MAX_ID_LEN: usize = 128;

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
}

/// Reads an id under either spelling (`session_id` / `sessionId`), or a bare
/// string when the payload is one.
fn id_field(arg: &Value, snake: &str, camel: &str, what: &str) -> Result<String, AppError> {
    let v = match arg {
        Value::String(_) | Value::Number(_) => Some(arg),
        Value::Object(m) => m.get(snake).or_else(|| m.get(camel)),
        _ => None,
    };
    let s = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(AppError::invalid(format!("{snake} is required"))),
    };
    if !valid_id(&s) {
        return Err(AppError::invalid(format!(
            "{what} must be 1-{MAX_ID_LEN} characters of letters, digits and -_.:@"
        )));
    }
    Ok(s)
}

/// The session id of the argument (or the argument itself).
pub(super) fn session_id(arg: &Value) -> Result<String, AppError> {
    id_field(arg, "session_id", "sessionId", "session id")
}

/// The course id of the argument (or the argument itself).
pub(super) fn course_id(arg: &Value) -> Result<String, AppError> {
    id_field(arg, "course_id", "courseId", "course id")
}

/// A user id under `key` (or the argument itself), as the messenger's
/// `to` and `with`.
pub(super) fn user_id(arg: &Value, key: &str) -> Result<String, AppError> {
    id_field(arg, key, key, "user id")
}

/// The student id of an object argument.
pub(super) fn student_id(arg: &Value) -> Result<String, AppError> {
    match arg {
        Value::Object(_) => id_field(arg, "student_id", "studentId", "student id"),
        _ => Err(AppError::invalid("student_id is required")),
    }
}

/// `"present"` or `"absent"`.
pub(super) fn parse_status(v: Option<&Value>) -> Result<Status, AppError> {
    match v.and_then(Value::as_str) {
        Some("present") => Ok(Status::Present),
        Some("absent") => Ok(Status::Absent),
        _ => Err(AppError::invalid(
            "status must be \"present\" or \"absent\"",
        )),
    }
}

/// A location (`null` or absent: none).
pub(super) fn parse_location(v: Option<&Value>) -> Result<Option<Location>, AppError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let num = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k).and_then(Value::as_f64));
    let lat = num(&["lat", "latitude"]);
    let lng = num(&["lng", "lon", "longitude"]);
    match (lat, lng) {
        (Some(lat), Some(lng))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng) =>
        {
            Ok(Some(Location { lat, lng }))
        }
        _ => Err(AppError::invalid(
            "location needs lat in [-90, 90] and lng in [-180, 180]",
        )),
    }
}

/// The session the argument names, its requester checked as staff of its
/// course (id, then session, then permission).
pub(super) fn staff_session(cx: &Ctx<'_>, arg: &Value) -> Result<(String, Arc<Session>), AppError> {
    let sid = session_id(arg)?;
    deny_students(cx.user)?;
    let session = load_session(cx.app, &sid)?;
    require_staff(cx.app, cx.user, &session.course_id)?;
    Ok((sid, session))
}

/// The session the argument names, its requester checked as a member of its
/// course (id, then session, then permission).
pub(super) fn member_session(
    cx: &Ctx<'_>,
    arg: &Value,
) -> Result<(String, Arc<Session>), AppError> {
    let sid = session_id(arg)?;
    let session = member_session_of(cx.app, cx.user, &sid)?;
    require_member(cx.app, cx.user, &session.course_id)?;
    Ok((sid, session))
}

/// The message of a refused member check.
const NOT_A_MEMBER: &str = "Not a member of this course";
/// The message of a refused staff check.
const NOT_STAFF: &str = "Only the course's teacher or an admin may do this";

/// Authorization before existence (SPEC.md §4.24): a student is refused a
/// staff request before any id is looked up, so the answer does not say
/// whether the id exists.
pub(super) fn deny_students(user: &User) -> Result<(), AppError> {
    if user.role == Role::Student {
        Err(AppError::forbidden(NOT_STAFF))
    } else {
        Ok(())
    }
}

/// The session for a member check: a missing one is `not_found` for staff,
/// and for a student the same `forbidden` as a session of another course.
pub(super) fn member_session_of(
    app: &App,
    user: &User,
    id: &str,
) -> Result<Arc<Session>, AppError> {
    match app.store().session(id)? {
        Some(s) => Ok(s),
        None if user.role == Role::Student => Err(AppError::forbidden(NOT_A_MEMBER)),
        None => Err(AppError::not_found("Attendance session not found")),
    }
}

/// The session, or `not_found`.
pub(super) fn load_session(app: &App, id: &str) -> Result<Arc<Session>, AppError> {
    app.store()
        .session(id)?
        .ok_or_else(|| AppError::not_found("Attendance session not found"))
}

fn load_course(app: &App, id: &str) -> Result<Arc<Course>, AppError> {
    app.store()
        .course(id)?
        .ok_or_else(|| AppError::not_found("Course not found"))
}

/// The course's teacher or an admin.
pub(super) fn require_staff(
    app: &App,
    user: &User,
    course_id: &str,
) -> Result<Arc<Course>, AppError> {
    deny_students(user)?;
    let course = load_course(app, course_id)?;
    if user.role == Role::Admin
        || (user.role == Role::Teacher && course.teachers.contains(&user.id))
    {
        Ok(course)
    } else {
        Err(AppError::forbidden(NOT_STAFF))
    }
}

/// Staff of the course, or a student enrolled in it.
pub(super) fn require_member(
    app: &App,
    user: &User,
    course_id: &str,
) -> Result<Arc<Course>, AppError> {
    let course = match app.store().course(course_id)? {
        Some(c) => c,
        None if user.role == Role::Student => return Err(AppError::forbidden(NOT_A_MEMBER)),
        None => return Err(AppError::not_found("Course not found")),
    };
    let ok = match user.role {
        Role::Admin => true,
        Role::Teacher => course.teachers.contains(&user.id),
        Role::Student => course.students.contains(&user.id),
    };
    if ok {
        Ok(course)
    } else {
        Err(AppError::forbidden(NOT_A_MEMBER))
    }
}

/// The session is active.
pub(super) fn require_active(session: &Session) -> Result<(), AppError> {
    if session.status == SessionStatus::Active {
        Ok(())
    } else {
        Err(AppError::session_not_active())
    }
}
