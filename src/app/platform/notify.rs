//! Notifications (SPEC.md §4.16): stored first, delivered once durable as
//! `notification` to `user:<id>` or `role:<role>` on `/` and on
//! `/notifications`; unread ones replayed to each new socket. Also the
//! attendance product's own notifications: a session started in a course
//! (to its students), a student marked absent (to the student), and the
//! low-attendance warning after a session ends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::app::{App, AppError, ErrorCode, Outcome};
use crate::socketio::{Namespace, Payload, Socket};
use crate::store::{
    NewNotification, Notification, NotificationBody, NotificationTarget, Record, Role, Session,
    Status, User,
};

/// The event notifications go out as.
pub(crate) const EVENT: &str = "notification";
/// Longest title, in bytes.
const MAX_TITLE: usize = 200;

/// A notification as server code or the admin API gives it (the store's
/// [`NotificationBody`]).
pub type NotificationInput = NotificationBody;

/// Reads `{title, message, type?, data?, actionUrl?}` (the admin API).
pub(crate) fn input_from_json(v: &Value) -> Result<NotificationInput, AppError> {
    let text = |k: &str| -> Result<String, AppError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.trim().to_string()),
            Some(_) => Err(AppError::invalid(format!("{k} must be a string"))),
        }
    };
    let kind = text("type")?;
    let action_url = text("actionUrl")?;
    Ok(NotificationBody {
        kind: if kind.is_empty() { "info".into() } else { kind },
        title: text("title")?,
        message: text("message")?,
        data: v.get("data").filter(|d| !d.is_null()).cloned(),
        action_url: (!action_url.is_empty()).then_some(action_url),
    })
}

/// Checks the limits: a title or a message, a title of at most 200 bytes,
/// a type of 1–64, everything together at most `max` bytes.
pub(crate) fn check_input(n: &NotificationInput, max: usize) -> Result<(), AppError> {
    if n.title.is_empty() && n.message.is_empty() {
        return Err(AppError::invalid("a title or a message is required"));
    }
    if n.title.len() > MAX_TITLE {
        return Err(AppError::invalid("title over 200 bytes"));
    }
    if n.kind.is_empty() || n.kind.len() > 64 {
        return Err(AppError::invalid("type must be 1-64 bytes"));
    }
    let data = n
        .data
        .as_ref()
        .map_or(0, |d| serde_json::to_vec(d).map_or(0, |v| v.len()));
    let size = n.title.len()
        + n.message.len()
        + n.kind.len()
        + data
        + n.action_url.as_ref().map_or(0, String::len);
    if size > max {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("notification over {max} bytes"),
        ));
    }
    Ok(())
}

/// A notification as clients see it (SPEC.md §4.16).
pub(crate) fn notification_json(n: &Notification) -> Value {
    let (kind, id) = match &n.target {
        NotificationTarget::User(u) => ("user", u.as_str()),
        NotificationTarget::Role(r) => ("role", r.as_str()),
    };
    let b = &n.body;
    json!({"id": n.id, "type": b.kind, "title": b.title, "message": b.message,
           "data": b.data, "actionUrl": b.action_url, "createdAt": n.created_at,
           "read": n.read, "target": {"type": kind, "id": id}})
}

/// The room a notification goes to.
fn room(n: &Notification) -> String {
    match &n.target {
        NotificationTarget::User(u) => format!("user:{u}"),
        NotificationTarget::Role(r) => format!("role:{}", r.as_str()),
    }
}

/// Sends stored, durable notifications to their rooms on both namespaces;
/// returns how many sockets they reached.
pub(crate) fn deliver(namespaces: &[Arc<Namespace>], notes: &[Notification]) -> usize {
    let mut reached = 0;
    for n in notes {
        let payload = Payload::one(notification_json(n));
        let room = room(n);
        for ns in namespaces {
            reached += ns.to(&room).emit(EVENT, &payload);
        }
    }
    reached
}

impl App {
    /// Both namespaces notifications are delivered on.
    pub(crate) fn notification_namespaces(&self) -> [Arc<Namespace>; 2] {
        [
            self.ns().clone(),
            self.platform().notifications_ns().clone(),
        ]
    }

