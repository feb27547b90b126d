//! The engine's abuse limits (SPEC.md §2.16): handshakes per address, the
//! global cap on open sessions, the first-exchange deadline, the bound on
//! what a session keeps of its handshake, the polling body deadline and
//! rate floor, and the WebSocket `Origin` check; plus the HTTP connection
//! limits the accept loop applies ([`ConnLimits`]).
//!
//! Why in the engine: these are the costs one client can impose before any
//! upper layer sees it (a session, its handshake copy, a held body), so
//! they are refused here, cheaply, with an Engine.IO error body the
//! clients already understand.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cors::{AllowedOrigins, Cors};
use super::error::HttpError;
use crate::http::{AddrBuckets, ConnLimits, Gauge, Permit, Rate};

/// Which `Origin`s may open a WebSocket (a browser sends its page's origin;
/// other clients usually send none, which is always allowed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WsOrigins {
    /// The CORS rule (default): with CORS configured to a list of origins,
    /// only those; with CORS for any origin, or no CORS, any.
    #[default]
    FromCors,
    /// Any origin.
    Any,
    /// Only these exact origins.
    List(Vec<String>),
}

impl WsOrigins {
    /// Parses a setting: empty is [`WsOrigins::FromCors`], `*` is
    /// [`WsOrigins::Any`], else a comma-separated list of exact origins.
    pub fn parse(s: &str) -> WsOrigins {
        let list: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        if list.is_empty() {
            WsOrigins::FromCors
        } else if list.iter().any(|o| o == "*") {
            WsOrigins::Any
        } else {
            WsOrigins::List(list)
        }
    }
}

/// The abuse limits of one engine; set with
/// [`EngineConfigBuilder::abuse`](super::EngineConfigBuilder::abuse).
#[derive(Debug, Clone, PartialEq)]
pub struct AbuseLimits {
    /// The accept loop's limits ([`crate::http::serve_with`]; the engine's
    /// own [`super::Engine::serve`] and the application use them).
    pub connections: ConnLimits,
    /// Handshakes (new sessions) per address (default 50/s, burst 200;
    /// `None`: unlimited). Over it: `429`, code 6, `Retry-After`.
    pub handshakes_per_addr: Option<Rate>,
    /// Open sessions in all (default 20,000). Over it: `503`, code 7,
    /// `Retry-After: 5`.
    pub max_sessions: usize,
    /// A polling session whose client makes no request after the handshake
    /// (no GET, POST or upgrade) is closed this long after it opened
    /// (default 10 s).
    pub first_exchange_timeout: Duration,
    /// Most bytes of request URI and kept headers a session stores from its
    /// handshake (default 8 KiB); a URI over it is refused (code 3), headers
    /// beyond it are not kept.
    pub handshake_bytes: usize,
    /// Time a polling POST body may take on top of its size at the rate
    /// floor (default 10 s).
    pub body_timeout: Duration,
    /// The rate floor of a polling POST body in bytes per second (default
    /// 16 KiB/s): a body must be complete within `body_timeout` plus its
    /// bytes at this rate, else `408` and the session closes.
    pub body_min_rate: u64,
    /// Which origins may open a WebSocket (default [`WsOrigins::FromCors`]).
    pub websocket_origins: WsOrigins,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            connections: ConnLimits::default(),
            handshakes_per_addr: Some(Rate::new(50.0, 200.0)),
            max_sessions: 20_000,
            first_exchange_timeout: Duration::from_secs(10),
            handshake_bytes: 8 << 10,
            body_timeout: Duration::from_secs(10),
            body_min_rate: 16 << 10,
            websocket_origins: WsOrigins::FromCors,
        }
    }
}

impl AbuseLimits {
    /// No per-address rate and no global caps (the deadlines and bounds
    /// stay): for test and benchmark servers that open thousands of
    /// sessions from one address.
    pub fn unlimited() -> AbuseLimits {
        AbuseLimits {
            connections: ConnLimits::unlimited(),
            handshakes_per_addr: None,
            max_sessions: usize::MAX,
            ..AbuseLimits::default()
        }
    }

