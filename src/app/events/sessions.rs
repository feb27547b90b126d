//! Attendance sessions: start (or resume), join, teacher and bulk marks,
//! session data, statistics, the current check-in code, and the end (also
//! used by the idle expiry). The mark path is the hot one: one store write,
//! one record view per mark, no other reads.

use serde_json::{json, Value};

use super::args::{
    deny_students, load_session, member_session, parse_location, parse_status, require_active,
    require_staff, session_id, staff_session, student_id,
};
use super::audience::{
    attendance_students_room, attendance_updated, session_staff_room, user_room,
};
use super::views::{
    active_sessions_json, code_json, record_json, records_json, session_json, stats_json,
};
use super::Ctx;
use crate::app::{
    attendance_room, course_room, session_room, staff_room, App, AppError, ErrorCode, Outcome,
};
use crate::store::{CheckinSettings, Geofence, Mark, Role, Session, SessionStatus, Status, User};

/// Most updates in one `bulkUpdateAttendance`.
const MAX_BULK: usize = 1000;

/// `startAttendanceSession`: creates a session, or resumes an existing one.
pub(super) fn start(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (app, user) = (cx.app, cx.user);
    let sid = session_id(arg)?;
    deny_students(user)?;
    if let Some(existing) = app.store().session(&sid)? {
        // Resuming: the course's teacher (e.g. after a reconnect) takes the room again.
        require_staff(app, user, &existing.course_id)?;
        require_active(&existing)?;
        let (records, _) = records_json(app, &sid)?;
        return Ok(started(app, &existing, records, Outcome::new(), false));
    }
    if !arg.is_object() {
        return Err(AppError::invalid(
            "a new session needs {session_id, course_id}",
        ));
    }
    let cid = super::args::course_id(arg)?;
    let course = require_staff(app, user, &cid)?;
    let checkin = parse_checkin(app, arg.get("checkin"))?;
    let now = crate::store::now_ms();
    let session = Session {
        id: sid.clone(),
        course_id: cid,
        teacher_id: user.id.clone(),
        status: SessionStatus::Active,
        started_at: crate::store::format_rfc3339(now),
        ended_at: None,
        last_activity_ms: now,
        checkin,
    };
    let o = Outcome::new().ticket(app.store().start_session(&session, &course.students)?);
    let (records, _) = records_json(app, &sid)?;
    app.presence().open(&sid);
    let o = started(app, &session, records, o, true);
    let o = crate::app::platform::notify::session_started(app, &session, &course.students, o);
    if session.checkin.code_required {
        app.start_code_rotation(&sid);
    }
    Ok(o)
}

fn parse_checkin(app: &App, v: Option<&Value>) -> Result<CheckinSettings, AppError> {
    let mut c = CheckinSettings {
        code_required: false,
        code_secret: crate::util::random_id(24),
        code_period_secs: app.config().code_period_secs,
        geofence: None,
    };
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(c);
    };
    if !v.is_object() {
        return Err(AppError::invalid("checkin must be an object"));
    }
    match v.get("code") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => c.code_required = *b,
        _ => return Err(AppError::invalid("checkin.code must be a boolean")),
    }
    if let Some(p) = v.get("period_secs") {
        match p.as_u64() {
            Some(n) if (5..=3600).contains(&n) => c.code_period_secs = n,
            _ => return Err(AppError::invalid("checkin.period_secs must be 5-3600")),
        }
    }
    if let Some(g) = v.get("geofence").filter(|g| !g.is_null()) {
        let loc = parse_location(Some(g))?.ok_or_else(|| AppError::invalid("bad geofence"))?;
        let radius = g
            .get("radius_m")
            .or_else(|| g.get("radius"))
            .and_then(Value::as_f64)
            .filter(|r| *r > 0.0 && *r <= 100_000.0)
            .ok_or_else(|| AppError::invalid("geofence.radius_m must be in (0, 100000]"))?;
        c.geofence = Some(Geofence {
            lat: loc.lat,
            lng: loc.lng,
            radius_m: radius,
        });
    }
    Ok(c)
}

