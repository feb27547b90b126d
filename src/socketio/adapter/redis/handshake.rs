//! A local socket described for another node (`fetchSockets` replies):
//! `{id, handshake, rooms, data}` with the handshake in the shape Node's
//! `socket.handshake` serializes to, so a Node peer reads it as its own.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};

use crate::engine::query_param;
use crate::socketio::Socket;

/// `{id, handshake, rooms, data}` of a local socket (`data` is the JSON
/// value in its data, null when there is none).
pub(super) fn describe(s: &Arc<Socket>) -> Value {
    let hs = s.handshake();
    let mut headers = Map::new();
    for name in hs.headers.keys() {
        let joined: Vec<&str> = hs
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        headers.insert(name.as_str().to_string(), Value::String(joined.join(", ")));
    }
    let raw_query = hs.uri.query().unwrap_or("");
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        if let Some(v) = query_param(raw_query, key) {
            query.entry(key.to_string()).or_insert(Value::String(v));
        }
    }
    let issued = hs
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ip = hs.remote_addr.ip();
    let address = match ip {
        std::net::IpAddr::V4(v4) => format!("::ffff:{v4}"),
        std::net::IpAddr::V6(v6) => v6.to_string(),
    };
    let handshake = json!({
        "headers": headers,
        "time": js_date_string(issued),
        "address": address,
        "xdomain": hs.headers.contains_key(http::header::ORIGIN),
        "secure": false,
        "issued": issued,
        "url": hs.uri.to_string(),
        "query": query,
        "auth": s.auth(),
    });
    let rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
    json!({
        "id": s.id(),
        "handshake": handshake,
        "rooms": rooms,
        "data": s.data().get::<Value>().unwrap_or(Value::Null),
    })
}

/// What JavaScript's `Date.prototype.toString` writes in UTC, e.g.
/// `Sun Nov 22 2026 05:17:18 GMT+0000 (Coordinated Universal Time)`.
pub(super) fn js_date_string(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
