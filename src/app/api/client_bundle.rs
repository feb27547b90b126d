//! The browser build of npm `socket.io-client`, served at
//! `<socket path>/socket.io.min.js` and `.map` as the reference server's
//! `serveClient` does (SPEC.md §4.23.8): the pinned version embedded by
//! `build.rs`, `Cache-Control: public, max-age=0`, `ETag: "<version>"`
//! and `304` on a matching `If-None-Match`. A build that could not get the
//! bundle answers `503` saying why.

use http::{header, HeaderValue, Method, Request, Response};

use super::error_with;
use crate::http::{response, Body};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/client_bundle.rs"));
}

/// An embedded bundle (or why there is none).
pub(super) struct Bundle {
    /// The version, `None` when not embedded.
    pub version: Option<&'static str>,
    /// Why it is missing.
    pub missing: &'static str,
    /// `socket.io.min.js`.
    pub js: &'static [u8],
    /// `socket.io.min.js.map`.
    pub map: &'static [u8],
}

/// The bundle this binary was built with.
pub(super) const EMBEDDED: Bundle = Bundle {
    version: generated::VERSION,
    missing: generated::MISSING,
    js: generated::MIN_JS,
    map: generated::MIN_JS_MAP,
};

/// The answer when `req` asks for the bundle under `socket_path`.
pub(super) fn serve<B>(req: &Request<B>, socket_path: &str, b: &Bundle) -> Option<Response<Body>> {
    let base = socket_path.trim_end_matches('/');
    let file = req.uri().path().strip_prefix(base)?;
    let is_map = match file {
        "/socket.io.min.js" => false,
        "/socket.io.min.js.map" => true,
        _ => return None,
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let Some(version) = b.version else {
        return Some(error_with(
            503,
            "client_bundle_missing",
            &format!(
                "this build has no socket.io-client bundle (run `npm ci` in tests/node or build online): {}",
                b.missing
            ),
        ));
    };
    let etag = format!("\"{version}\"");
    let sent = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut res = if sent.is_some_and(|s| s == etag || s.strip_prefix("W/") == Some(&etag)) {
        response(304, None, "")
    } else {
        let (ct, body) = if is_map {
            ("application/json; charset=utf-8", b.map)
        } else {
            ("application/javascript; charset=utf-8", b.js)
        };
        let body = if req.method() == Method::HEAD {
            &[][..]
        } else {
            body
        };
        response(200, Some(ct), body)
    };
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, etag: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(path);
        if let Some(e) = etag {
            b = b.header(header::IF_NONE_MATCH, e);
        }
        b.body(()).unwrap()
    }

    const FAKE: Bundle = Bundle {
        version: Some("9.9.9"),
        missing: "",
        js: b"js",
        map: b"{}",
    };

    #[test]
    fn serves_both_files_with_etag_and_304() {
        let r = serve(
            &get("/socket.io/socket.io.min.js", None),
            "/socket.io/",
            &FAKE,
        )
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::ETAG], "\"9.9.9\"");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/javascript; charset=utf-8"
        );
        let m = serve(
            &get("/api/socket/socket.io.min.js.map", None),
            "/api/socket",
            &FAKE,
        )
        .unwrap();
        assert_eq!(
            m.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let n = serve(
            &get("/socket.io/socket.io.min.js", Some("W/\"9.9.9\"")),
            "/socket.io/",
            &FAKE,
        )
        .unwrap();
        assert_eq!(n.status(), 304);
        assert!(serve(&get("/socket.io/", None), "/socket.io/", &FAKE).is_none());
        assert!(serve(&get("/socket.io/socket.io.js", None), "/socket.io/", &FAKE).is_none());
    }

    #[test]
    fn a_build_without_the_bundle_answers_503() {
        let none = Bundle {
            version: None,
            missing: "offline",
            js: b"",
            map: b"",
        };
        let r = serve(
            &get("/socket.io/socket.io.min.js", None),
            "/socket.io/",
            &none,
        )
        .unwrap();
        assert_eq!(r.status(), 503);
    }
}
