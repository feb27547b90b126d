//! Enrolment over HTTP (SPEC.md §4.23): list, add, remove, and the CSV
//! import with its per-row report.
//!
//! A student enrolled while a session of the course runs gets their
//! initial absent record in that session by the same request, so the
//! roster shows them at once and they can check in at once (marks would
//! create the record too; doing it here makes the roster complete).

// Early answers are the error: a route returns `Err(response)` once per
// request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use http::{Method, Request};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use super::admin::{account, check_new_user, durable, matches};
use super::paging::{course_or_404, internal, query, staff_course, Answer, Page};
use super::{error, read_json, user_json};
use crate::app::{App, ErrorCode};
use crate::store::{Role, StoreError, User};

type Req = Request<hyper::body::Incoming>;

/// Largest CSV import body.
pub(super) const MAX_CSV_BYTES: usize = 1024 * 1024;
/// Most data rows in one CSV import.
pub(super) const MAX_CSV_ROWS: usize = 5000;

/// Whether `action` (after `/api/courses/<id>/`) is one of this file's.
pub(super) fn handles(method: &Method, action: &str) -> bool {
    matches!(
        (method, action),
        (&Method::GET, "enrolments")
            | (&Method::POST, "enrolments")
            | (&Method::POST, "enrolments.csv")
    ) || (method == Method::DELETE && action.starts_with("enrolments/"))
}

/// Answers an enrolment route of course `id`.
pub(super) async fn route(
    app: &Arc<App>,
    user: &User,
    method: Method,
    id: &str,
    action: &str,
    req: Req,
) -> Result<Answer, Answer> {
    let course = staff_course(app, user, id)?;
    match (method, action) {
        (Method::GET, _) => {
            let page = Page::of(&req)?;
            let q = query(&req, "q").map(|s| s.trim().to_lowercase());
            let mut students: Vec<User> = Vec::with_capacity(course.students.len());
            for s in &course.students {
                if let Some(u) = app.store().user(s).map_err(|_| internal())? {
                    if q.as_deref().is_none_or(|q| matches(&u, q)) {
                        students.push(u);
                    }
                }
            }
            students.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(page.answer(&students, false, |u| u.id.clone(), user_json))
        }
        (Method::POST, "enrolments") => add(app, id, req).await,
        (Method::POST, _) => import(app, id, req).await,
        (_, a) => remove(app, id, &a["enrolments/".len()..]).await,
    }
}

/// Enrols `ids` (already checked to be students) and gives each an
/// initial record in the course's running sessions; durable on return.
/// Returns the ones newly enrolled.
async fn enrol(app: &Arc<App>, course_id: &str, ids: &[String]) -> Result<Vec<String>, Answer> {
    let before = course_or_404(app, course_id)?;
    let new: Vec<String> = ids
        .iter()
        .filter(|s| !before.students.contains(s))
        .cloned()
        .collect();
    if new.is_empty() {
        return Ok(new);
    }
    let (_, _written) = app
        .store()
        .update_course(course_id, |c| {
            for s in &new {
                if !c.students.contains(s) {
                    c.students.push(s.clone());
                }
            }
        })
        .map_err(|_| internal())?;
    for session in app
        .store()
        .active_sessions_of(course_id)
        .map_err(|_| internal())?
    {
        for s in &new {
            match app.store().ensure_record(&session.id, s) {
                // Made durable by the barrier below.
                Ok(_) => {}
                // Ended (or gone) meanwhile: nothing to add to it.
                Err(StoreError::SessionNotActive | StoreError::NotFound(_)) => {}
                Err(_) => return Err(internal()),
            }
        }
    }
    // Covers the enrolment and every record written above.
    durable(app, app.store().barrier()).await?;
    Ok(new)
}

/// `POST /api/courses/<id>/enrolments {student_id} | {student_ids: [...]}`.
async fn add(app: &Arc<App>, course_id: &str, req: Req) -> Result<Answer, Answer> {
    let body = read_json(req).await?;
    let bad = |m: &str| error(400, ErrorCode::InvalidPayload, m);
    let ids: Vec<String> = match (body.get("student_id"), body.get("student_ids")) {
        (Some(Value::String(s)), None) if !s.trim().is_empty() => vec![s.trim().to_string()],
        (None, Some(Value::Array(a))) if !a.is_empty() && a.len() <= MAX_CSV_ROWS => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("student_ids must be non-empty strings"))?,
        _ => return Err(bad("student_id or student_ids (1 to 5000) is required")),
    };
    for s in &ids {
        match app.store().user(s).map_err(|_| internal())? {
            Some(u) if u.role == Role::Student => {}
            Some(_) => return Err(bad(&format!("{s} is not a student"))),
            None => {
                return Err(error(
                    404,
                    ErrorCode::NotFound,
                    &format!("user {s} not found"),
                ))
            }
        }
    }
    let enrolled = enrol(app, course_id, &ids).await?;
    let already: Vec<&String> = ids.iter().filter(|s| !enrolled.contains(s)).collect();
    Ok(super::json_response(
        200,
        json!({"ok": true, "enrolled": enrolled, "already": already}),
    ))
}

/// `DELETE /api/courses/<id>/enrolments/<student id>`.
async fn remove(app: &Arc<App>, course_id: &str, sid: &str) -> Result<Answer, Answer> {
    let course = course_or_404(app, course_id)?;
    if !course.students.iter().any(|s| s == sid) {
        return Err(error(404, ErrorCode::NotFound, "student not enrolled"));
    }
    let (_, ticket) = app
        .store()
        .update_course(course_id, |c| c.students.retain(|s| s != sid))
        .map_err(|_| internal())?;
    durable(app, ticket).await?;
    Ok(super::json_response(
        200,
        json!({"ok": true, "removed": sid}),
    ))
}

