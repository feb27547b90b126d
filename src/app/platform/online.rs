//! Online presence across devices (SPEC.md §4.18): the counts are in
//! the app's `presence`; this announces the flips and builds
//! the online lists. A flip is announced to the admins and to the rooms of
//! the user's courses (their subscribers), never per socket.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::app::presence::OnlineUser;
use crate::app::{course_room, App};
use crate::socketio::{Payload, Room};
use crate::store::{Course, User};

/// The event a presence flip goes out as.
pub(crate) const STATUS_EVENT: &str = "userStatusChanged";

/// One online user as clients see it.
pub(crate) fn online_json(id: &str, u: &OnlineUser) -> Value {
    json!({"userId": id, "userName": u.name, "role": u.role,
           "connections": u.connections, "since": u.since})
}

impl App {
    /// A socket of `user` connected; announces the user coming online.
    pub(crate) fn user_online(self: &Arc<Self>, user: &Arc<User>) {
        if self
            .presence()
            .user_connected(&user.id, &user.name, user.role.as_str())
            == 1
        {
            self.announce_status(user, "online");
        }
    }

    /// A socket of `user` disconnected; announces the user going offline
    /// when it was the last.
    pub(crate) fn user_offline(self: &Arc<Self>, user: &Arc<User>) {
        if self.presence().user_disconnected(&user.id) == 0 {
            self.announce_status(user, "offline");
        }
    }

    fn announce_status(&self, user: &User, status: &str) {
        let mut rooms: Vec<Room> = vec!["role:admin".into()];
        match self.store().courses_shared() {
            Ok(courses) => rooms.extend(
                courses
                    .iter()
                    .filter(|c| is_member(c, &user.id))
                    .map(|c| course_room(&c.id).into()),
            ),
            Err(e) => tracing::warn!(error = %e, "cannot list courses"),
        }
        let connections = self
            .presence()
            .online_user(&user.id)
            .map_or(0, |u| u.connections);
        let v = json!({"userId": user.id, "userName": user.name, "role": user.role.as_str(),
                       "status": status, "connections": connections,
                       "timestamp": crate::store::now_rfc3339()});
        self.ns()
            .to_rooms(rooms)
            .emit(STATUS_EVENT, &Payload::one(v));
    }

    /// Every online user.
    pub(crate) fn online_users_json(&self) -> Value {
        let users: Vec<Value> = self
            .presence()
            .online_users()
            .iter()
            .map(|(id, u)| online_json(id, u))
            .collect();
        json!({"count": users.len(), "users": users})
    }

    /// The online members (teachers and students) of `course`.
    pub(crate) fn online_in_course_json(&self, course: &Course) -> Value {
        let mut ids: Vec<&String> = course.teachers.iter().chain(&course.students).collect();
        ids.sort();
        ids.dedup();
        let users: Vec<Value> = ids
            .into_iter()
            .filter_map(|id| self.presence().online_user(id).map(|u| online_json(id, &u)))
            .collect();
        json!({"course_id": course.id, "count": users.len(), "users": users})
    }
}

/// Whether `user_id` teaches or is enrolled in `course`.
fn is_member(course: &Course, user_id: &str) -> bool {
    course.teachers.iter().any(|t| t == user_id) || course.students.iter().any(|s| s == user_id)
}