/// The effects and reply of a start; `announce` for a new session (the
/// course hears of it).
fn started(app: &App, s: &Session, records: Vec<Value>, o: Outcome, announce: bool) -> Outcome {
    let total = records.len();
    let data = json!({"session_id": s.id, "session": session_json(s),
                      "totalStudents": total, "attendanceRecords": records});
    let mut o = o
        .join(attendance_room(&s.id))
        .join(staff_room(&s.id))
        .join(session_room(&s.id))
        .join(session_staff_room(&s.id))
        .emit("attendanceSessionStarted", data);
    if s.checkin.code_required {
        o = o.emit("checkinCode", code_json(s, crate::store::now_ms() / 1000));
    }
    if announce {
        let teacher_name = app.store().user_name(&s.teacher_id).ok().flatten();
        let teacher_name = teacher_name.as_deref().unwrap_or("");
        o = o.broadcast(
            course_room(&s.course_id),
            "courseSessionStarted",
            json!({"course_id": s.course_id, "session_id": s.id, "teacher_id": s.teacher_id,
                   "teacher_name": teacher_name, "started_by": teacher_name,
                   "started_at": s.started_at}),
        );
        if let Ok(active) = active_sessions_json(app, &s.course_id) {
            o = o.broadcast(course_room(&s.course_id), "activeSessionsData", active);
        }
    }
    o.reply("session_id", json!(s.id))
        .reply("session", session_json(s))
        .reply("totalStudents", json!(total))
}

/// `joinAttendanceSession`: a member joins the session's room (a student is
/// counted present and announced to the staff).
pub(super) fn join(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (app, user) = (cx.app, cx.user);
    let (sid, session) = member_session(cx, arg)?;
    require_active(&session)?;
    let now = crate::store::now_rfc3339();
    let mut o = Outcome::new().join(attendance_room(&sid));
    if user.role == Role::Student {
        // Enrolled after the session started: the absent record is made now.
        if let Some((_, ticket)) = app.store().ensure_record(&sid, &user.id)? {
            o = o.ticket(ticket);
        }
        app.presence().join(&sid, &user.id, cx.socket.id());
        o = o.join(attendance_students_room(&sid)).broadcast(
            staff_room(&sid),
            "studentJoinedAttendance",
            json!({"session_id": sid, "student_id": user.id, "student_name": user.name,
                   "joined_at": now}),
        );
    } else {
        o = o.join(staff_room(&sid));
    }
    Ok(o.emit(
        "attendanceSessionJoined",
        json!({"session_id": sid, "message": "Joined attendance session"}),
    )
    .reply("session_id", json!(sid)))
}

/// Marks applied by [`apply_marks`]: the outcome (with the write's ticket)
/// for the handler to add its effects to, the records' views in the order of
/// the marks, and when (RFC 3339) for the events.
pub(super) struct Marked {
    pub outcome: Outcome,
    pub records: Vec<Value>,
    pub at: String,
}

/// Applies `marks` to session `sid` as `user` (the caller has checked the
/// request) and builds what every kind of mark shares.
pub(super) fn apply_marks(
    app: &App,
    sid: &str,
    user: &User,
    marks: &[Mark],
) -> Result<Marked, AppError> {
    let (records, ticket) = app.store().mark(sid, &user.id, marks)?;
    let outcome = Outcome::new().ticket(ticket);
    Ok(Marked {
        outcome: crate::app::platform::notify::after_marks(app, sid, &records, outcome),
        records: records.iter().map(|r| record_json(app, r)).collect(),
        at: crate::store::now_rfc3339(),
    })
}