    /// Whether a WebSocket from `origin` may open, with the engine's `cors`.
    pub fn websocket_origin_allowed(&self, cors: Option<&Cors>, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let list = match &self.websocket_origins {
            WsOrigins::Any => return true,
            WsOrigins::List(list) => list,
            WsOrigins::FromCors => match cors.map(|c| &c.origins) {
                Some(AllowedOrigins::List(list)) => list,
                _ => return true,
            },
        };
        list.iter().any(|o| o == origin)
    }

    /// How long a polling POST body of `declared` bytes (else `max_payload`)
    /// may take.
    pub fn body_deadline(&self, declared: Option<u64>, max_payload: usize) -> Duration {
        let len = declared.unwrap_or(max_payload as u64);
        let rate = self.body_min_rate.max(1);
        self.body_timeout + Duration::from_secs_f64(len as f64 / rate as f64)
    }
}

/// The engine's admission state (shared by every clone of the engine).
pub(crate) struct Admission {
    handshakes: Option<AddrBuckets>,
    sessions: Arc<Gauge>,
}

impl Admission {
    pub(crate) fn new(limits: &AbuseLimits) -> Admission {
        Admission {
            handshakes: limits.handshakes_per_addr.map(AddrBuckets::new),
            sessions: Gauge::new(limits.max_sessions),
        }
    }

    /// Admits a new session from `ip`: the permit is held by the session.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Permit, HttpError> {
        if let Some(b) = &self.handshakes {
            b.take(ip, Instant::now())
                .map_err(|_| HttpError::TooManyRequests)?;
        }
        self.sessions.try_acquire().ok_or(HttpError::ServerBusy)
    }

    /// A permit outside the limits (in-process sessions).
    pub(crate) fn unchecked(&self) -> Permit {
        let unlimited = Gauge::new(usize::MAX);
        unlimited
            .try_acquire()
            .expect("an unlimited gauge always admits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_origin_rule() {
        let l = AbuseLimits::default();
        let list = Cors {
            origins: AllowedOrigins::List(vec!["http://ok.test".into()]),
            credentials: true,
        };
        assert!(l.websocket_origin_allowed(Some(&list), None));
        assert!(l.websocket_origin_allowed(Some(&list), Some("http://ok.test")));
        assert!(!l.websocket_origin_allowed(Some(&list), Some("http://evil.test")));
        assert!(l.websocket_origin_allowed(Some(&Cors::any()), Some("http://evil.test")));
        assert!(l.websocket_origin_allowed(None, Some("http://evil.test")));
        let any = AbuseLimits {
            websocket_origins: WsOrigins::Any,
            ..AbuseLimits::default()
        };
        assert!(any.websocket_origin_allowed(Some(&list), Some("http://evil.test")));
        let own = AbuseLimits {
            websocket_origins: WsOrigins::List(vec!["http://own.test".into()]),
            ..AbuseLimits::default()
        };
        assert!(!own.websocket_origin_allowed(None, Some("http://ok.test")));
        assert!(own.websocket_origin_allowed(None, Some("http://own.test")));
    }

    #[test]
    fn origins_setting_parses() {
        assert_eq!(WsOrigins::parse(""), WsOrigins::FromCors);
        assert_eq!(WsOrigins::parse(" * "), WsOrigins::Any);
        assert_eq!(
            WsOrigins::parse("http://a.test, http://b.test"),
            WsOrigins::List(vec!["http://a.test".into(), "http://b.test".into()])
        );
    }

    #[test]
    fn body_deadline_grows_with_size() {
        let l = AbuseLimits::default();
        assert_eq!(l.body_deadline(Some(0), 1_000_000), Duration::from_secs(10));
        let big = l.body_deadline(None, 16 << 20);
        assert_eq!(big, Duration::from_secs(10 + 1024));
    }

    #[test]
    fn admission_counts_sessions() {
        let a = Admission::new(&AbuseLimits {
            max_sessions: 1,
            ..AbuseLimits::default()
        });
        let ip: IpAddr = "10.1.1.1".parse().unwrap();
        let p = a.admit(ip).unwrap();
        assert_eq!(a.admit(ip).unwrap_err(), HttpError::ServerBusy);
        drop(p);
        assert!(a.admit(ip).is_ok());
    }
}
