//! Who sees what of an attendance event (SPEC.md §4.24 "Views"): staff get
//! the roster (every record, with location and names), a student gets their
//! own record and aggregate counts, never another student's record,
//! identity or location.
//!
//! Each session has, beside the rooms of SPEC.md §4.4, a students' room per
//! room (`attendance_<sid>:students`, `session:<sid>:students`) and a staff
//! room for the seed 000 room (`session:<sid>:staff`). An event about one
//! student goes out twice: the staff view once to the staff room and that
//! student's `user:<id>` room together, the student view once to the
//! students' room except that student's `user:<id>` room (a single small
//! except room: the adapter compares by identity, builds no set). Each view
//! is encoded once per event.

use serde_json::{json, Value};

use crate::app::{staff_room, Outcome};

/// The students who joined `attendance_<sid>`.
pub(crate) fn attendance_students_room(sid: &str) -> String {
    format!("attendance_{sid}:students")
}

/// The staff who joined `session:<sid>`.
pub(crate) fn session_staff_room(sid: &str) -> String {
    format!("session:{sid}:staff")
}

/// The students who joined `session:<sid>`.
pub(crate) fn session_students_room(sid: &str) -> String {
    format!("session:{sid}:students")
}

/// A student's own room (every socket of theirs on the namespace).
pub(super) fn user_room(id: &str) -> String {
    format!("user:{id}")
}

/// An event about `student`: `full` to `staff` and the student's own
/// sockets, `student_view` to the other students of `students`.
pub(super) fn about_student(
    o: Outcome,
    staff: String,
    students: String,
    student: &str,
    event: &'static str,
    full: Value,
    student_view: Value,
) -> Outcome {
    let own = user_room(student);
    o.broadcast_to(vec![staff, own.clone()], Vec::new(), event, full)
        .broadcast_to(vec![students], vec![own], event, student_view)
}

/// `attendanceUpdated` for one mark: staff and the student get
/// `{session_id, student_id, status, attendanceRecord, updated_by,
/// updated_at}`, the other students `{session_id, status, updated_at}`.
pub(super) fn attendance_updated(o: Outcome, sid: &str, student: &str, full: Value) -> Outcome {
    let view =
        json!({"session_id": sid, "status": full["status"], "updated_at": full["updated_at"]});
    about_student(
        o,
        staff_room(sid),
        attendance_students_room(sid),
        student,
        "attendanceUpdated",
        full,
        view,
    )
}