/// Adds `attendanceUpdated` for one mark: the full event to the staff and
/// the student, the students' view to the other students (§4.24).
pub(super) fn updated(
    o: Outcome,
    sid: &str,
    student: &str,
    status: Status,
    rec: &Value,
    by: &User,
    at: &str,
) -> Outcome {
    attendance_updated(
        o,
        sid,
        student,
        update_json(sid, student, status, rec, by, at),
    )
}

/// The full `attendanceUpdated` of one mark.
fn update_json(
    sid: &str,
    student: &str,
    status: Status,
    rec: &Value,
    by: &User,
    at: &str,
) -> Value {
    json!({"session_id": sid, "student_id": student, "status": status.as_str(),
           "attendanceRecord": rec, "updated_by": by.name, "updated_at": at})
}

/// `markStudentPresent`.
pub(super) fn mark_present(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    mark_one(cx, arg, Status::Present)
}

/// `markStudentAbsent`.
pub(super) fn mark_absent(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    mark_one(cx, arg, Status::Absent)
}

fn mark_one(cx: &Ctx<'_>, arg: &Value, status: Status) -> Result<Outcome, AppError> {
    let (app, user) = (cx.app, cx.user);
    let sid = session_id(arg)?;
    let student = student_id(arg)?;
    deny_students(user)?;
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    require_active(&session)?;
    let mark = Mark {
        student_id: student.clone(),
        status,
        method: "teacher",
        location: None,
    };
    let mut m = apply_marks(app, &sid, user, &[mark])?;
    let rec = m.records.pop().unwrap_or(Value::Null);
    let o = updated(m.outcome, &sid, &student, status, &rec, user, &m.at);
    let confirm = if status == Status::Present {
        "studentMarkedPresent"
    } else {
        "studentMarkedAbsent"
    };
    Ok(o.emit(
        confirm,
        json!({"session_id": sid, "student_id": student, "attendanceRecord": rec}),
    )
    .reply("attendanceRecord", rec))
}

/// `bulkUpdateAttendance`: all the updates in one write, or none.
pub(super) fn bulk(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (app, user) = (cx.app, cx.user);
    let sid = session_id(arg)?;
    let updates = arg
        .get("attendanceUpdates")
        .or_else(|| arg.get("attendance_updates"))
        .and_then(Value::as_array)
        .ok_or_else(|| AppError::invalid("attendanceUpdates must be an array"))?;
    if updates.is_empty() || updates.len() > MAX_BULK {
        return Err(AppError::invalid(format!(
            "attendanceUpdates must hold 1-{MAX_BULK} updates"
        )));
    }
    let mut marks = Vec::with_capacity(updates.len());
    for u in updates {
        marks.push(Mark {
            student_id: student_id(u)?,
            status: parse_status(u.get("status"))?,
            method: "bulk",
            location: None,
        });
    }
    deny_students(user)?;
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    require_active(&session)?;
    let Marked {
        outcome: o,
        records: list,
        at: now,
    } = apply_marks(app, &sid, user, &marks)?;
    // Staff: every record; each student: their own record (as one mark);
    // the other students: how many changed (§4.24).
    let mut o = o
        .broadcast(
            staff_room(&sid),
            "attendanceBulkUpdated",
            json!({"session_id": sid, "updatedRecords": list, "updated_by": user.name,
                   "updated_at": now}),
        )
        .broadcast(
            attendance_students_room(&sid),
            "attendanceBulkUpdated",
            json!({"session_id": sid, "updatedRecords": [], "totalUpdated": list.len(),
                   "updated_by": user.name, "updated_at": now}),
        );
    for (m, rec) in marks.iter().zip(&list) {
        let own = update_json(&sid, &m.student_id, m.status, rec, user, &now);
        o = o.broadcast(user_room(&m.student_id), "attendanceUpdated", own);
    }
    Ok(o.emit(
        "attendanceBulkUpdateComplete",
        json!({"session_id": sid, "updatedRecords": list, "totalUpdated": list.len()}),
    )
    .reply("totalUpdated", json!(list.len())))
}

