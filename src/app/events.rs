//! The request events: validation, authorization, the store change, and the
//! effects each one has. Handlers run one at a time per socket and never
//! wait; the caller makes the effects visible once the write is durable.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{
    attendance_room, checkin, course_room, session_room, staff_room, App, AppError, Effect,
    ErrorCode, Outcome, SocketCtx,
};
use crate::socketio::{Payload, Socket};
use crate::store::{
    CheckinSettings, Course, Geofence, Location, Mark, Record, Role, Session, SessionStatus, Stats,
    Status, User,
};

/// Longest accepted id.
const MAX_ID_LEN: usize = 128;
/// Most updates in one `bulkUpdateAttendance`.
pub const MAX_BULK: usize = 1000;

/// Dispatches one request.
pub(crate) fn handle(
    app: &Arc<App>,
    socket: &Arc<Socket>,
    ctx: &SocketCtx,
    event: &str,
    payload: &Payload,
) -> Result<Outcome, AppError> {
    let arg = payload.args.first().cloned().unwrap_or(Value::Null);
    let user = &ctx.user;
    match event {
        "startAttendanceSession" => start(app, user, &arg),
        "joinAttendanceSession" => join_attendance(app, socket, user, &arg),
        "markStudentPresent" => mark_one(app, user, &arg, Status::Present),
        "markStudentAbsent" => mark_one(app, user, &arg, Status::Absent),
        "getAttendanceSessionData" => session_data(app, user, &arg),
        "bulkUpdateAttendance" => bulk(app, user, &arg),
        "endAttendanceSession" => {
            let sid = session_id(&arg)?;
            let session = load_session(app, &sid)?;
            require_staff(app, user, &session.course_id)?;
            end_session(app, &sid, Some(user))
        }
        "getCheckinCode" => {
            let sid = session_id(&arg)?;
            let session = load_session(app, &sid)?;
            require_staff(app, user, &session.course_id)?;
            require_active(&session)?;
            if !session.checkin.code_required {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    "This session does not use check-in codes",
                ));
            }
            let code = code_json(&session, crate::store::now_ms() / 1000);
            let mut o = Outcome::default();
            o.effects.push(Effect::Emit("checkinCode", code.clone()));
            o.reply.insert("checkin".into(), code);
            Ok(o)
        }
        "subscribeToCourse" => {
            let cid = course_id(&arg)?;
            require_member(app, user, &cid)?;
            let data = active_sessions_json(app, &cid)?;
            let mut o = Outcome::default();
            o.effects.push(Effect::Join(course_room(&cid)));
            o.effects
                .push(Effect::Emit("activeSessionsData", data.clone()));
            o.reply.insert("data".into(), data);
            Ok(o)
        }
        "unsubscribeFromCourse" => {
            let cid = course_id(&arg)?;
            let mut o = Outcome::default();
            o.effects.push(Effect::Leave(course_room(&cid)));
            o.reply.insert("course_id".into(), json!(cid));
            Ok(o)
        }
        "checkActiveSessions" => {
            let cid = course_id(&arg)?;
            require_member(app, user, &cid)?;
            let data = active_sessions_json(app, &cid)?;
            let mut o = Outcome::default();
            o.effects
                .push(Effect::Emit("activeSessionsResponse", data.clone()));
            o.reply.insert("data".into(), data);
            Ok(o)
        }
        "joinSession" => {
            let sid = session_id(&arg)?;
            let session = load_session(app, &sid)?;
            require_member(app, user, &session.course_id)?;
            let room = session_room(&sid);
            let mut o = Outcome::default();
            o.effects.push(Effect::Join(room.clone()));
            o.effects.push(Effect::RoomExceptSelf(
                room,
                "userJoined",
                json!({"userId": user.id, "userName": user.name, "sessionId": sid,
                       "timestamp": crate::store::now_rfc3339()}),
            ));
            o.reply.insert("sessionId".into(), json!(sid));
            Ok(o)
        }
        "leaveSession" => {
            let sid = session_id(&arg)?;
            let room = session_room(&sid);
            if !socket.rooms().iter().any(|r| **r == *room) {
                return Err(AppError::new(ErrorCode::Conflict, "Not in this session"));
            }
            let mut o = Outcome::default();
            o.effects.push(Effect::Leave(room.clone()));
            o.effects.push(Effect::RoomExceptSelf(
                room,
                "userLeft",
                json!({"userId": user.id, "sessionId": sid,
                       "timestamp": crate::store::now_rfc3339()}),
            ));
            o.reply.insert("sessionId".into(), json!(sid));
            Ok(o)
        }
        "sessionUpdate" => session_update(app, user, &arg),
        "getAttendanceStats" => {
            let sid = session_id(&arg)?;
            let session = load_session(app, &sid)?;
            require_member(app, user, &session.course_id)?;
            let stats = app.store.stats(&sid)?;
            let data = json!({"sessionId": sid, "stats": stats_json(&stats),
                              "timestamp": crate::store::now_rfc3339()});
            let mut o = Outcome::default();
            o.effects
                .push(Effect::Emit("attendanceStats", data.clone()));
            o.reply.insert("data".into(), data);
            Ok(o)
        }
        "markAttendance" => self_checkin(app, socket, user, &arg),
        _ => Err(AppError::invalid("unknown event")),
    }
}

