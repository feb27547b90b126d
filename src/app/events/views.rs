//! The JSON views of SPEC.md §4.6 (session, record, statistics,
//! activeSessions, code), built from store values for events and replies.

use serde_json::{json, Value};

use crate::app::{checkin, App, AppError};
use crate::store::{Record, Session, SessionStatus, Stats, Status};

/// The statistics view (rate: percent, one decimal, 0 when total is 0).
pub(super) fn stats_json(s: &Stats) -> Value {
    let rate = if s.total == 0 {
        0.0
    } else {
        (s.present as f64 * 1000.0 / s.total as f64).round() / 10.0
    };
    json!({"total": s.total, "present": s.present, "absent": s.absent, "attendance_rate": rate})
}

/// The session view (never the code secret).
pub(super) fn session_json(s: &Session) -> Value {
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

/// The record view, with the student's name.
pub(super) fn record_json(app: &App, r: &Record) -> Value {
    let name = app.store().user_name(&r.student_id).ok().flatten();
    let name = name.as_deref().unwrap_or("");
    json!({
        "session_id": r.session_id, "student_id": r.student_id, "student_name": name,
        "status": r.status.as_str(), "marked_by": r.marked_by, "marked_at": r.marked_at,
        "method": r.method,
        "location": r.location.map(|l| json!({"lat": l.lat, "lng": l.lng})),
    })
}

/// A session's records (by student id) as views, with their statistics.
pub(super) fn records_json(app: &App, session_id: &str) -> Result<(Vec<Value>, Stats), AppError> {
    let records = app.store().records(session_id)?;
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

/// The code view for the window containing `now_secs`.
pub(crate) fn code_json(s: &Session, now_secs: u64) -> Value {
    let p = s.checkin.code_period_secs;
    json!({
        "session_id": s.id,
        "code": checkin::code_at(&s.checkin.code_secret, &s.id, p, now_secs),
        "expires_at": crate::store::format_rfc3339(checkin::code_expires_at(p, now_secs) * 1000),
        "period_secs": p,
    })
}

/// The activeSessions view of a course, with each session's presence count.
pub(super) fn active_sessions_json(app: &App, course_id: &str) -> Result<Value, AppError> {
    let sessions = app.store().active_sessions_of(course_id)?;
    let list: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({"sessionId": s.id, "teacherId": s.teacher_id,
                   "studentCount": app.presence().student_count(&s.id),
                   "startedAt": s.started_at})
        })
        .collect();
    Ok(json!({"course_id": course_id, "activeSessions": list}))
}