/// `getAttendanceSessionData`: the session with its records and statistics.
pub(super) fn data(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (sid, session) = staff_session(cx, arg)?;
    let (records, stats) = records_json(cx.app, &sid)?;
    let data = json!({"session_id": sid, "session": session_json(&session),
                      "attendanceRecords": records, "statistics": stats_json(&stats)});
    Ok(Outcome::new().emit_and_reply("attendanceSessionData", "data", data))
}

/// `getAttendanceStats`: a member reads the session's statistics.
pub(super) fn stats(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (sid, _) = member_session(cx, arg)?;
    let stats = cx.app.store().stats(&sid)?;
    let data = json!({"sessionId": sid, "stats": stats_json(&stats),
                      "timestamp": crate::store::now_rfc3339()});
    Ok(Outcome::new().emit_and_reply("attendanceStats", "data", data))
}

/// `getCheckinCode`: the current code of a session that uses codes.
pub(super) fn checkin_code(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (_, session) = staff_session(cx, arg)?;
    require_active(&session)?;
    if !session.checkin.code_required {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "This session does not use check-in codes",
        ));
    }
    let code = code_json(&session, crate::store::now_ms() / 1000);
    Ok(Outcome::new().emit_and_reply("checkinCode", "checkin", code))
}

/// `endAttendanceSession`.
pub(super) fn end(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let (sid, _) = staff_session(cx, arg)?;
    end_session(cx.app, &sid, Some(cx.user))
}

/// Ends a session (`by` is `None` for the idle timeout) and builds the end events.
pub(crate) fn end_session(app: &App, sid: &str, by: Option<&User>) -> Result<Outcome, AppError> {
    let (session, ticket) = app.store().end_session(sid)?;
    app.presence().forget(sid);
    let (records, stats) = records_json(app, sid)?;
    let ended_by = by.map_or_else(|| "system".to_string(), |u| u.name.clone());
    let final_data = json!({"session": session_json(&session), "attendanceRecords": records,
                            "statistics": stats_json(&stats)});
    let ended_at = session.ended_at.clone().unwrap_or_default();
    let teacher_name = app.store().user_name(&session.teacher_id).ok().flatten();
    let teacher_name = teacher_name.as_deref().unwrap_or("");
    // Staff: the roster; students: the statistics only (§4.24).
    let students_final = json!({"session": final_data["session"], "attendanceRecords": [],
                                "statistics": final_data["statistics"]});
    let mut o = Outcome::new()
        .ticket(ticket)
        .broadcast(
            staff_room(sid),
            "attendanceSessionEnded",
            json!({"session_id": sid, "finalData": final_data, "ended_by": ended_by,
                   "ended_at": ended_at}),
        )
        .broadcast(
            attendance_students_room(sid),
            "attendanceSessionEnded",
            json!({"session_id": sid, "finalData": students_final, "ended_by": ended_by,
                   "ended_at": ended_at}),
        );
    if by.is_some() {
        o = o.emit(
            "attendanceSessionEndedConfirm",
            json!({"session_id": sid, "finalData": final_data}),
        );
    }
    let final_statistics =
        json!({"present": stats.present, "absent": stats.absent, "total": stats.total});
    o = o.broadcast(
        course_room(&session.course_id),
        "courseSessionEnded",
        json!({"course_id": session.course_id, "session_id": sid,
               "teacher_id": session.teacher_id, "teacher_name": teacher_name,
               "final_statistics": final_statistics, "ended_by": ended_by,
               "ended_at": ended_at}),
    );
    if let Ok(active) = active_sessions_json(app, &session.course_id) {
        o = o.broadcast(
            course_room(&session.course_id),
            "activeSessionsData",
            active,
        );
    }
    let o = crate::app::platform::notify::after_end(app, &session, o);
    Ok(o.reply("session_id", json!(sid))
        .reply("final_statistics", final_statistics))
}
