//! Live administration over HTTP (SPEC.md §4.23): users (create, list and
//! search, get; role and active flag through §4.22's `PATCH`), courses
//! (create, list, get, teachers), and the delegation to enrolment
//! (`enrol`) and to sessions, records and reports (`reports`).
//!
//! Every change is durable before the answer, like the rest of the API, so
//! that what the CLI or a page was told survives a crash. Permissions: an
//! admin for users; an admin or one of a course's teachers for that course
//! (a student is refused before anything is looked up).

// Early answers are the error: a route returns `Err(response)` once per
// request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use http::{Method, Request, Response};
use serde_json::{json, Value};

use super::paging::{
    admin_only, caller, internal, is_staff, query, staff_course, user_or_404, Answer, Page,
};
use super::{enrol, error, field, json_response, password, reports, user_json};
use crate::app::auth::hash_password;
use crate::app::{App, ErrorCode};
use crate::http::Body;
use crate::store::{Course, Role, StoreError, User};

type Req = Request<hyper::body::Incoming>;

/// Whether this file answers `method path` (the `GET` of one user sits
/// beside §4.22's routes under `/api/admin/users/`).
pub(super) fn handles(method: &Method, path: &str) -> bool {
    path == "/api/admin/users"
        || (method == Method::GET
            && path
                .strip_prefix("/api/admin/users/")
                .is_some_and(|id| !id.is_empty() && !id.contains('/')))
        || path == "/api/courses"
        || path.starts_with("/api/courses/")
        || reports::handles(path)
}

/// Answers one of the administration routes.
pub(super) async fn route(app: &Arc<App>, req: Req) -> Response<Body> {
    let user = match caller(app, &req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let result = match (method, path.as_str()) {
        (Method::POST, "/api/admin/users") => create_user(app, &user, req).await,
        (Method::GET, "/api/admin/users") => list_users(app, &user, &req),
        (Method::GET, p) if p.starts_with("/api/admin/users/") => {
            get_user(app, &user, &p["/api/admin/users/".len()..])
        }
        (Method::POST, "/api/courses") => create_course(app, &user, req).await,
        (Method::GET, "/api/courses") => list_courses(app, &user, &req),
        (m, p) if p.starts_with("/api/courses/") => {
            let rest = &p["/api/courses/".len()..];
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            course_route(app, &user, m, id.to_string(), action.to_string(), req).await
        }
        (m, p) => reports::route(app, &user, m, p, &req),
    };
    result.unwrap_or_else(|r| r)
}

fn no_route() -> Answer {
    error(404, ErrorCode::NotFound, "no such route")
}

/// Routes under `/api/courses/<id>/`.
async fn course_route(
    app: &Arc<App>,
    user: &User,
    method: Method,
    id: String,
    action: String,
    req: Req,
) -> Result<Answer, Answer> {
    if id.is_empty() {
        return Err(no_route());
    }
    match (method, action.as_str()) {
        (Method::GET, "") => get_course(app, user, &id),
        (Method::POST, "teachers") => add_teacher(app, user, &id, req).await,
        (Method::DELETE, a) if a.starts_with("teachers/") => {
            remove_teacher(app, user, &id, &a["teachers/".len()..]).await
        }
        (m, a) if enrol::handles(&m, a) => enrol::route(app, user, m, &id, a, req).await,
        (m, a) => reports::course_route(app, user, m, &id, a, &req),
    }
}

/// The body as a JSON object (§4.22's rule: empty counts as `{}`).
use super::platform_b::body_or_empty as object;
/// Waits until a ticket is durable (`500` otherwise).
pub(super) use super::platform_b::durable;

/// Checks an email, a name and an optional id as the API accepts them.
pub(super) fn check_new_user(
    email: &str,
    name: &str,
    id: Option<&str>,
) -> Result<(), &'static str> {
    if !email.contains('@') || email.len() > 254 {
        return Err("email must contain @ and be at most 254 bytes");
    }
    if name.len() > 200 {
        return Err("name must be at most 200 bytes");
    }
    if id.is_some_and(|i| i.len() > 128 || i.contains(['/', '?', '#', '%', '\0'])) {
        return Err("id must be at most 128 bytes without / ? # % or NUL");
    }
    Ok(())
}

