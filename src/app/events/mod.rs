//! The request events: one table, [`EVENTS`], says which events exist, the
//! error event of each, who may send it and which handler runs it. The
//! pipeline registers exactly the table's events with each socket, and the
//! tests below hold the table to SPEC.md §4.5/§4.7, so the list lives in one
//! place.
//!
//! Handlers (one file per area) validate, check permissions, change the store
//! and return an [`Outcome`]; they run one at a time per socket and never
//! wait. The caller makes the effects visible once the write is durable.
//!
//! - `sessions`: attendance sessions (start, join, marks, bulk, data, end,
//!   stats, check-in code);
//! - `courses`: course tracking (subscribe, unsubscribe, active sessions);
//! - `self_checkin`: a student marking themselves present (the code and
//!   geofence maths it checks against is [`super::checkin`]);
//! - `rooms`: the session rooms of the seed 000 events (join, leave, update);
//! - `messenger`: the `/messenger` namespace's own table and handlers
//!   (direct messages, §4.16);
//! - `notifications`, `topics`, `presence`: the platform requests (a page
//!   of notifications and read marks; topic subscriptions; online users and
//!   session presence), see [`super::platform`];
//! - `args`: payload parsing and permission checks shared by all;
//! - `views`: the JSON views of SPEC.md §4.6;
//! - `audience`: who sees which view of an attendance event (§4.24).

use std::sync::Arc;

use serde_json::Value;

use super::{App, AppError, Outcome};
use crate::socketio::Socket;
use crate::store::User;

mod args;
mod audience;
mod courses;
mod messenger;
mod notifications;
mod presence;
mod rooms;
mod self_checkin;
mod sessions;
pub(crate) mod topics;
mod views;

pub(crate) use messenger::{message_json, MESSAGE_ERROR, MESSENGER_EVENTS};
pub(crate) use sessions::end_session;
pub(crate) use views::code_json;

/// What a handler gets besides the argument: the application, the
/// requesting socket and its user.
pub(crate) struct Ctx<'a> {
    /// The application.
    pub app: &'a Arc<App>,
    /// The requesting socket.
    pub socket: &'a Arc<Socket>,
    /// The requesting user.
    pub user: &'a User,
}

/// A handler: the request's first argument (`null` when missing) to its
/// outcome or refusal.
pub(crate) type Handler = fn(&Ctx<'_>, &Value) -> Result<Outcome, AppError>;

/// The role rule a handler enforces (SPEC.md §4.6 "Permissions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// Staff of the course: an admin, or one of the course's teachers.
    Staff,
    /// Staff, or a student enrolled in the course.
    Member,
    /// A student enrolled in the course (staff are refused).
    Student,
    /// Any authenticated user.
    Any,
}

/// One request event.
pub(crate) struct EventSpec {
    /// The event name clients send.
    pub name: &'static str,
    /// The event refusals are emitted as.
    pub error_event: &'static str,
    /// Who may send it: a label of the rule the handler enforces itself
    /// (in the spec's order of checks), read by the tests that hold the
    /// table to SPEC.md's "Checks" lines.
    #[cfg_attr(not(test), allow(dead_code))]
    pub who: Who,
    /// What it does.
    pub handler: Handler,
}

/// Error event of the attendance events.
const ATTENDANCE_ERROR: &str = "attendanceError";
/// Error event of the course tracking events.
const COURSE_ERROR: &str = "activeSessionsError";
/// Error event of the topic events.
const TOPIC_ERROR: &str = "topicError";
/// Error event of the notification events.
const NOTIFICATION_ERROR: &str = "notificationError";
/// Error event of the presence events.
const PRESENCE_ERROR: &str = "presenceError";

const fn ev(
    name: &'static str,
    error_event: &'static str,
    who: Who,
    handler: Handler,
) -> EventSpec {
    EventSpec {
        name,
        error_event,
        who,
        handler,
    }
}

/// Every event a client may send, in SPEC.md's order.
#[rustfmt::skip]
pub(crate) static EVENTS: &[EventSpec] = &[
    //  name                       error event       who           handler
    ev("startAttendanceSession",   ATTENDANCE_ERROR, Who::Staff,   sessions::start),
    ev("joinAttendanceSession",    ATTENDANCE_ERROR, Who::Member,  sessions::join),
    ev("markStudentPresent",       ATTENDANCE_ERROR, Who::Staff,   sessions::mark_present),
    ev("markStudentAbsent",        ATTENDANCE_ERROR, Who::Staff,   sessions::mark_absent),
    ev("bulkUpdateAttendance",     ATTENDANCE_ERROR, Who::Staff,   sessions::bulk),
    ev("getAttendanceSessionData", ATTENDANCE_ERROR, Who::Staff,   sessions::data),
    ev("endAttendanceSession",     ATTENDANCE_ERROR, Who::Staff,   sessions::end),
    ev("getCheckinCode",           ATTENDANCE_ERROR, Who::Staff,   sessions::checkin_code),
    ev("subscribeToCourse",        COURSE_ERROR,     Who::Member,  courses::subscribe),
    ev("unsubscribeFromCourse",    COURSE_ERROR,     Who::Any,     courses::unsubscribe),
    ev("checkActiveSessions",      COURSE_ERROR,     Who::Member,  courses::check_active),
    ev("joinSession",              ATTENDANCE_ERROR, Who::Member,  rooms::join),
    ev("leaveSession",             ATTENDANCE_ERROR, Who::Any,     rooms::leave),
    ev("sessionUpdate",            ATTENDANCE_ERROR, Who::Staff,   rooms::update),
    ev("getAttendanceStats",       ATTENDANCE_ERROR, Who::Member,  sessions::stats),
    ev("markAttendance",           ATTENDANCE_ERROR, Who::Student, self_checkin::mark),
    ev("getNotifications",         NOTIFICATION_ERROR, Who::Any,   notifications::page),
    ev("markNotificationRead",     NOTIFICATION_ERROR, Who::Any,   notifications::mark_read),
    ev("subscribe",                TOPIC_ERROR,      Who::Any,     topics::subscribe),
    ev("unsubscribe",              TOPIC_ERROR,      Who::Any,     topics::unsubscribe),
    ev("getOnlineUsers",           PRESENCE_ERROR,   Who::Any,     presence::online),
    ev("getSessionPresence",       PRESENCE_ERROR,   Who::Staff,   presence::session),
];

#[cfg(test)]
mod tests;