    /// Notifies every device of user `user_id`: stored, durable, then
    /// delivered. Returns the stored notification and how many sockets it
    /// reached.
    pub async fn notify_user(
        &self,
        user_id: &str,
        n: NotificationInput,
    ) -> Result<(Notification, usize), AppError> {
        if self.store().user(user_id)?.is_none() {
            return Err(AppError::not_found("User not found"));
        }
        self.notify(n, NotificationTarget::User(user_id.to_string()))
            .await
    }

    /// Notifies every user with `role` (stored once; each user's read
    /// state is their own).
    pub async fn notify_role(
        &self,
        role: Role,
        n: NotificationInput,
    ) -> Result<(Notification, usize), AppError> {
        self.notify(n, NotificationTarget::Role(role)).await
    }

    async fn notify(
        &self,
        n: NotificationInput,
        target: NotificationTarget,
    ) -> Result<(Notification, usize), AppError> {
        check_input(&n, self.config().platform.notification_max_bytes)?;
        let (mut stored, ticket) = self.store().add_notifications(vec![n.to(target)])?;
        if let Err(e) = self.store().durable(ticket).await {
            tracing::error!(error = %e, "flush failed");
            return Err(AppError::new(ErrorCode::Internal, "storage failure"));
        }
        let reached = deliver(&self.notification_namespaces(), &stored);
        let n = stored
            .pop()
            .ok_or_else(|| AppError::new(ErrorCode::Internal, "internal error"))?;
        Ok((n, reached))
    }

    /// Sends a new socket the unread notifications of its user (at most
    /// `replay_max`, oldest first, each with `"missed": true`), once what
    /// was read is durable.
    pub(crate) fn replay_missed(self: &Arc<Self>, socket: &Arc<Socket>, user: &Arc<User>) {
        let (app, socket, user) = (self.clone(), socket.clone(), user.clone());
        tokio::spawn(async move {
            let max = app.config().platform.replay_max;
            let page = match app.store().notifications_page(&user, None, max, true) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read notifications");
                    return;
                }
            };
            if page.items.is_empty() || app.store().durable(app.store().barrier()).await.is_err() {
                return;
            }
            for n in page.items.iter().rev() {
                let mut v = notification_json(n);
                v["missed"] = json!(true);
                let _ = socket.emit(EVENT, &Payload::one(v));
            }
        });
    }
}

/// Adds stored notifications to an outcome: its ticket moves to the
/// notifications' write (which covers the request's own, written before),
/// and they are delivered after the request's other effects. A failure here
/// is logged and costs only the notifications: the request's own change is
/// made already.
fn attach(app: &App, o: Outcome, new: Result<Vec<NewNotification>, AppError>) -> Outcome {
    let stored = new.and_then(|new| {
        if new.is_empty() {
            return Ok(None);
        }
        Ok(Some(app.store().add_notifications(new)?))
    });
    match stored {
        Ok(Some((stored, ticket))) => {
            let namespaces = app.notification_namespaces();
            o.ticket(ticket).then(move |_| {
                deliver(&namespaces, &stored);
            })
        }
        Ok(None) => o,
        Err(e) => {
            tracing::warn!(error = %e, "notifications not stored");
            o
        }
    }
}

/// A new session: every student enrolled in its course hears of it.
pub(crate) fn session_started(app: &App, s: &Session, students: &[String], o: Outcome) -> Outcome {
    let new = (|| {
        let course = app.store().course(&s.course_id)?;
        let course_name = course
            .as_ref()
            .map_or(s.course_id.as_str(), |c| c.name.as_str());
        let teacher = app.store().user_name(&s.teacher_id)?;
        let teacher = teacher.as_deref().unwrap_or("");
        let message = format!(
            "{course_name}: {teacher} started attendance session {}",
            s.id
        );
        let data = json!({"session_id": s.id, "course_id": s.course_id});
        Ok(students
            .iter()
            .map(|st| {
                NotificationInput::new("session_started", "Attendance session started", &message)
                    .with_data(data.clone())
                    .to(NotificationTarget::User(st.clone()))
            })
            .collect())
    })();
    attach(app, o, new)
}

/// The students of each active session already told they were marked
/// absent: a student hears of it once per session, however often a teacher
/// re-marks them (this keeps the mark path's writes to the marks
/// themselves). In memory: after a restart a student may hear of it once
/// more. Lock: a leaf, held for one lookup or update.
#[derive(Default)]
pub(crate) struct AbsentTold {
    sessions: Mutex<HashMap<String, HashSet<String>>>,
}