// ---------- payload helpers ----------

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

fn session_id(arg: &Value) -> Result<String, AppError> {
    id_field(arg, "session_id", "sessionId", "session id")
}

fn course_id(arg: &Value) -> Result<String, AppError> {
    id_field(arg, "course_id", "courseId", "course id")
}

fn student_id(arg: &Value) -> Result<String, AppError> {
    match arg {
        Value::Object(_) => id_field(arg, "student_id", "studentId", "student id"),
        _ => Err(AppError::invalid("student_id is required")),
    }
}

fn parse_status(v: Option<&Value>) -> Result<Status, AppError> {
    match v.and_then(Value::as_str) {
        Some("present") => Ok(Status::Present),
        Some("absent") => Ok(Status::Absent),
        _ => Err(AppError::invalid(
            "status must be \"present\" or \"absent\"",
        )),
    }
}

fn parse_location(v: Option<&Value>) -> Result<Option<Location>, AppError> {
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

// ---------- authorization ----------

fn load_session(app: &App, id: &str) -> Result<Arc<Session>, AppError> {
    app.store
        .session(id)?
        .ok_or_else(|| AppError::not_found("Attendance session not found"))
}

fn load_course(app: &App, id: &str) -> Result<Arc<Course>, AppError> {
    app.store
        .course(id)?
        .ok_or_else(|| AppError::not_found("Course not found"))
}

/// The course's teacher or an admin.
fn require_staff(app: &App, user: &User, course_id: &str) -> Result<Arc<Course>, AppError> {
    let course = load_course(app, course_id)?;
    if user.role == Role::Admin
        || (user.role == Role::Teacher && course.teachers.contains(&user.id))
    {
        Ok(course)
    } else {
        Err(AppError::forbidden(
            "Only the course's teacher or an admin may do this",
        ))
    }
}

/// Staff of the course, or a student enrolled in it.
fn require_member(app: &App, user: &User, course_id: &str) -> Result<Arc<Course>, AppError> {
    let course = load_course(app, course_id)?;
    let ok = match user.role {
        Role::Admin => true,
        Role::Teacher => course.teachers.contains(&user.id),
        Role::Student => course.students.contains(&user.id),
    };
    if ok {
        Ok(course)
    } else {
        Err(AppError::forbidden("Not a member of this course"))
    }
}

fn require_active(session: &Session) -> Result<(), AppError> {
    if session.status == SessionStatus::Active {
        Ok(())
    } else {
        Err(AppError::session_not_active())
    }
}

// ---------- JSON views ----------

fn stats_json(s: &Stats) -> Value {
    let rate = if s.total == 0 {
        0.0
    } else {
        (s.present as f64 * 1000.0 / s.total as f64).round() / 10.0
    };
    json!({"total": s.total, "present": s.present, "absent": s.absent, "attendance_rate": rate})
}

fn session_json(s: &Session) -> Value {
    let mut checkin = json!({"code_required": s.checkin.code_required,
                             "code_period_secs": s.checkin.code_period_secs});
    if let Some(g) = &s.checkin.geofence {
        checkin["geofence"] = json!({"lat": g.lat, "lng": g.lng, "radius_m": g.radius_m});
    }
    json!({
        "session_id": s.id, "course_id": s.course_id, "teacher_id": s.teacher_id,
        "status": match s.status { SessionStatus::Active => "active", SessionStatus::Ended => "ended" },
        "started_at": s.started_at, "ended_at": s.ended_at, "checkin": checkin,
    })
}

fn record_json(app: &App, r: &Record) -> Value {
    let name = app.store.user_name(&r.student_id).ok().flatten();
    let name = name.as_deref().unwrap_or("");
    json!({
        "session_id": r.session_id, "student_id": r.student_id, "student_name": name,
        "status": r.status.as_str(), "marked_by": r.marked_by, "marked_at": r.marked_at,
        "method": r.method,
        "location": r.location.map(|l| json!({"lat": l.lat, "lng": l.lng})),
    })
}

fn records_json(app: &App, session_id: &str) -> Result<(Vec<Value>, Stats), AppError> {
    let records = app.store.records(session_id)?;
    let mut stats = Stats::default();
    let list = records
        .iter()
        .map(|r| {
            stats.total += 1;
            match r.status {
                Status::Present => stats.present += 1,
                Status::Absent => stats.absent += 1,
            }
            record_json(app, r)
        })
        .collect();
    Ok((list, stats))
}

pub(crate) fn code_json(s: &Session, now_secs: u64) -> Value {
    let p = s.checkin.code_period_secs;
    json!({
        "session_id": s.id,
        "code": checkin::code_at(&s.checkin.code_secret, &s.id, p, now_secs),
        "expires_at": crate::store::format_rfc3339(checkin::code_expires_at(p, now_secs) * 1000),
        "period_secs": p,
    })
}

fn active_sessions_json(app: &App, course_id: &str) -> Result<Value, AppError> {
    let joined = app.joined.lock();
    let list: Vec<Value> = app
        .store
        .active_sessions_of(course_id)?
        .iter()
        .map(|s| {
            json!({"sessionId": s.id, "teacherId": s.teacher_id,
                   "studentCount": joined.get(&s.id).map_or(0, |j| j.len()),
                   "startedAt": s.started_at})
        })
        .collect();
    Ok(json!({"course_id": course_id, "activeSessions": list}))
}

// ---------- handlers ----------

fn start(app: &Arc<App>, user: &User, arg: &Value) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    let mut o = Outcome::default();
    if let Some(existing) = app.store.session(&sid)? {
        // Resuming: the course's teacher (e.g. after a reconnect) takes the room again.
        require_staff(app, user, &existing.course_id)?;
        require_active(&existing)?;
        let (records, _) = records_json(app, &sid)?;
        started_effects(app, &existing, records, &mut o, false);
        return Ok(o);
    }
    if !arg.is_object() {
        return Err(AppError::invalid(
            "a new session needs {session_id, course_id}",
        ));
    }
    let cid = course_id(arg)?;
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
    o.ticket = Some(app.store.start_session(&session, &course.students)?);
    let (records, _) = records_json(app, &sid)?;
    app.joined.lock().entry(sid.clone()).or_default();
    started_effects(app, &session, records, &mut o, true);
    if session.checkin.code_required {
        app.start_code_rotation(&sid);
    }
    Ok(o)
}

