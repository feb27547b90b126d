//! The stored records, as plain serde types. Nothing here knows about sled
//! (or any other backend): the trees, keys and batches live beside the
//! operations that write them, so that another backend can store the same
//! model.

use serde::{Deserialize, Serialize};

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Runs the sessions of their courses.
    Teacher,
    /// Joins sessions and checks in.
    Student,
}

impl Role {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "teacher" => Ok(Role::Teacher),
            "student" => Ok(Role::Student),
            _ => Err(format!("unknown role {s:?} (admin, teacher or student)")),
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: String,
    /// Email (unique, case-insensitive).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2 PHC string; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
    /// Disabled users cannot connect.
    pub active: bool,
    /// Tokens carrying an older version are refused.
    pub token_version: u64,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// A course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Teacher user ids.
    pub teachers: Vec<String>,
    /// Enrolled student user ids.
    pub students: Vec<String>,
}

/// A circular area a self check-in must come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    /// Latitude of the centre, degrees.
    pub lat: f64,
    /// Longitude of the centre, degrees.
    pub lng: f64,
    /// Radius in metres.
    pub radius_m: f64,
}

/// How students may check themselves in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckinSettings {
    /// Whether a rotating check-in code is required.
    pub code_required: bool,
    /// Secret the codes are derived from.
    pub code_secret: String,
    /// Code lifetime in seconds.
    pub code_period_secs: u64,
    /// Optional geofence.
    pub geofence: Option<Geofence>,
}

/// Status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Running.
    Active,
    /// Over.
    Ended,
}

/// An attendance session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Course.
    pub course_id: String,
    /// Teacher who started it.
    pub teacher_id: String,
    /// Status.
    pub status: SessionStatus,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// End time (RFC 3339).
    pub ended_at: Option<String>,
    /// Last change (Unix ms), for the idle timeout.
    pub last_activity_ms: u64,
    /// Self check-in settings.
    pub checkin: CheckinSettings,
}

/// Present or absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Present.
    Present,
    /// Absent.
    Absent,
}

impl Status {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Absent => "absent",
        }
    }
}

/// A location reported by a client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lng: f64,
}

/// One student's attendance in one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Session.
    pub session_id: String,
    /// Student.
    pub student_id: String,
    /// Status.
    pub status: Status,
    /// Who set the status (user id; `None` for the initial absent record).
    pub marked_by: Option<String>,
    /// When (RFC 3339).
    pub marked_at: Option<String>,
    /// How: `initial`, `teacher`, `bulk`, `self`.
    pub method: String,
    /// Where (self check-in).
    pub location: Option<Location>,
}

/// Counts of a session's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    /// Present.
    pub present: usize,
    /// Absent.
    pub absent: usize,
    /// All records.
    pub total: usize,
}

/// A status change to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Student.
    pub student_id: String,
    /// New status.
    pub status: Status,
    /// How (`teacher`, `bulk`, `self`).
    pub method: &'static str,
    /// Where, for self check-in.
    pub location: Option<Location>,
}
impl Record {
    /// The absent record every student of the course starts with.
    pub(super) fn initial(session_id: &str, student_id: &str) -> Record {
        Record {
            session_id: session_id.to_string(),
            student_id: student_id.to_string(),
            status: Status::Absent,
            marked_by: None,
            marked_at: None,
            method: "initial".into(),
            location: None,
        }
    }
}
