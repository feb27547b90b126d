//! Refusals of the application: one [`ErrorCode`] enum for every code a
//! client can see (socket refusals and the HTTP API alike), so a code is
//! named once and spelled once; [`AppError`] pairs one with its message.
//!
//! The authentication codes stay in [`super::auth::AuthError`], which is
//! both the error and its code.

use std::fmt;

use crate::store::StoreError;

/// A machine-readable error code; [`ErrorCode::code`] is what clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The argument is missing, of the wrong type or out of range.
    InvalidPayload,
    /// The user may not do this.
    Forbidden,
    /// Session, course, student record (or HTTP route) does not exist.
    NotFound,
    /// The session has ended.
    SessionNotActive,
    /// The thing exists already, or the request does not fit the state.
    Conflict,
    /// Check-in code wrong or expired.
    InvalidCode,
    /// Geofenced session and no location given.
    LocationRequired,
    /// Location outside the fence.
    OutsideGeofence,
    /// Rate limit or in-flight limit hit.
    RateLimited,
    /// Store or flush failure.
    Internal,
    /// Direct message to a user who shares no course (§4.22).
    NotAContact,
    /// Direct message text over the limit (§4.22).
    MessageTooLarge,
    /// An event before `authenticate` (authenticate-after-connect, §4.22).
    NotAuthenticated,
    /// No successful `authenticate` within the grace time (§4.22).
    AuthTimeout,
    /// HTTP API: request body over the limit.
    PayloadTooLarge,
    /// HTTP API: wrong email or password.
    InvalidCredentials,
    /// HTTP API: registration is turned off.
    RegistrationClosed,
    /// CONNECT refused: the user has the most sockets allowed (§4.24).
    TooManyConnections,
    /// HTTP API: a cross-origin state-changing request from an origin that
    /// is not allowed (§4.24).
    ForbiddenOrigin,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::SessionNotActive => "session_not_active",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::LocationRequired => "location_required",
            ErrorCode::OutsideGeofence => "outside_geofence",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::NotAContact => "not_a_contact",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::AuthTimeout => "auth_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::RegistrationClosed => "registration_closed",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal of a request: a machine-readable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AppError {
    /// What kind of refusal.
    pub code: ErrorCode,
    /// Human-readable text.
    pub message: String,
}

impl AppError {
    /// A refusal with `code` and `message`.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
        }
    }

    /// `invalid_payload`.
    pub(crate) fn invalid(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::InvalidPayload, message)
    }

    /// `forbidden`.
    pub(crate) fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Forbidden, message)
    }

    /// `not_found`.
    pub(crate) fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::NotFound, message)
    }

    /// `session_not_active` with the one message it has.
    pub(crate) fn session_not_active() -> AppError {
        AppError::new(ErrorCode::SessionNotActive, "Attendance session not active")
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::Exists(what) => {
                AppError::new(ErrorCode::Conflict, format!("{what} already exists"))
            }
            StoreError::SessionNotActive => AppError::session_not_active(),
            StoreError::Conflict(msg) => AppError::new(ErrorCode::Conflict, msg),
            other => {
                tracing::error!(error = %other, "store failure");
                AppError::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code with its wire string; the socket codes first, in the
    /// order of SPEC.md §4.5's table, then the HTTP API's own.
    const WIRE: [(ErrorCode, &str); 19] = [
        (ErrorCode::InvalidPayload, "invalid_payload"),
        (ErrorCode::Forbidden, "forbidden"),
        (ErrorCode::NotFound, "not_found"),
        (ErrorCode::SessionNotActive, "session_not_active"),
        (ErrorCode::Conflict, "conflict"),
        (ErrorCode::InvalidCode, "invalid_code"),
        (ErrorCode::LocationRequired, "location_required"),
        (ErrorCode::OutsideGeofence, "outside_geofence"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::Internal, "internal"),
        (ErrorCode::NotAContact, "not_a_contact"),
        (ErrorCode::MessageTooLarge, "message_too_large"),
        (ErrorCode::NotAuthenticated, "not_authenticated"),
        (ErrorCode::AuthTimeout, "auth_timeout"),
        (ErrorCode::PayloadTooLarge, "payload_too_large"),
        (ErrorCode::InvalidCredentials, "invalid_credentials"),
        (ErrorCode::RegistrationClosed, "registration_closed"),
        (ErrorCode::TooManyConnections, "too_many_connections"),
        (ErrorCode::ForbiddenOrigin, "forbidden_origin"),
    ];

    #[test]
    fn codes_are_the_wire_strings() {
        for (code, s) in WIRE {
            assert_eq!(code.code(), s);
            assert_eq!(code.to_string(), s);
        }
        let e = AppError::invalid("x");
        assert_eq!(e.to_string(), "invalid_payload: x");
    }

    #[test]
    fn socket_codes_match_the_spec_table() {
        // SPEC §4.5 "Error codes": the table lists the socket codes.
        let spec = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md"));
        let table = spec
            .split("**Error codes**")
            .nth(1)
            .and_then(|s| s.split("\n\n### ").next())
            .expect("SPEC.md has the error code table");
        let codes: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        // The socket codes, and `payload_too_large`, which notifications
        // share with the HTTP API (§4.16).
        let ours: Vec<&str> = WIRE[..15].iter().map(|(c, _)| c.code()).collect();
        assert_eq!(codes, ours);
    }
}