fn parse_checkin(app: &App, v: Option<&Value>) -> Result<CheckinSettings, AppError> {
    let mut c = CheckinSettings {
        code_required: false,
        code_secret: crate::util::random_id(24),
        code_period_secs: app.config.code_period_secs,
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

fn started_effects(app: &App, s: &Session, records: Vec<Value>, o: &mut Outcome, announce: bool) {
    let total = records.len();
    let data = json!({"session_id": s.id, "session": session_json(s),
                      "totalStudents": total, "attendanceRecords": records});
    o.effects.push(Effect::Join(attendance_room(&s.id)));
    o.effects.push(Effect::Join(staff_room(&s.id)));
    o.effects.push(Effect::Join(session_room(&s.id)));
    o.effects
        .push(Effect::Emit("attendanceSessionStarted", data));
    if s.checkin.code_required {
        o.effects.push(Effect::Emit(
            "checkinCode",
            code_json(s, crate::store::now_ms() / 1000),
        ));
    }
    if announce {
        let teacher_name = app.store.user_name(&s.teacher_id).ok().flatten();
        let teacher_name = teacher_name.as_deref().unwrap_or("");
        o.effects.push(Effect::Room(
            course_room(&s.course_id),
            "courseSessionStarted",
            json!({"course_id": s.course_id, "session_id": s.id, "teacher_id": s.teacher_id,
                   "teacher_name": teacher_name, "started_by": teacher_name,
                   "started_at": s.started_at}),
        ));
        if let Ok(active) = active_sessions_json(app, &s.course_id) {
            o.effects.push(Effect::Room(
                course_room(&s.course_id),
                "activeSessionsData",
                active,
            ));
        }
    }
    o.reply.insert("session_id".into(), json!(s.id));
    o.reply.insert("session".into(), session_json(s));
    o.reply.insert("totalStudents".into(), json!(total));
}

fn join_attendance(
    app: &App,
    socket: &Arc<Socket>,
    user: &User,
    arg: &Value,
) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    let session = load_session(app, &sid)?;
    require_member(app, user, &session.course_id)?;
    require_active(&session)?;
    let now = crate::store::now_rfc3339();
    let mut o = Outcome::default();
    o.effects.push(Effect::Join(attendance_room(&sid)));
    if user.role == Role::Student {
        // Enrolled after the session started: the absent record is made now.
        if let Some((_, ticket)) = app.store.ensure_record(&sid, &user.id)? {
            o.ticket = Some(ticket);
        }
        app.joined
            .lock()
            .entry(sid.clone())
            .or_default()
            .entry(user.id.clone())
            .or_default()
            .insert(socket.id().to_string());
        o.effects.push(Effect::Room(
            staff_room(&sid),
            "studentJoinedAttendance",
            json!({"session_id": sid, "student_id": user.id, "student_name": user.name,
                   "joined_at": now}),
        ));
    } else {
        o.effects.push(Effect::Join(staff_room(&sid)));
    }
    o.effects.push(Effect::Emit(
        "attendanceSessionJoined",
        json!({"session_id": sid, "message": "Joined attendance session"}),
    ));
    o.reply.insert("session_id".into(), json!(sid));
    Ok(o)
}

/// Marks applied by [`mark_effects`]: the outcome (with the write's ticket)
/// for the handler to add its effects to, the records' views in the order of
/// the marks, and when (RFC 3339) for the events.
struct Marked {
    outcome: Outcome,
    records: Vec<Value>,
    at: String,
}

/// Applies `marks` to session `sid` as `user` (the caller has checked the
/// request) and builds what every kind of mark shares.
fn mark_effects(app: &App, sid: &str, user: &User, marks: &[Mark]) -> Result<Marked, AppError> {
    let (records, ticket) = app.store.mark(sid, &user.id, marks)?;
    Ok(Marked {
        outcome: Outcome {
            ticket: Some(ticket),
            ..Outcome::default()
        },
        records: records.iter().map(|r| record_json(app, r)).collect(),
        at: crate::store::now_rfc3339(),
    })
}

/// `attendanceUpdated` to the session's attendance room, for one mark.
fn updated_effect(
    sid: &str,
    student: &str,
    status: Status,
    rec: &Value,
    by: &User,
    at: &str,
) -> Effect {
    Effect::Room(
        attendance_room(sid),
        "attendanceUpdated",
        json!({"session_id": sid, "student_id": student, "status": status.as_str(),
               "attendanceRecord": rec, "updated_by": by.name, "updated_at": at}),
    )
}

fn mark_one(app: &App, user: &User, arg: &Value, status: Status) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    let student = student_id(arg)?;
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    require_active(&session)?;
    let mut m = mark_effects(
        app,
        &sid,
        user,
        &[Mark {
            student_id: student.clone(),
            status,
            method: "teacher",
            location: None,
        }],
    )?;
    let rec = m.records.pop().unwrap_or(Value::Null);
    let mut o = m.outcome;
    o.effects
        .push(updated_effect(&sid, &student, status, &rec, user, &m.at));
    let confirm = if status == Status::Present {
        "studentMarkedPresent"
    } else {
        "studentMarkedAbsent"
    };
    o.effects.push(Effect::Emit(
        confirm,
        json!({"session_id": sid, "student_id": student, "attendanceRecord": rec}),
    ));
    o.reply.insert("attendanceRecord".into(), rec);
    Ok(o)
}