/// Creates a user and waits for it to be durable (`409 conflict` when the
/// id or the email exists).
pub(super) async fn insert_user(app: &Arc<App>, user: &User) -> Result<(), Answer> {
    match app.store().create_user(user) {
        Ok(t) => durable(app, t).await,
        Err(StoreError::Exists(what)) => Err(error(
            409,
            ErrorCode::Conflict,
            if what == "email" {
                "email already exists"
            } else {
                "user id already exists"
            },
        )),
        Err(_) => Err(internal()),
    }
}

/// A new active user (no password when `password` is `None`).
pub(super) async fn new_user(
    email: &str,
    name: &str,
    role: Role,
    password: Option<String>,
    id: Option<String>,
) -> User {
    let hash = match password {
        Some(p) => tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .ok(),
        None => None,
    };
    account(email, name, role, hash, id)
}

/// A new active user with password hash `hash` (id random when `None`).
pub(super) fn account(
    email: &str,
    name: &str,
    role: Role,
    hash: Option<String>,
    id: Option<String>,
) -> User {
    User {
        id: id.unwrap_or_else(|| crate::util::random_id(12)),
        email: email.to_string(),
        name: name.to_string(),
        role,
        password_hash: hash,
        active: true,
        token_version: 0,
        created_at: crate::store::now_rfc3339(),
    }
}

/// `POST /api/admin/users {email, name, role?, password?, id?}`.
async fn create_user(app: &Arc<App>, caller: &User, req: Req) -> Result<Answer, Answer> {
    admin_only(caller)?;
    let body = object(req).await?;
    let bad = |m: &str| error(400, ErrorCode::InvalidPayload, m);
    let (Some(email), Some(name)) = (field(&body, "email"), field(&body, "name")) else {
        return Err(bad("email and name are required"));
    };
    let role = match body.get("role") {
        None | Some(Value::Null) => Role::Student,
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("role must be admin, teacher or student"))?,
    };
    let pw = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(_) => match password(&body) {
            Some(p) if (8..=1024).contains(&p.len()) => Some(p.to_string()),
            _ => return Err(bad("password must be 8 to 1024 bytes")),
        },
    };
    let id = field(&body, "id");
    check_new_user(email, name, id).map_err(bad)?;
    let user = new_user(email, name, role, pw, id.map(str::to_string)).await;
    insert_user(app, &user).await?;
    Ok(json_response(
        201,
        json!({"ok": true, "user": user_json(&user)}),
    ))
}

/// `GET /api/admin/users?q=&role=&limit=&cursor=|offset=`: by id; `q`
/// matches id, email or name (case-insensitive substring).
fn list_users(app: &Arc<App>, caller: &User, req: &Req) -> Result<Answer, Answer> {
    admin_only(caller)?;
    let page = Page::of(req)?;
    let q = query(req, "q").map(|s| s.trim().to_lowercase());
    let role = match query(req, "role") {
        None => None,
        Some(r) => Some(r.parse::<Role>().map_err(|_| {
            error(
                400,
                ErrorCode::InvalidPayload,
                "role must be admin, teacher or student",
            )
        })?),
    };
    let users: Vec<User> = app
        .store()
        .users()
        .map_err(|_| internal())?
        .into_iter()
        .filter(|u| role.is_none_or(|r| u.role == r))
        .filter(|u| q.as_deref().is_none_or(|q| matches(u, q)))
        .collect();
    Ok(page.answer(&users, false, |u| u.id.clone(), user_json))
}

/// Whether `q` (lower case) is in the user's id, email or name.
pub(super) fn matches(u: &User, q: &str) -> bool {
    q.is_empty()
        || u.id.to_lowercase().contains(q)
        || u.email.to_lowercase().contains(q)
        || u.name.to_lowercase().contains(q)
}

