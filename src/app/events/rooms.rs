//! Session rooms (`session:<sid>`, the seed 000 events): members join and
//! leave them, staff relay free-form updates to them. Nothing is stored.

use serde_json::{json, Map, Value};

use super::args::{member_session, session_id, staff_session};
use super::audience::{session_staff_room, session_students_room};
use super::Ctx;
use crate::app::{session_room, AppError, ErrorCode, Outcome};
use crate::store::Role;

/// Largest `sessionUpdate` object, serialized.
const MAX_UPDATE_BYTES: usize = 16 * 1024;

/// `joinSession`: a member joins the room; the others hear of it.
pub(super) fn join(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let user = cx.user;
    let (sid, _) = member_session(cx, arg)?;
    let room = session_room(&sid);
    // Students and staff also join their side's room (§4.24 views).
    let side = if user.role == Role::Student {
        session_students_room(&sid)
    } else {
        session_staff_room(&sid)
    };
    let o = Outcome::new().join(room.clone()).join(side);
    let full = json!({"userId": user.id, "userName": user.name, "sessionId": sid,
                      "timestamp": crate::store::now_rfc3339()});
    Ok(announce(cx, o, &sid, "userJoined", full).reply("sessionId", json!(sid)))
}

/// `leaveSession`: leave the room (only from within it); the others hear of it.
pub(super) fn leave(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let sid = session_id(arg)?;
    let room = session_room(&sid);
    if !cx.socket.rooms().iter().any(|r| **r == *room) {
        return Err(AppError::new(ErrorCode::Conflict, "Not in this session"));
    }
    let o = Outcome::new()
        .leave(room)
        .leave(session_staff_room(&sid))
        .leave(session_students_room(&sid));
    let full = json!({"userId": cx.user.id, "sessionId": sid,
                      "timestamp": crate::store::now_rfc3339()});
    Ok(announce(cx, o, &sid, "userLeft", full).reply("sessionId", json!(sid)))
}

/// `userJoined` / `userLeft` to the room but the requester: a teacher's or
/// admin's as is; a student's in full to the staff only, and to the other
/// students without who it was (`{sessionId, timestamp}`, SPEC.md §4.24).
fn announce(cx: &Ctx<'_>, o: Outcome, sid: &str, event: &'static str, full: Value) -> Outcome {
    if cx.user.role != Role::Student {
        return o.broadcast_others(session_room(sid), event, full);
    }
    let view = json!({"sessionId": sid, "timestamp": full["timestamp"]});
    let me = cx.socket.id().to_string();
    o.broadcast_to(vec![session_staff_room(sid)], vec![me.clone()], event, full)
        .broadcast_to(vec![session_students_room(sid)], vec![me], event, view)
}

/// `sessionUpdate`: staff relay an object to the room, the requester included.
pub(super) fn update(cx: &Ctx<'_>, arg: &Value) -> Result<Outcome, AppError> {
    let user = cx.user;
    let obj = arg
        .as_object()
        .ok_or_else(|| AppError::invalid("sessionUpdate takes an object"))?;
    let (sid, _) = staff_session(cx, arg)?;
    if serde_json::to_vec(arg).map_or(0, |v| v.len()) > MAX_UPDATE_BYTES {
        return Err(AppError::invalid("sessionUpdate data over 16 KiB"));
    }
    let mut data: Map<String, Value> = obj.clone();
    data.insert("sessionId".into(), json!(sid));
    data.insert("updatedBy".into(), json!(user.id));
    data.insert("timestamp".into(), json!(crate::store::now_rfc3339()));
    Ok(Outcome::new()
        .broadcast(session_room(&sid), "sessionUpdated", Value::Object(data))
        .reply("sessionId", json!(sid)))
}