fn bulk(app: &App, user: &User, arg: &Value) -> Result<Outcome, AppError> {
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
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    require_active(&session)?;
    let Marked {
        outcome: mut o,
        records: list,
        at: now,
    } = mark_effects(app, &sid, user, &marks)?;
    o.effects.push(Effect::Room(
        attendance_room(&sid),
        "attendanceBulkUpdated",
        json!({"session_id": sid, "updatedRecords": list, "updated_by": user.name,
               "updated_at": now}),
    ));
    o.effects.push(Effect::Emit(
        "attendanceBulkUpdateComplete",
        json!({"session_id": sid, "updatedRecords": list, "totalUpdated": list.len()}),
    ));
    o.reply.insert("totalUpdated".into(), json!(list.len()));
    Ok(o)
}

fn session_data(app: &App, user: &User, arg: &Value) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    let (records, stats) = records_json(app, &sid)?;
    let data = json!({"session_id": sid, "session": session_json(&session),
                      "attendanceRecords": records, "statistics": stats_json(&stats)});
    let mut o = Outcome::default();
    o.effects
        .push(Effect::Emit("attendanceSessionData", data.clone()));
    o.reply.insert("data".into(), data);
    Ok(o)
}

/// Ends a session (`by` is `None` for the idle timeout) and builds the end events.
pub(crate) fn end_session(app: &App, sid: &str, by: Option<&User>) -> Result<Outcome, AppError> {
    let (session, ticket) = app.store.end_session(sid)?;
    app.joined.lock().remove(sid);
    let (records, stats) = records_json(app, sid)?;
    let ended_by = by.map_or_else(|| "system".to_string(), |u| u.name.clone());
    let final_data = json!({"session": session_json(&session), "attendanceRecords": records,
                            "statistics": stats_json(&stats)});
    let ended_at = session.ended_at.clone().unwrap_or_default();
    let teacher_name = app.store.user_name(&session.teacher_id).ok().flatten();
    let teacher_name = teacher_name.as_deref().unwrap_or("");
    let mut o = Outcome {
        ticket: Some(ticket),
        ..Outcome::default()
    };
    o.effects.push(Effect::Room(
        attendance_room(sid),
        "attendanceSessionEnded",
        json!({"session_id": sid, "finalData": final_data, "ended_by": ended_by,
               "ended_at": ended_at}),
    ));
    if by.is_some() {
        o.effects.push(Effect::Emit(
            "attendanceSessionEndedConfirm",
            json!({"session_id": sid, "finalData": final_data}),
        ));
    }
    let final_statistics =
        json!({"present": stats.present, "absent": stats.absent, "total": stats.total});
    o.effects.push(Effect::Room(
        course_room(&session.course_id),
        "courseSessionEnded",
        json!({"course_id": session.course_id, "session_id": sid,
               "teacher_id": session.teacher_id, "teacher_name": teacher_name,
               "final_statistics": final_statistics, "ended_by": ended_by,
               "ended_at": ended_at}),
    ));
    if let Ok(active) = active_sessions_json(app, &session.course_id) {
        o.effects.push(Effect::Room(
            course_room(&session.course_id),
            "activeSessionsData",
            active,
        ));
    }
    o.reply.insert("session_id".into(), json!(sid));
    o.reply.insert("final_statistics".into(), final_statistics);
    Ok(o)
}