impl AbsentTold {
    /// Whether `student` is to be told now (true once per session).
    fn first(&self, sid: &str, student: &str) -> bool {
        let mut s = self.sessions.lock();
        match s.get_mut(sid) {
            Some(told) if told.contains(student) => false,
            Some(told) => told.insert(student.to_string()),
            None => {
                s.insert(sid.to_string(), HashSet::from([student.to_string()]));
                true
            }
        }
    }

    /// The session ended.
    fn forget(&self, sid: &str) {
        self.sessions.lock().remove(sid);
    }
}

/// Marks by a teacher (one or bulk) that set a student absent tell that
/// student, the first time in the session. Self check-ins never do (they
/// only mark present).
pub(crate) fn after_marks(app: &App, sid: &str, records: &[Record], o: Outcome) -> Outcome {
    if !records.iter().any(|r| r.status == Status::Absent) {
        return o;
    }
    let told = app.platform().absent_told();
    let new = records
        .iter()
        .filter(|r| r.status == Status::Absent && told.first(sid, &r.student_id))
        .map(|r| {
            NotificationInput::new(
                "marked_absent",
                "Marked absent",
                &format!("You were marked absent in attendance session {sid}"),
            )
            .with_data(json!({"session_id": sid, "marked_by": r.marked_by,
                              "marked_at": r.marked_at}))
            .to(NotificationTarget::User(r.student_id.clone()))
        })
        .collect();
    attach(app, o, Ok(new))
}

/// A session ended: its records join the course's tallies, and each
/// student whose percentage fell under the threshold with it is warned.
pub(crate) fn after_end(app: &App, s: &Session, o: Outcome) -> Outcome {
    app.platform().absent_told().forget(&s.id);
    let tallied = app
        .store()
        .records(&s.id)
        .and_then(|records| app.store().tally_session(&s.course_id, &records));
    let (changes, ticket) = match tallied {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, session = %s.id, "attendance not tallied");
            return o;
        }
    };
    let o = o.ticket(ticket);
    let threshold = app.config().platform.low_attendance_pct;
    if threshold <= 0.0 {
        return o;
    }
    let new =
        app.store()
            .course(&s.course_id)
            .map_err(AppError::from)
            .map(|course| {
                let course_name = course
                    .as_ref()
                    .map_or(s.course_id.as_str(), |c| c.name.as_str());
                changes
                    .into_iter()
                    .filter(|(_, before, after)| {
                        *after < threshold && before.is_none_or(|b| b >= threshold)
                    })
                    .map(|(student, _, after)| {
                        NotificationInput::new(
                    "low_attendance",
                    "Low attendance",
                    &format!("Your attendance in {course_name} is {after:.1}%, under {threshold}%"),
                )
                .with_data(json!({"course_id": s.course_id, "session_id": s.id,
                                  "percent": (after * 10.0).round() / 10.0,
                                  "threshold": threshold}))
                .to(NotificationTarget::User(student))
                    })
                    .collect()
            });
    attach(app, o, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_told_once_per_session() {
        let t = AbsentTold::default();
        assert!(t.first("s", "a"));
        assert!(!t.first("s", "a"));
        assert!(t.first("s", "b"));
        assert!(t.first("s2", "a"));
        t.forget("s");
        assert!(t.first("s", "a"));
    }

    #[test]
    fn input_limits() {
        let ok = NotificationInput::new("info", "t", "m");
        assert!(check_input(&ok, 100).is_ok());
        let empty = NotificationInput::new("info", "", "");
        let code = |n: &NotificationInput, max| check_input(n, max).map_err(|e| e.code);
        assert_eq!(code(&empty, 100), Err(ErrorCode::InvalidPayload));
        let big = NotificationInput::new("info", "t", &"x".repeat(200));
        assert_eq!(code(&big, 100), Err(ErrorCode::PayloadTooLarge));
        let long_title = NotificationInput::new("info", &"t".repeat(201), "");
        assert!(check_input(&long_title, 10_000).is_err());
        let v = json!({"title": "Hi", "message": 3});
        assert!(input_from_json(&v).is_err());
        let v = json!({"title": " Hi ", "actionUrl": "/x", "data": {"a": 1}});
        let n = input_from_json(&v).expect("parse");
        assert_eq!((n.kind.as_str(), n.title.as_str()), ("info", "Hi"));
        assert_eq!(n.action_url.as_deref(), Some("/x"));
    }
}
