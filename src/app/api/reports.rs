//! Sessions, records and reports over HTTP (SPEC.md §4.23): a course's
//! sessions, one session with its records, a session's records, and the
//! attendance reports per course and per student, as JSON and CSV.
//!
//! Counting: a session counts for a student once it has ended and the
//! student has a record in it; the percentage is present ÷ counted × 100
//! (one decimal; `null` with nothing counted). Running sessions are listed
//! but not counted, so a percentage does not move while a lecture runs.

// Early answers are the error: a route returns `Err(response)` once per
// request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, Request};
use serde_json::{json, Value};

use super::paging::{
    course_or_404, internal, is_staff, query, staff_course, user_or_404, Answer, Page,
};
use super::{csv_field, error, json_response};
use crate::app::{App, ErrorCode};
use crate::http::response;
use crate::store::{Record, Role, Session, SessionStatus, Status, User};

/// Whether `path` is one of the routes outside `/api/courses/`.
pub(super) fn handles(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("/api/sessions/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return !id.is_empty() && (action.is_empty() || action == "records");
    }
    path.strip_prefix("/api/users/").is_some_and(|rest| {
        rest.split_once('/')
            .is_some_and(|(id, a)| !id.is_empty() && (a == "report" || a == "report.csv"))
    })
}

fn no_route() -> Result<Answer, Answer> {
    Err(error(404, ErrorCode::NotFound, "no such route"))
}

/// `/api/sessions/<id>[/records]` and `/api/users/<id>/report[.csv]`.
pub(super) fn route<B>(
    app: &Arc<App>,
    user: &User,
    method: Method,
    path: &str,
    req: &Request<B>,
) -> Result<Answer, Answer> {
    if method != Method::GET {
        return no_route();
    }
    if let Some(rest) = path.strip_prefix("/api/sessions/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let session = staff_session(app, user, id)?;
        let records = app.store().records(id).map_err(|_| internal())?;
        if action == "records" {
            let page = Page::of(req)?;
            return Ok(page.answer(
                &records,
                false,
                |r| r.student_id.clone(),
                |r| record_json(app, r),
            ));
        }
        let mut v = session_json(&session, &records);
        v["records"] = records.iter().map(|r| record_json(app, r)).collect();
        return Ok(json_response(200, json!({"ok": true, "session": v})));
    }
    let rest = path.strip_prefix("/api/users/").unwrap_or_default();
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let report = student_report(app, user, id, query(req, "course").as_deref())?;
    if action == "report.csv" {
        return Ok(student_csv(&report));
    }
    Ok(json_response(200, report))
}

/// Routes under `/api/courses/<id>/`: `sessions`, `report`, `report.csv`.
pub(super) fn course_route<B>(
    app: &Arc<App>,
    user: &User,
    method: Method,
    id: &str,
    action: &str,
    req: &Request<B>,
) -> Result<Answer, Answer> {
    if method != Method::GET || !matches!(action, "sessions" | "report" | "report.csv") {
        return no_route();
    }
    staff_course(app, user, id)?;
    let sessions = app.store().sessions_of_course(id).map_err(|_| internal())?;
    if action == "sessions" {
        let page = Page::of(req)?;
        return Ok(page.answer(&sessions, true, session_key, |s| {
            let records = app.store().records(&s.id).unwrap_or_default();
            session_json(s, &records)
        }));
    }
    let below = match query(req, "below") {
        // The low-attendance warnings' threshold (SPEC.md §4.16).
        None => app.config().platform.low_attendance_pct,
        Some(s) => match s.parse::<f64>() {
            Ok(b) if (0.0..=100.0).contains(&b) => b,
            _ => {
                return Err(error(
                    400,
                    ErrorCode::InvalidPayload,
                    "below must be a number from 0 to 100",
                ))
            }
        },
    };
    let report = course_report(app, id, &sessions, below)?;
    if action == "report.csv" {
        return Ok(course_csv(&report));
    }
    Ok(json_response(200, report))
}

/// The sort key of a session in a course's list (newest first).
fn session_key(s: &Session) -> String {
    format!("{}|{}", s.started_at, s.id)
}

/// The session `id` when `user` is staff of its course.
#[allow(clippy::result_large_err)]
fn staff_session(app: &Arc<App>, user: &User, id: &str) -> Result<Arc<Session>, Answer> {
    if user.role == Role::Student {
        return Err(error(403, ErrorCode::Forbidden, "teachers and admins only"));
    }
    let s = app
        .store()
        .session(id)
        .map_err(|_| internal())?
        .ok_or_else(|| error(404, ErrorCode::NotFound, "session not found"))?;
    staff_course(app, user, &s.course_id)?;
    Ok(s)
}

fn session_json(s: &Session, records: &[Record]) -> Value {
    let present = records
        .iter()
        .filter(|r| r.status == Status::Present)
        .count();
    json!({"id": s.id, "course_id": s.course_id, "teacher_id": s.teacher_id,
           "status": match s.status { SessionStatus::Active => "active", SessionStatus::Ended => "ended" },
           "started_at": s.started_at, "ended_at": s.ended_at,
           "stats": {"present": present, "absent": records.len() - present, "total": records.len()}})
}

fn record_json(app: &Arc<App>, r: &Record) -> Value {
    let name = app.store().user_name(&r.student_id).ok().flatten();
    json!({"session_id": r.session_id, "student_id": r.student_id, "student_name": name.as_deref(),
           "status": r.status.as_str(), "marked_by": r.marked_by, "marked_at": r.marked_at,
           "method": r.method, "location": r.location.map(|l| json!({"lat": l.lat, "lng": l.lng}))})
}

/// Present ÷ counted × 100, one decimal; `None` with nothing counted.
fn percentage(present: usize, counted: usize) -> Option<f64> {
    (counted > 0).then(|| (present as f64 * 1000.0 / counted as f64).round() / 10.0)
}

