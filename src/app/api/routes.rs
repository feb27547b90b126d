//! The HTTP API's route table and error codes: what SPEC.md lists and what
//! the router serves are the same list. The router answers `404 no such
//! route` to anything not in [`ROUTES`] before any handler runs, so a route
//! cannot be served without being listed; the tests below hold the list to
//! every `METHOD /api/…` route SPEC.md names, and the error codes the API's
//! code uses to the table of SPEC.md §4.24.

use http::Method;

use crate::app::ErrorCode;

/// Every route of the API: method and path, `<name>` standing for one
/// non-empty path segment.
pub(super) const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/register"),
    ("GET", "/api/sessions/<id>/attendance.csv"),
    ("GET", "/api/ready"),
    ("GET", "/metrics"),
    ("POST", "/api/admin/notifications"),
    ("POST", "/api/admin/topics/<topic>/publish"),
    ("GET", "/api/socket-test"),
    ("POST", "/api/socket-test"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/devices"),
    ("POST", "/api/admin/users/<id>/logout"),
    ("PATCH", "/api/admin/users/<id>"),
    ("GET", "/api/admin/users/<id>/devices"),
    ("POST", "/api/admin/users"),
    ("GET", "/api/admin/users"),
    ("GET", "/api/admin/users/<id>"),
    ("POST", "/api/courses"),
    ("GET", "/api/courses"),
    ("GET", "/api/courses/<id>"),
    ("POST", "/api/courses/<id>/teachers"),
    ("DELETE", "/api/courses/<id>/teachers/<user_id>"),
    ("GET", "/api/courses/<id>/enrolments"),
    ("POST", "/api/courses/<id>/enrolments"),
    ("DELETE", "/api/courses/<id>/enrolments/<student_id>"),
    ("POST", "/api/courses/<id>/enrolments.csv"),
    ("GET", "/api/courses/<id>/sessions"),
    ("GET", "/api/courses/<id>/report"),
    ("GET", "/api/courses/<id>/report.csv"),
    ("GET", "/api/sessions/<sid>"),
    ("GET", "/api/sessions/<sid>/records"),
    ("GET", "/api/users/<id>/report"),
    ("GET", "/api/users/<id>/report.csv"),
    ("POST", "/api/setup"),
    ("GET", "/setup"),
];

/// The error codes the API answers with (besides the authentication codes
/// of SPEC.md §4.3, always with 401), each with its usual status.
pub(super) const HTTP_ERRORS: &[(ErrorCode, u16)] = &[
    (ErrorCode::InvalidPayload, 400),
    (ErrorCode::InvalidCredentials, 401),
    (ErrorCode::Forbidden, 403),
    (ErrorCode::ForbiddenOrigin, 403),
    (ErrorCode::RegistrationClosed, 403),
    (ErrorCode::NotFound, 404),
    (ErrorCode::Conflict, 409),
    (ErrorCode::PayloadTooLarge, 413),
    (ErrorCode::RateLimited, 429),
    (ErrorCode::Internal, 500),
];

/// The HTTP status of an application refusal (500 for codes the API does
/// not list).
pub(super) fn status_of(code: ErrorCode) -> u16 {
    HTTP_ERRORS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(500, |(_, s)| *s)
}

/// Whether `path` matches `pattern` segment by segment.
fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) => {
                let param = want.starts_with('<') && want.ends_with('>');
                if (param && got.is_empty()) || (!param && want != got) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The pattern of the table's route for `method` and `path`.
pub(crate) fn pattern(method: &Method, path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(m, p)| *m == method.as_str() && matches(p, path))
        .map(|(_, p)| *p)
}

