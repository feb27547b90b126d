//! What every administration route shares (SPEC.md §4.23): the caller from
//! the bearer token, the permission checks on a course, query parameters,
//! and the one pagination shape of every list:
//! `{"ok":true,"items":[…],"total":n,"next_cursor":string|null}`.
//!
//! A list is sorted by a key (ids, or start times for sessions); the cursor
//! is the key of the last item returned, so a page is stable when items
//! are added before it. `?offset=` is accepted instead of a cursor.

// Early answers are the error: a route returns `Err(response)` once per
// request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use http::{Request, Response};
use serde_json::{json, Value};

use super::{bearer, error, error_with, json_response};
use crate::app::{App, ErrorCode};
use crate::engine::query_param;
use crate::http::Body;
use crate::store::{Course, Role, User};

/// Default page size.
pub(super) const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub(super) const MAX_LIMIT: usize = 500;

/// An early answer (an error response), as the routes return them.
pub(super) type Answer = Response<Body>;

/// A storage failure answer.
pub(super) fn internal() -> Answer {
    error(500, ErrorCode::Internal, "storage failure")
}

/// The bearer token's user (`401` with the auth codes of §4.3).
// The error is the answer itself, made once per request.
#[allow(clippy::result_large_err)]
pub(super) fn caller<B>(app: &Arc<App>, req: &Request<B>) -> Result<User, Answer> {
    app.keys()
        .authenticate(app.store(), bearer(req))
        .map_err(|e| error_with(401, e.code(), &e.to_string()))
}

/// Query parameter `name` of `req`, percent-decoded.
pub(super) fn query<B>(req: &Request<B>, name: &str) -> Option<String> {
    query_param(req.uri().query().unwrap_or(""), name)
}

/// Whether `user` is an admin or a teacher of `course`.
pub(super) fn is_staff(user: &User, course: &Course) -> bool {
    user.role == Role::Admin || (user.role == Role::Teacher && course.teachers.contains(&user.id))
}

/// The course `id` when `user` is its staff: `404 not_found` for an unknown
/// course, `403 forbidden` otherwise.
#[allow(clippy::result_large_err)]
pub(super) fn staff_course(app: &Arc<App>, user: &User, id: &str) -> Result<Arc<Course>, Answer> {
    if user.role == Role::Student {
        // Checked before existence: a student learns nothing of other courses.
        return Err(error(403, ErrorCode::Forbidden, "teachers and admins only"));
    }
    let c = course_or_404(app, id)?;
    if is_staff(user, &c) {
        Ok(c)
    } else {
        Err(error(
            403,
            ErrorCode::Forbidden,
            "only the course's teachers or an admin",
        ))
    }
}

/// The course `id` (`404 not_found`: `course not found`).
#[allow(clippy::result_large_err)]
pub(super) fn course_or_404(app: &Arc<App>, id: &str) -> Result<Arc<Course>, Answer> {
    app.store()
        .course(id)
        .map_err(|_| internal())?
        .ok_or_else(|| error(404, ErrorCode::NotFound, "course not found"))
}

/// The user `id` (`404 not_found`: `user not found`).
#[allow(clippy::result_large_err)]
pub(super) fn user_or_404(app: &Arc<App>, id: &str) -> Result<User, Answer> {
    app.store()
        .user(id)
        .map_err(|_| internal())?
        .ok_or_else(|| error(404, ErrorCode::NotFound, "user not found"))
}

/// `403` unless `user` is an admin.
#[allow(clippy::result_large_err)]
pub(super) fn admin_only(user: &User) -> Result<(), Answer> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(error(403, ErrorCode::Forbidden, "admins only"))
    }
}

/// Paging parameters of a list request.
pub(super) struct Page {
    limit: usize,
    cursor: Option<String>,
    offset: usize,
}

impl Page {
    /// Reads `?limit=` (1–500, default 50) and `?cursor=` or `?offset=`
    /// (`400 invalid_payload` when malformed).
    #[allow(clippy::result_large_err)]
    pub(super) fn of<B>(req: &Request<B>) -> Result<Page, Answer> {
        let bad = |m: &str| error(400, ErrorCode::InvalidPayload, m);
        let limit = match query(req, "limit") {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(bad("limit must be a number from 1 to 500")),
            },
        };
        let offset = match query(req, "offset") {
            None => 0,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| bad("offset must be a number"))?,
        };
        let cursor = query(req, "cursor").filter(|c| !c.is_empty());
        if cursor.is_some() && offset > 0 {
            return Err(bad("cursor and offset are exclusive"));
        }
        Ok(Page {
            limit,
            cursor,
            offset,
        })
    }

    /// One page of `items` (sorted by `key`, ascending unless `desc`), as
    /// the list answer with each item shown by `view`.
    pub(super) fn answer<T>(
        &self,
        items: &[T],
        desc: bool,
        key: impl Fn(&T) -> String,
        view: impl Fn(&T) -> Value,
    ) -> Answer {
        let start = match &self.cursor {
            Some(c) => items
                .iter()
                .position(|x| {
                    let k = key(x);
                    if desc {
                        k < *c
                    } else {
                        k > *c
                    }
                })
                .unwrap_or(items.len()),
            None => self.offset.min(items.len()),
        };
        let end = (start + self.limit).min(items.len());
        let page = &items[start..end];
        let next = (end < items.len()).then(|| page.last().map(&key)).flatten();
        json_response(
            200,
            json!({"ok": true, "items": page.iter().map(view).collect::<Vec<_>>(),
                   "total": items.len(), "next_cursor": next}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Page;
    use http_body_util::BodyExt;

    async fn page(p: &Page, items: &[u32], desc: bool) -> serde_json::Value {
        let res = p.answer(items, desc, |n| format!("{n:03}"), |n| (*n).into());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    fn req(q: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(format!("/x?{q}"))
            .body(())
            .unwrap()
    }

    #[tokio::test]
    async fn cursors_walk_both_orders_and_survive_removed_items() {
        let asc = [1, 2, 3, 4, 5];
        let p = Page::of(&req("limit=2")).unwrap_or_else(|_| panic!("limit"));
        let v = page(&p, &asc, false).await;
        assert_eq!(v["items"], serde_json::json!([1, 2]));
        assert_eq!(v["total"], 5);
        assert_eq!(v["next_cursor"], "002");
        // The cursor's own item is gone: the next page starts after it anyway.
        let p = Page::of(&req("limit=2&cursor=002")).unwrap_or_else(|_| panic!("cursor"));
        assert_eq!(
            page(&p, &[1, 3, 4, 5], false).await["items"],
            serde_json::json!([3, 4])
        );
        let desc = [5, 4, 3, 2, 1];
        let v = page(&p, &desc, true).await;
        assert_eq!(v["items"], serde_json::json!([1]));
        assert_eq!(v["next_cursor"], serde_json::Value::Null);
        let p = Page::of(&req("offset=4")).unwrap_or_else(|_| panic!("offset"));
        assert_eq!(page(&p, &asc, false).await["items"], serde_json::json!([5]));
        for bad in [
            "limit=0",
            "limit=501",
            "limit=x",
            "offset=-1",
            "offset=1&cursor=a",
        ] {
            assert!(Page::of(&req(bad)).is_err(), "{bad}");
        }
    }
}
