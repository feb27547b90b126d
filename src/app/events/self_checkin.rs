//! Self check-in (`markAttendance`): a student marks themselves present,
//! proving presence with the session's rotating code and/or a location inside
//! its geofence. The code and distance maths is [`crate::app::checkin`]; the
//! write is the same mark as a teacher's (`sessions::apply_marks`).

use serde_json::{json, Value};

use super::args::{member_session_of, parse_location, require_active, require_member, session_id};
use super::audience::{about_student, session_staff_room, session_students_room};
use super::sessions::{apply_marks, updated};
use super::Ctx;
use crate::app::{checkin, AppError, ErrorCode, Outcome};
use crate::store::{Mark, Role, Status};

/// `markAttendance`: checks in the order of SPEC.md §4.7, then one mark.
pub(super) fn mark(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (app, user) = (cx.app, cx.user);
    let sid = session_id(arg)?;
    if !arg.is_object() {
        return Err(AppError::invalid(
            "markAttendance takes {sessionId, location}",
        ));
    }
    let location = parse_location(arg.get("location"))?;
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students check themselves in"));
    }
    let session = member_session_of(app, user, &sid)?;
    require_member(app, user, &session.course_id)?;
    require_active(&session)?;
    if session.checkin.code_required {
        let code = arg.get("code").and_then(Value::as_str).unwrap_or("");
        let now = crate::store::now_ms() / 1000;
        let c = &session.checkin;
        if !checkin::code_valid(&c.code_secret, &sid, c.code_period_secs, now, code) {
            return Err(AppError::new(
                ErrorCode::InvalidCode,
                "Check-in code is wrong or expired",
            ));
        }
    }
    if let Some(fence) = &session.checkin.geofence {
        let loc = location.ok_or_else(|| {
            AppError::new(
                ErrorCode::LocationRequired,
                "This session needs a location to check in",
            )
        })?;
        if !checkin::inside(fence, loc) {
            return Err(AppError::new(
                ErrorCode::OutsideGeofence,
                "Location is outside the check-in area",
            ));
        }
    }
    let mark = Mark {
        student_id: user.id.clone(),
        status: Status::Present,
        method: "self",
        location,
    };
    let mut m = apply_marks(app, &sid, user, &[mark])?;
    let rec = m.records.pop().unwrap_or(Value::Null);
    let now = m.at;
    let o = m.outcome.emit(
        "attendanceMarked",
        json!({"success": true, "attendance": rec, "message": "Attendance marked successfully"}),
    );
    // Staff and the student: who checked in; other students: that someone did.
    let o = about_student(
        o,
        session_staff_room(&sid),
        session_students_room(&sid),
        &user.id,
        "attendanceUpdate",
        json!({"userId": user.id, "userName": user.name, "status": "present",
               "checkInTime": now, "sessionId": sid}),
        json!({"status": "present", "checkInTime": now, "sessionId": sid}),
    );
    let o = updated(o, &sid, &user.id, Status::Present, &rec, user, &now);
    Ok(o.reply("attendance", rec))
}