fn session_update(app: &App, user: &User, arg: &Value) -> Result<Outcome, AppError> {
    let obj = arg
        .as_object()
        .ok_or_else(|| AppError::invalid("sessionUpdate takes an object"))?;
    let sid = session_id(arg)?;
    let session = load_session(app, &sid)?;
    require_staff(app, user, &session.course_id)?;
    if serde_json::to_vec(arg).map_or(0, |v| v.len()) > 16 * 1024 {
        return Err(AppError::invalid("sessionUpdate data over 16 KiB"));
    }
    let mut data: Map<String, Value> = obj.clone();
    data.insert("sessionId".into(), json!(sid));
    data.insert("updatedBy".into(), json!(user.id));
    data.insert("timestamp".into(), json!(crate::store::now_rfc3339()));
    let mut o = Outcome::default();
    o.effects.push(Effect::Room(
        session_room(&sid),
        "sessionUpdated",
        Value::Object(data),
    ));
    o.reply.insert("sessionId".into(), json!(sid));
    Ok(o)
}

fn self_checkin(
    app: &App,
    _socket: &Arc<Socket>,
    user: &User,
    arg: &Value,
) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    if !arg.is_object() {
        return Err(AppError::invalid(
            "markAttendance takes {sessionId, location}",
        ));
    }
    let location = parse_location(arg.get("location"))?;
    let session = load_session(app, &sid)?;
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students check themselves in"));
    }
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
    let mut m = mark_effects(
        app,
        &sid,
        user,
        &[Mark {
            student_id: user.id.clone(),
            status: Status::Present,
            method: "self",
            location,
        }],
    )?;
    let rec = m.records.pop().unwrap_or(Value::Null);
    let (mut o, now) = (m.outcome, m.at);
    o.effects.push(Effect::Emit(
        "attendanceMarked",
        json!({"success": true, "attendance": rec, "message": "Attendance marked successfully"}),
    ));
    o.effects.push(Effect::Room(
        session_room(&sid),
        "attendanceUpdate",
        json!({"userId": user.id, "userName": user.name, "status": "present",
               "checkInTime": now, "sessionId": sid}),
    ));
    o.effects.push(updated_effect(
        &sid,
        &user.id,
        Status::Present,
        &rec,
        user,
        &now,
    ));
    o.reply.insert("attendance".into(), rec);
    Ok(o)
}
