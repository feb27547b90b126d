//! The application's counters: requests by event and result (marks and
//! check-ins among them), refused connections by code, and HTTP requests
//! by route and status.
//!
//! Requests are rate-limited per socket and HTTP requests cost a parse
//! each, so plain relaxed atomics suffice here (no sharding); a scrape
//! reads them through the accessors ([`super::metrics`] does).

use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;

use super::auth::AuthError;
use super::events::EVENTS;
use super::ErrorCode;

/// Result label values of a request: `ok`, then every [`ErrorCode`].
pub(crate) const RESULTS: [ErrorCode; 19] = [
    ErrorCode::InvalidPayload,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::SessionNotActive,
    ErrorCode::Conflict,
    ErrorCode::InvalidCode,
    ErrorCode::LocationRequired,
    ErrorCode::OutsideGeofence,
    ErrorCode::RateLimited,
    ErrorCode::Internal,
    ErrorCode::NotAContact,
    ErrorCode::MessageTooLarge,
    ErrorCode::NotAuthenticated,
    ErrorCode::AuthTimeout,
    ErrorCode::PayloadTooLarge,
    ErrorCode::InvalidCredentials,
    ErrorCode::RegistrationClosed,
    ErrorCode::TooManyConnections,
    ErrorCode::ForbiddenOrigin,
];

/// The label of result index `i` (0 is `ok`).
pub(crate) fn result_label(i: usize) -> &'static str {
    match i {
        0 => "ok",
        i => RESULTS[i - 1].code(),
    }
}

/// Authentication refusal codes (SPEC.md §4.3), in [`auth_index`] order.
pub(crate) const AUTH_CODES: [AuthError; 7] = [
    AuthError::MissingToken,
    AuthError::InvalidToken,
    AuthError::TokenExpired,
    AuthError::UnknownUser,
    AuthError::UserDisabled,
    AuthError::TokenRevoked,
    AuthError::Internal,
];

fn auth_index(e: AuthError) -> usize {
    AUTH_CODES.iter().position(|c| *c == e).unwrap_or(6)
}

/// The HTTP routes, as labels: route patterns, never raw paths. The
/// Socket.IO endpoint, then every path of the router's route table
/// (`api::routes::ROUTES`, once per path, `<name>` written `{name}`), then
/// `preflight` and `unmatched`.
pub(crate) static ROUTES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut labels = vec!["/socket.io/".to_string()];
    for path in super::api::route_paths() {
        let label = path.replace('<', "{").replace('>', "}");
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    labels.push("preflight".into());
    labels.push("unmatched".into());
    labels
});

/// A matched HTTP route: an index into [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route(pub usize);

impl Route {
    /// The Socket.IO endpoint.
    pub const SOCKET_IO: Route = Route(0);

    /// The label at `label`.
    fn labelled(label: &str) -> Route {
        Route(
            ROUTES
                .iter()
                .position(|l| l == label)
                .unwrap_or(ROUTES.len() - 1),
        )
    }

    /// `/metrics` (on the main port or on `METRICS_ADDR`).
    pub fn metrics() -> Route {
        Route::labelled("/metrics")
    }

    /// Any `OPTIONS` request outside Socket.IO.
    pub fn preflight() -> Route {
        Route(ROUTES.len() - 2)
    }

    /// The route of an API request (not Socket.IO, not a preflight):
    /// the route table's pattern it matches, else `unmatched`.
    pub fn of_api(method: &http::Method, path: &str) -> Route {
        match super::api::route_path(method, path) {
            Some(pattern) => Route::labelled(&pattern.replace('<', "{").replace('>', "}")),
            None => Route(ROUTES.len() - 1),
        }
    }
}

/// Statuses counted per route: 100-599, by `status - 100`.
const STATUSES: usize = 500;