/// Whether the table has a route for `method` and `path`.
pub(super) fn known(method: &Method, path: &str) -> bool {
    ROUTES
        .iter()
        .any(|(m, p)| *m == method.as_str() && matches(p, path))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The error codes the API answers with that are not application
    /// [`ErrorCode`]s (first run and the client bundle, written as strings
    /// at their one use), with their status.
    const HTTP_OTHER_ERRORS: &[(&str, u16)] = &[
        ("setup_token_invalid", 403),
        ("setup_token_expired", 410),
        ("setup_used", 410),
        ("client_bundle_missing", 503),
    ];

    const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/SPEC.md"));

    #[test]
    fn patterns_match_one_segment_per_parameter() {
        assert!(known(&Method::GET, "/api/sessions/s-1/attendance.csv"));
        assert!(!known(&Method::GET, "/api/sessions//attendance.csv"));
        assert!(!known(&Method::GET, "/api/sessions/a/b/attendance.csv"));
        assert!(!known(&Method::POST, "/api/health"));
        assert!(known(&Method::PATCH, "/api/admin/users/u1"));
        assert!(!known(&Method::PATCH, "/api/admin/users/u1/"));
        assert!(!known(&Method::GET, "/api/nothing"));
    }

    /// `path` with every `<name>` written `<>`.
    fn params_as_one(path: &str) -> String {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '<' => {
                    in_param = true;
                    out.push('<');
                }
                '>' => {
                    in_param = false;
                    out.push('>');
                }
                _ if in_param => {}
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn routes_are_the_routes_spec_names() {
        let methods = ["GET ", "POST ", "PATCH ", "PUT ", "DELETE "];
        // SPEC writes `METHOD /path?query` or `METHOD /path {body}`, names
        // parameters freely (`<id>`, `<sid>`) and marks an optional tail
        // with `[...]`: compare the paths alone, parameters as `<>`.
        let spec: BTreeSet<(String, String)> = SPEC
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|q| {
                let m = methods.iter().find(|m| q.starts_with(**m))?;
                let path = &q[m.len()..];
                path.starts_with("/api/").then(|| (m.trim(), path))
            })
            .flat_map(|(m, path)| {
                let path = path.split(['?', ' ']).next().unwrap_or(path);
                let variants = match (path.find('['), path.find(']')) {
                    (Some(a), Some(b)) if a < b => vec![
                        format!("{}{}", &path[..a], &path[b + 1..]),
                        format!("{}{}{}", &path[..a], &path[a + 1..b], &path[b + 1..]),
                    ],
                    _ => vec![path.to_string()],
                };
                variants
                    .into_iter()
                    .map(move |p| (m.to_string(), params_as_one(&p)))
            })
            .collect();
        let ours: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|(_, p)| p.starts_with("/api/"))
            .map(|(m, p)| (m.to_string(), params_as_one(p)))
            .collect();
        let api_routes = ROUTES.iter().filter(|(_, p)| p.starts_with("/api/"));
        assert_eq!(ours.len(), api_routes.count(), "a route is listed twice");
        assert_eq!(ours, spec);
    }

    #[test]
    fn http_error_codes_are_the_spec_table_and_the_codes_the_api_uses() {
        let table = SPEC
            .split("**HTTP error codes**")
            .nth(1)
            .and_then(|s| s.split("\n\n").nth(1))
            .expect("SPEC.md has the HTTP error code table");
        let spec: Vec<(String, u16)> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| {
                let (code, rest) = l.split_once('`')?;
                let status = rest.trim_start_matches(" |").trim().split(' ').next()?;
                Some((code.to_string(), status.parse().ok()?))
            })
            .collect();
        let ours: Vec<(String, u16)> = HTTP_ERRORS
            .iter()
            .map(|(c, s)| (c.code().to_string(), *s))
            .chain(HTTP_OTHER_ERRORS.iter().map(|(c, s)| (c.to_string(), *s)))
            .collect();
        assert_eq!(ours, spec);
        // Every code named in the API's source is in the table.
        let sources = [
            include_str!("../api.rs"),
            include_str!("platform.rs"),
            include_str!("platform_b.rs"),
            include_str!("limits.rs"),
            include_str!("admin.rs"),
            include_str!("client_bundle.rs"),
            include_str!("enrol.rs"),
            include_str!("paging.rs"),
            include_str!("reports.rs"),
            include_str!("setup.rs"),
        ];
        for src in sources {
            for part in src.split("ErrorCode::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if name.is_empty() {
                    continue;
                }
                let listed = HTTP_ERRORS.iter().any(|(c, _)| format!("{c:?}") == name);
                assert!(
                    listed,
                    "ErrorCode::{name} is used by the API but not listed"
                );
            }
            // Codes written as strings: `error_with(<status>, "<code>"`.
            for part in src.split("error_with(").skip(1) {
                let mut args = part.splitn(3, ',');
                let (Some(status), Some(code)) = (args.next(), args.next()) else {
                    continue;
                };
                let Ok(status) = status.trim().parse::<u16>() else {
                    continue; // a status passed through
                };
                let code = code.trim();
                if !code.starts_with('"') {
                    continue; // a code passed through (the auth codes of §4.3)
                }
                let code = code.trim_matches('"');
                assert!(
                    HTTP_OTHER_ERRORS.contains(&(code, status)),
                    "{code} ({status}) is used by the API but not listed"
                );
            }
        }
    }
}