/// `GET /api/courses/<id>/report?below=`.
fn course_report(
    app: &Arc<App>,
    id: &str,
    sessions: &[Session],
    below: f64,
) -> Result<Value, Answer> {
    let course = course_or_404(app, id)?;
    let ended: Vec<&Session> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Ended)
        .collect();
    // student -> (counted, present)
    let mut tally: HashMap<String, (usize, usize)> = HashMap::new();
    for s in &ended {
        for r in app.store().records(&s.id).map_err(|_| internal())? {
            let t = tally.entry(r.student_id).or_default();
            t.0 += 1;
            t.1 += usize::from(r.status == Status::Present);
        }
    }
    let mut students: Vec<Value> = Vec::with_capacity(course.students.len());
    let mut low = Vec::new();
    let mut ids = course.students.clone();
    ids.sort();
    for sid in &ids {
        let (counted, present) = tally.get(sid).copied().unwrap_or_default();
        let u = app.store().user(sid).map_err(|_| internal())?;
        let pct = percentage(present, counted);
        if pct.is_some_and(|p| p < below) {
            low.push(sid.clone());
        }
        students.push(json!({"student_id": sid, "name": u.as_ref().map(|u| &u.name),
            "email": u.as_ref().map(|u| &u.email), "sessions": counted, "present": present,
            "absent": counted - present, "percentage": pct, "below": pct.is_some_and(|p| p < below)}));
    }
    Ok(
        json!({"ok": true, "course_id": course.id, "name": course.name,
              "sessions": ended.len(), "running": sessions.len() - ended.len(),
              "threshold": below, "students": students, "below": low}),
    )
}

/// `GET /api/users/<id>/report[?course=]`: the student themselves, an admin,
/// or a teacher (the sessions of the courses they teach).
fn student_report(
    app: &Arc<App>,
    user: &User,
    id: &str,
    only: Option<&str>,
) -> Result<Value, Answer> {
    if user.role == Role::Student && user.id != id {
        // Before existence: a student learns nothing of other users.
        return Err(error(
            403,
            ErrorCode::Forbidden,
            "students see only their own report",
        ));
    }
    let student = user_or_404(app, id)?;
    let courses: Vec<String> = app
        .store()
        .courses_shared()
        .map_err(|_| internal())?
        .into_iter()
        .filter(|c| c.students.contains(&student.id))
        .filter(|c| user.role != Role::Teacher || is_staff(user, c))
        .filter(|c| only.is_none_or(|o| o == c.id))
        .map(|c| c.id.clone())
        .collect();
    if user.role == Role::Teacher && courses.is_empty() {
        return Err(error(
            403,
            ErrorCode::Forbidden,
            "this student is not in a course you teach",
        ));
    }
    let rows = app
        .store()
        .student_records(&student.id, &courses)
        .map_err(|_| internal())?;
    let mut per_course: HashMap<&str, (usize, usize)> = HashMap::new();
    let sessions: Vec<Value> = rows
        .iter()
        .map(|(s, r)| {
            let counted = s.status == SessionStatus::Ended;
            if counted {
                let t = per_course.entry(s.course_id.as_str()).or_default();
                t.0 += 1;
                t.1 += usize::from(r.status == Status::Present);
            }
            json!({"session_id": s.id, "course_id": s.course_id, "started_at": s.started_at,
                   "ended_at": s.ended_at, "status": r.status.as_str(), "method": r.method,
                   "marked_at": r.marked_at, "counted": counted})
        })
        .collect();
    let (counted, present) = per_course
        .values()
        .fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    let by_course: Vec<Value> = courses
        .iter()
        .map(|c| {
            let (n, p) = per_course.get(c.as_str()).copied().unwrap_or_default();
            json!({"course_id": c, "sessions": n, "present": p, "percentage": percentage(p, n)})
        })
        .collect();
    Ok(
        json!({"ok": true, "student": {"id": student.id, "name": student.name, "email": student.email},
              "sessions": sessions, "courses": by_course, "counted": counted, "present": present,
              "absent": counted - present, "percentage": percentage(present, counted)}),
    )
}

/// One CSV line of `cols` (quoted as in SPEC.md §4.12), with its `\n`.
fn csv_line(cols: &[String]) -> String {
    let mut line = cols
        .iter()
        .map(|c| csv_field(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn csv_answer(body: String) -> Answer {
    response(200, Some("text/csv; charset=utf-8"), body)
}

fn course_csv(report: &Value) -> Answer {
    let mut out = String::from(
        "course_id,student_id,student_name,email,sessions,present,absent,percentage\n",
    );
    for s in report["students"].as_array().into_iter().flatten() {
        let cols: Vec<String> = [
            "student_id",
            "name",
            "email",
            "sessions",
            "present",
            "absent",
            "percentage",
        ]
        .iter()
        .map(|k| text(&s[*k]))
        .collect();
        let mut all = vec![text(&report["course_id"])];
        all.extend(cols);
        out.push_str(&csv_line(&all));
    }
    csv_answer(out)
}

fn student_csv(report: &Value) -> Answer {
    let mut out = String::from(
        "student_id,course_id,session_id,started_at,ended_at,status,method,marked_at\n",
    );
    let sid = text(&report["student"]["id"]);
    for s in report["sessions"].as_array().into_iter().flatten() {
        let mut all = vec![sid.clone()];
        all.extend(
            [
                "course_id",
                "session_id",
                "started_at",
                "ended_at",
                "status",
                "method",
                "marked_at",
            ]
            .iter()
            .map(|k| text(&s[*k])),
        );
        out.push_str(&csv_line(&all));
    }
    csv_answer(out)
}
