//! CORS: the one implementation of the response headers and preflight
//! answers, used by the engine's routes and by any HTTP routes served beside
//! it (the application's API reaches it through [`crate::socketio`]).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};

use crate::http::{response, Body};

/// Which origins may make cross-origin requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (the request's origin is echoed back).
    Any,
    /// Only these exact origins (e.g. `https://app.example.org`).
    List(Vec<String>),
}

/// CORS settings. Without them the engine sends no CORS headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// The allowed origins.
    pub origins: AllowedOrigins,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

impl Cors {
    /// Any origin, with credentials.
    pub fn any() -> Cors {
        Cors {
            origins: AllowedOrigins::Any,
            credentials: true,
        }
    }

    /// The value of `Access-Control-Allow-Origin` for a request from `origin`,
    /// if allowed. A request without `Origin` gets `*` only when credentials
    /// are off (browsers refuse `*` together with credentials).
    pub fn allow_origin(&self, origin: Option<&str>) -> Option<String> {
        match (&self.origins, origin) {
            (AllowedOrigins::Any, Some(o)) => Some(o.to_string()),
            (AllowedOrigins::Any, None) if !self.credentials => Some("*".to_string()),
            (AllowedOrigins::List(list), Some(o)) if list.iter().any(|a| a == o) => {
                Some(o.to_string())
            }
            _ => None,
        }
    }

    /// Adds the CORS headers for a request from `origin` to `headers`
    /// (nothing when the origin is not allowed).
    pub fn apply(&self, headers: &mut HeaderMap, origin: Option<&str>) {
        let Some(allow) = self.allow_origin(origin) else {
            return;
        };
        if let Ok(v) = HeaderValue::from_str(&allow) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }

    /// A `204` answer to a preflight request allowing `methods` and, when
    /// given, `allow_headers`; [`Cors::apply`] adds the origin headers.
    pub fn preflight(methods: &'static str, allow_headers: Option<HeaderValue>) -> Response<Body> {
        let mut res = response(204, None, Bytes::new());
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        if let Some(v) = allow_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        res
    }
}

/// Whether `origin` (`scheme://host[:port]`, an `Origin` header) names the
/// server the request was sent to (its `host`, a `Host` header): a page this
/// server served itself. Same-origin requests are never cross-origin, so the
/// origin checks (WebSocket upgrades, state-changing API requests) let them
/// through whatever the configured origins.
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let (scheme, rest) = match origin.split_once("://") {
        Some(("http", rest)) => ("http", rest),
        Some(("https", rest)) => ("https", rest),
        _ => return false,
    };
    let default_port = if scheme == "http" { ":80" } else { ":443" };
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.strip_suffix(default_port)
            .map(str::to_string)
            .unwrap_or(s)
    };
    norm(rest) == norm(host)
}

#[cfg(test)]
mod same_origin_tests {
    use super::same_origin;

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin("http://127.0.0.1:4002", Some("127.0.0.1:4002")));
        assert!(same_origin("http://Example.test", Some("example.test:80")));
        assert!(same_origin(
            "https://example.test:443",
            Some("example.test")
        ));
        assert!(!same_origin(
            "http://127.0.0.1:4003",
            Some("127.0.0.1:4002")
        ));
        assert!(!same_origin("http://evil.test", Some("example.test")));
        assert!(!same_origin("null", Some("example.test")));
        assert!(!same_origin("http://example.test", None));
    }
}