/// What the application counts (see the module docs).
pub struct AppStats {
    /// `[event][result]`: every request of [`EVENTS`] by result.
    requests: Box<[[AtomicU64; RESULTS.len() + 1]]>,
    /// Refused connections by [`AUTH_CODES`].
    auth_refusals: [AtomicU64; 7],
    /// `[route][status - 100]`.
    http: Box<[[AtomicU64; STATUSES]]>,
}

impl Default for AppStats {
    fn default() -> Self {
        AppStats {
            requests: (0..EVENTS.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            auth_refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            http: (0..ROUTES.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl std::fmt::Debug for AppStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppStats")
    }
}

impl AppStats {
    /// Counts one answered request of event `name`.
    pub(crate) fn request(&self, name: &str, result: Result<(), ErrorCode>) {
        let Some(e) = EVENTS.iter().position(|s| s.name == name) else {
            return;
        };
        let r = match result {
            Ok(()) => 0,
            Err(code) => RESULTS.iter().position(|c| *c == code).map_or(0, |i| i + 1),
        };
        self.requests[e][r].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection refused with `e`.
    pub(crate) fn auth_refused(&self, e: AuthError) {
        self.auth_refusals[auth_index(e)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an HTTP request answered with `status`.
    pub(crate) fn http(&self, route: Route, status: StatusCode) {
        let s = usize::from(status.as_u16()).clamp(100, 599) - 100;
        self.http[route.0][s].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests by event name and result label (non-zero counts only).
    pub fn requests(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (spec, row) in EVENTS.iter().zip(self.requests.iter()) {
            for (i, c) in row.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((spec.name, result_label(i), n));
                }
            }
        }
        out
    }

    /// Refused connections by code (every code, zeros included).
    pub fn auth_refusals(&self) -> Vec<(&'static str, u64)> {
        AUTH_CODES
            .iter()
            .zip(&self.auth_refusals)
            .map(|(c, n)| (c.code(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// HTTP requests by route label and status (non-zero counts only).
    pub fn http_requests(&self) -> Vec<(&'static str, u16, u64)> {
        let labels: &'static [String] = &ROUTES;
        let mut out = Vec::new();
        for (route, row) in labels.iter().zip(self.http.iter()) {
            for (i, c) in row.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    out.push((route.as_str(), (i + 100) as u16, n));
                }
            }
        }
        out
    }
}

/// The mark method of a request event, for `rollcall_attendance_marks_total`:
/// teacher marks, bulk updates and self check-ins.
pub(crate) fn mark_method(event: &str) -> Option<&'static str> {
    match event {
        "markStudentPresent" | "markStudentAbsent" => Some("teacher"),
        "bulkUpdateAttendance" => Some("bulk"),
        "markAttendance" => Some("self"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_event_and_result() {
        let s = AppStats::default();
        s.request("markAttendance", Ok(()));
        s.request("markAttendance", Err(ErrorCode::InvalidCode));
        s.request("markAttendance", Err(ErrorCode::InvalidCode));
        s.request("noSuchEvent", Ok(()));
        assert_eq!(
            s.requests(),
            vec![
                ("markAttendance", "ok", 1),
                ("markAttendance", "invalid_code", 2)
            ]
        );
    }

    #[test]
    fn routes_are_patterns_and_statuses_are_kept() {
        let s = AppStats::default();
        let r = Route::of_api(&http::Method::GET, "/api/sessions/s-1/attendance.csv");
        s.http(r, StatusCode::FORBIDDEN);
        s.http(
            Route::of_api(&http::Method::GET, "/nope/123"),
            StatusCode::NOT_FOUND,
        );
        assert_eq!(
            s.http_requests(),
            vec![
                ("/api/sessions/{id}/attendance.csv", 403, 1),
                ("unmatched", 404, 1)
            ]
        );
    }

    #[test]
    fn every_auth_code_has_a_slot() {
        let s = AppStats::default();
        for c in AUTH_CODES {
            s.auth_refused(c);
        }
        assert!(s.auth_refusals().iter().all(|(_, n)| *n == 1));
    }
}