/// `GET /api/admin/users/<id>`: the user and their courses.
fn get_user(app: &Arc<App>, caller: &User, id: &str) -> Result<Answer, Answer> {
    admin_only(caller)?;
    let u = user_or_404(app, id)?;
    let courses = app.store().courses_shared().map_err(|_| internal())?;
    let teaches: Vec<&str> = courses
        .iter()
        .filter(|c| c.teachers.contains(&u.id))
        .map(|c| c.id.as_str())
        .collect();
    let enrolled: Vec<&str> = courses
        .iter()
        .filter(|c| c.students.contains(&u.id))
        .map(|c| c.id.as_str())
        .collect();
    Ok(json_response(
        200,
        json!({"ok": true, "user": user_json(&u), "teaches": teaches, "enrolled": enrolled,
               "created_at": u.created_at, "token_version": u.token_version}),
    ))
}

/// A course as the API shows it.
pub(super) fn course_json(c: &Course) -> Value {
    json!({"id": c.id, "name": c.name, "teachers": c.teachers, "students": c.students.len()})
}

/// A user who may teach (`400` otherwise, `404` when unknown).
#[allow(clippy::result_large_err)]
fn teacher(app: &Arc<App>, id: &str) -> Result<User, Answer> {
    match app.store().user(id) {
        Ok(Some(u)) if u.role != Role::Student => Ok(u),
        Ok(Some(_)) => Err(error(
            400,
            ErrorCode::InvalidPayload,
            "a teacher must have the teacher or admin role",
        )),
        Ok(None) => Err(error(404, ErrorCode::NotFound, "user not found")),
        Err(_) => Err(internal()),
    }
}

/// `POST /api/courses {id?, name, teachers?}`: an admin, or a teacher (who
/// becomes its first teacher).
async fn create_course(app: &Arc<App>, caller: &User, req: Req) -> Result<Answer, Answer> {
    if caller.role == Role::Student {
        return Err(error(403, ErrorCode::Forbidden, "teachers and admins only"));
    }
    let body = object(req).await?;
    let bad = |m: &str| error(400, ErrorCode::InvalidPayload, m);
    let name = field(&body, "name").ok_or_else(|| bad("name is required"))?;
    let id = field(&body, "id")
        .map(str::to_string)
        .unwrap_or_else(|| crate::util::random_id(9));
    if name.len() > 200 {
        return Err(bad("name must be at most 200 bytes"));
    }
    check_new_user("x@x", name, Some(&id)).map_err(bad)?;
    let mut teachers: Vec<String> = match body.get("teachers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("teachers must be an array of user ids"))?,
        Some(_) => return Err(bad("teachers must be an array of user ids")),
    };
    if caller.role == Role::Teacher && !teachers.contains(&caller.id) {
        teachers.insert(0, caller.id.clone());
    }
    teachers.dedup();
    for t in &teachers {
        teacher(app, t)?;
    }
    let course = Course {
        id,
        name: name.to_string(),
        teachers,
        students: Vec::new(),
    };
    match app.store().create_course(&course) {
        Ok(t) => durable(app, t).await?,
        Err(StoreError::Exists(_)) => {
            return Err(error(409, ErrorCode::Conflict, "course id already exists"))
        }
        Err(_) => return Err(internal()),
    }
    Ok(json_response(
        201,
        json!({"ok": true, "course": course_json(&course)}),
    ))
}