/// One row's outcome in the import report.
fn row(n: usize, email: &str, result: &str, user: Option<&str>, reason: Option<&str>) -> Value {
    json!({"row": n, "email": email, "result": result, "user_id": user, "reason": reason})
}

/// Splits one CSV line into fields (RFC 4180 quotes; no line breaks inside
/// quotes).
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() && !was_quoted => {
                cur.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    out.push(cur.trim().to_string());
    Ok(out)
}

/// `POST /api/courses/<id>/enrolments.csv`: rows `email,name[,student_id]`
/// (an optional header line starting with `email`). Each row is applied on
/// its own; the answer reports every row.
async fn import(app: &Arc<App>, course_id: &str, req: Req) -> Result<Answer, Answer> {
    let body = Limited::new(req.into_body(), MAX_CSV_BYTES)
        .collect()
        .await
        .map_err(|_| error(413, ErrorCode::PayloadTooLarge, "body over 1 MiB"))?
        .to_bytes();
    let text = std::str::from_utf8(&body)
        .map_err(|_| error(400, ErrorCode::InvalidPayload, "body must be UTF-8 CSV"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let skip_header = lines
        .first()
        .is_some_and(|(_, l)| l.trim().to_lowercase().starts_with("email"));
    let data = &lines[usize::from(skip_header)..];
    if data.is_empty() {
        return Err(error(400, ErrorCode::InvalidPayload, "no rows"));
    }
    if data.len() > MAX_CSV_ROWS {
        return Err(error(400, ErrorCode::InvalidPayload, "more than 5000 rows"));
    }
    let course = course_or_404(app, course_id)?;
    // Students this import enrols, in row order; one enrolment (one course
    // write, one flush) for all of them at the end.
    let mut to_enrol: Vec<String> = Vec::new();
    let mut report = Vec::with_capacity(data.len());
    let mut counts = [0usize; 4]; // created, enrolled, already, error
    for &(n, line) in data {
        let (email, outcome) = import_row(app, line)?;
        let (result, uid, reason) = match outcome {
            Ok((user, created)) => {
                let known = course.students.contains(&user) || to_enrol.contains(&user);
                if !known {
                    to_enrol.push(user.clone());
                }
                let result = match (created, known) {
                    (true, _) => "created",
                    (false, false) => "enrolled",
                    (false, true) => "already",
                };
                (result, Some(user), None)
            }
            Err(why) => ("error", None, Some(why)),
        };
        counts[match result {
            "created" => 0,
            "enrolled" => 1,
            "already" => 2,
            _ => 3,
        }] += 1;
        report.push(row(n, &email, result, uid.as_deref(), reason.as_deref()));
    }
    // Durable on return: covers the users created above too.
    enrol(app, course_id, &to_enrol).await?;
    durable(app, app.store().barrier()).await?;
    Ok(super::json_response(
        200,
        json!({"ok": true, "rows": report, "created": counts[0], "enrolled": counts[1],
               "already": counts[2], "errors": counts[3]}),
    ))
}

/// What one import row did: its student and whether it was created, or
/// why the row was refused.
type RowOutcome = Result<(String, bool), String>;

/// One import row: its email and outcome. Only a storage failure stops
/// the import (`Err`). A created student is written, not yet durable.
fn import_row(app: &Arc<App>, line: &str) -> Result<(String, RowOutcome), Answer> {
    let fail = |email: &str, why: &str| Ok((email.to_string(), Err(why.to_string())));
    let cols = match split_csv(line) {
        Ok(c) => c,
        Err(e) => return fail("", e),
    };
    let email = cols.first().cloned().unwrap_or_default();
    let name = cols.get(1).cloned().unwrap_or_default();
    let want_id = cols.get(2).filter(|s| !s.is_empty()).cloned();
    if cols.len() > 3 {
        return fail(&email, "too many columns (email,name[,student_id])");
    }
    if email.is_empty() || name.is_empty() {
        return fail(&email, "email and name are required");
    }
    if let Err(e) = check_new_user(&email, &name, want_id.as_deref()) {
        return fail(&email, e);
    }
    match app.store().user_by_email(&email).map_err(|_| internal())? {
        Some(u) if u.role != Role::Student => fail(&email, "user is not a student"),
        Some(u) if want_id.as_ref().is_some_and(|i| *i != u.id) => {
            fail(&email, "email belongs to another student id")
        }
        Some(u) => Ok((email, Ok((u.id, false)))),
        None => {
            let u = account(&email, &name, Role::Student, None, want_id);
            match app.store().create_user(&u) {
                Ok(_) => Ok((email, Ok((u.id, true)))),
                Err(StoreError::Exists(_)) => fail(&email, "student id already exists"),
                Err(_) => Err(internal()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_csv;

    #[test]
    fn csv_fields_split_with_quotes() {
        assert_eq!(split_csv("a@b, Ann ,s1").unwrap(), ["a@b", "Ann", "s1"]);
        assert_eq!(
            split_csv("a@b,\"Lee, \"\"Al\"\"\"").unwrap(),
            ["a@b", "Lee, \"Al\""]
        );
        assert!(split_csv("a@b,\"open").is_err());
    }
}
