//! Self check-in protection: rotating check-in codes (what a QR code on the
//! classroom screen carries) and geofences.
//!
//! Only the maths (SPEC.md §4.9): the `markAttendance` handler that checks
//! against it is `events::self_checkin`, and the task that sends each new
//! code to the staff is `tasks`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{Geofence, Location};

/// The code of `session_id` for the time window containing `now_secs`.
pub fn code_at(secret: &str, session_id: &str, period_secs: u64, now_secs: u64) -> String {
    let window = now_secs / period_secs.max(1);
    code_for_window(secret, session_id, window)
}

fn code_for_window(secret: &str, session_id: &str, window: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(session_id.as_bytes());
    mac.update(&[0]);
    mac.update(&window.to_be_bytes());
    let out = mac.finalize().into_bytes();
    let n = u32::from_be_bytes([out[0], out[1], out[2], out[3]]) % 1_000_000;
    format!("{n:06}")
}

/// Whether `code` is the current code or the previous one (a code shown just
/// before it rotated stays valid for one more period).
pub fn code_valid(
    secret: &str,
    session_id: &str,
    period_secs: u64,
    now_secs: u64,
    code: &str,
) -> bool {
    let window = now_secs / period_secs.max(1);
    [window, window.saturating_sub(1)]
        .iter()
        .any(|w| code_for_window(secret, session_id, *w) == code)
}

/// When the code of the current window expires (Unix seconds).
pub fn code_expires_at(period_secs: u64, now_secs: u64) -> u64 {
    let p = period_secs.max(1);
    (now_secs / p + 1) * p
}

/// Great-circle distance in metres.
pub fn distance_m(a: Location, b: Location) -> f64 {
    let r = 6_371_000.0_f64;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dla = (b.lat - a.lat).to_radians();
    let dlo = (b.lng - a.lng).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().min(1.0).asin()
}

/// Whether `loc` lies inside the fence.
pub fn inside(fence: &Geofence, loc: Location) -> bool {
    distance_m(
        Location {
            lat: fence.lat,
            lng: fence.lng,
        },
        loc,
    ) <= fence.radius_m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_rotate_and_previous_stays_valid() {
        let c1 = code_at("s", "sess", 30, 1000);
        assert_eq!(c1.len(), 6);
        assert_eq!(c1, code_at("s", "sess", 30, 1019));
        assert!(code_valid("s", "sess", 30, 1025, &c1));
        assert!(!code_valid("s", "sess", 30, 1100, &c1));
        assert_ne!(code_at("s", "other", 30, 1000), c1);
        assert_eq!(code_expires_at(30, 1000), 1020);
    }

    #[test]
    fn geofence() {
        let f = Geofence {
            lat: 52.0,
            lng: 13.0,
            radius_m: 100.0,
        };
        assert!(inside(
            &f,
            Location {
                lat: 52.0005,
                lng: 13.0
            }
        ));
        assert!(!inside(
            &f,
            Location {
                lat: 52.01,
                lng: 13.0
            }
        ));
    }
}