/// `GET /api/courses?q=&limit=&cursor=|offset=`: an admin sees every
/// course, a teacher the ones they teach, a student the ones they are
/// enrolled in.
fn list_courses(app: &Arc<App>, caller: &User, req: &Req) -> Result<Answer, Answer> {
    let page = Page::of(req)?;
    let q = query(req, "q").map(|s| s.trim().to_lowercase());
    let courses: Vec<Arc<Course>> = app
        .store()
        .courses_shared()
        .map_err(|_| internal())?
        .into_iter()
        .filter(|c| match caller.role {
            Role::Admin => true,
            Role::Teacher => c.teachers.contains(&caller.id),
            Role::Student => c.students.contains(&caller.id),
        })
        .filter(|c| {
            q.as_deref().is_none_or(|q| {
                c.id.to_lowercase().contains(q) || c.name.to_lowercase().contains(q)
            })
        })
        .collect();
    let active = |c: &Course| {
        app.store()
            .active_sessions_of(&c.id)
            .map(|v| v.into_iter().map(|s| s.id).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    Ok(page.answer(
        &courses,
        false,
        |c| c.id.clone(),
        |c| {
            let mut v = course_json(c);
            v["active_sessions"] = json!(active(c));
            v
        },
    ))
}

/// `GET /api/courses/<id>`: staff, or a student enrolled in it.
fn get_course(app: &Arc<App>, caller: &User, id: &str) -> Result<Answer, Answer> {
    let course = match app.store().course(id) {
        Ok(Some(c)) => c,
        Ok(None) if caller.role != Role::Student => {
            return Err(error(404, ErrorCode::NotFound, "course not found"))
        }
        Ok(None) => {
            return Err(error(
                403,
                ErrorCode::Forbidden,
                "not enrolled in this course",
            ))
        }
        Err(_) => return Err(internal()),
    };
    let enrolled = course.students.contains(&caller.id);
    if !is_staff(caller, &course) && !enrolled {
        return Err(error(
            403,
            ErrorCode::Forbidden,
            "not a member of this course",
        ));
    }
    let teachers: Vec<Value> = course
        .teachers
        .iter()
        .filter_map(|t| app.store().user(t).ok().flatten())
        .map(|u| json!({"id": u.id, "name": u.name, "email": u.email}))
        .collect();
    let active: Vec<String> = app
        .store()
        .active_sessions_of(&course.id)
        .map_err(|_| internal())?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut v = course_json(&course);
    v["teachers"] = json!(teachers);
    v["active_sessions"] = json!(active);
    Ok(json_response(200, json!({"ok": true, "course": v})))
}

/// `POST /api/courses/<id>/teachers {user_id}`.
async fn add_teacher(app: &Arc<App>, caller: &User, id: &str, req: Req) -> Result<Answer, Answer> {
    staff_course(app, caller, id)?;
    let body = object(req).await?;
    let uid = field(&body, "user_id")
        .ok_or_else(|| error(400, ErrorCode::InvalidPayload, "user_id is required"))?;
    let t = teacher(app, uid)?;
    let (course, ticket) = app
        .store()
        .update_course(id, |c| {
            if !c.teachers.contains(&t.id) {
                c.teachers.push(t.id.clone());
            }
        })
        .map_err(|_| internal())?;
    durable(app, ticket).await?;
    Ok(json_response(
        200,
        json!({"ok": true, "course": course_json(&course)}),
    ))
}

/// `DELETE /api/courses/<id>/teachers/<user id>` (`404` when not a teacher
/// of the course; `409` for the last teacher removed by a teacher).
async fn remove_teacher(
    app: &Arc<App>,
    caller: &User,
    id: &str,
    uid: &str,
) -> Result<Answer, Answer> {
    let course = staff_course(app, caller, id)?;
    if !course.teachers.iter().any(|t| t == uid) {
        return Err(error(
            404,
            ErrorCode::NotFound,
            "not a teacher of this course",
        ));
    }
    if caller.role != Role::Admin && course.teachers.len() == 1 {
        return Err(error(
            409,
            ErrorCode::Conflict,
            "a teacher cannot remove the course's last teacher",
        ));
    }
    let (course, ticket) = app
        .store()
        .update_course(id, |c| c.teachers.retain(|t| t != uid))
        .map_err(|_| internal())?;
    durable(app, ticket).await?;
    Ok(json_response(
        200,
        json!({"ok": true, "course": course_json(&course)}),
    ))
}
