//! Who may connect to the admin namespace: the CONNECT payload's
//! `{username, password}` checked against the configured bcrypt hash, or a
//! `sessionId` handed out after such a login (the UI keeps it and presents
//! it when it reconnects, e.g. after a page reload).
//!
//! Session ids are not stored: each is `<expiry>.<nonce>.<MAC>`, the MAC an
//! HMAC-SHA256 under a key derived from the server's session key, the
//! username and the hash. So any node configured alike accepts it (the admin
//! namespace stays usable across a cluster without a shared store), and
//! changing the password or the key revokes every session at once.
//!
//! bcrypt is slow by design: checks run on the blocking pool, at most
//! `max_concurrent_logins` at once, so a flood of logins cannot starve the
//! server's event loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::config::{Access, AdminUiConfig};
use crate::socketio::ConnectError;

type HmacSha256 = Hmac<Sha256>;

/// The result of a successful check: a new session id to hand to the
/// client after a password login, none otherwise.
pub(crate) type Admitted = Option<String>;

/// Checks CONNECT payloads against the configured access.
pub(crate) struct Gate {
    access: Access,
    key: [u8; 32],
    ttl: Duration,
    logins: Arc<Semaphore>,
}

/// Why a CONNECT was refused: the `data.code` of the CONNECT_ERROR (its
/// message is always `invalid credentials`, the text the UI looks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Wrong or missing username or password.
    Credentials,
    /// A session id that is malformed, forged or expired.
    Session,
}

impl Refusal {
    /// The code sent in `data.code`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Refusal::Credentials => "invalid_credentials",
            Refusal::Session => "invalid_session",
        }
    }

    /// The CONNECT_ERROR for this refusal.
    pub(crate) fn to_error(self) -> ConnectError {
        ConnectError::with_data("invalid credentials", json!({ "code": self.code() }))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Gate {
    /// The gate for `config`; `session_key` is mixed into the session MAC
    /// key (give every node of a cluster the same one).
    pub(crate) fn new(config: &AdminUiConfig, session_key: &[u8]) -> Gate {
        let mut d = Sha256::new();
        d.update(b"rollcall admin-ui session v1\0");
        d.update(session_key);
        if let Access::Basic { username, hash } = &config.access {
            d.update(b"\0");
            d.update(username.as_bytes());
            d.update(b"\0");
            d.update(hash.as_bytes());
        }
        Gate {
            access: config.access.clone(),
            key: d.finalize().into(),
            ttl: config.session_ttl,
            logins: Arc::new(Semaphore::new(config.max_concurrent_logins.max(1))),
        }
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(body.as_bytes());
        m
    }

    /// A new session id valid for the configured time.
    pub(crate) fn new_session(&self) -> String {
        let expiry = now_ms().saturating_add(self.ttl.as_millis() as u64);
        let body = format!("{expiry:x}.{}", crate::util::random_id(12));
        let tag = self.mac(&body).finalize().into_bytes();
        format!("{body}.{}", hex(&tag))
    }

    /// Whether `id` is a session id this gate (or one configured alike)
    /// issued and that has not expired.
    pub(crate) fn session_valid(&self, id: &str) -> bool {
        let Some((body, tag)) = id.rsplit_once('.') else {
            return false;
        };
        let Some(tag) = unhex(tag) else { return false };
        if self.mac(body).verify_slice(&tag).is_err() {
            return false;
        }
        let expiry = body
            .split('.')
            .next()
            .and_then(|e| u64::from_str_radix(e, 16).ok());
        expiry.is_some_and(|e| e > now_ms())
    }

    /// Checks a CONNECT payload.
    pub(crate) async fn check(&self, auth: &Value) -> Result<Admitted, Refusal> {
        let Access::Basic { username, hash } = &self.access else {
            return Ok(None);
        };
        let field = |k: &str| {
            auth.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let (Some(user), Some(password)) = (field("username"), field("password")) {
            if user != username {
                return Err(Refusal::Credentials);
            }
            let Ok(_permit) = self.logins.clone().acquire_owned().await else {
                return Err(Refusal::Credentials);
            };
            let (password, hash) = (password.to_string(), hash.clone());
            let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(false);
            return if ok {
                Ok(Some(self.new_session()))
            } else {
                Err(Refusal::Credentials)
            };
        }
        match field("sessionId") {
            Some(id) if self.session_valid(id) => Ok(None),
            Some(_) => Err(Refusal::Session),
            None => Err(Refusal::Credentials),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(ttl: Duration) -> Gate {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let config = AdminUiConfig {
            access: Access::Basic {
                username: "admin".into(),
                hash,
            },
            session_ttl: ttl,
            ..AdminUiConfig::default()
        };
        Gate::new(&config, b"key")
    }

    #[tokio::test]
    async fn checks_passwords_and_sessions() {
        let g = gate(Duration::from_secs(60));
        let ok = g
            .check(&json!({"username": "admin", "password": "s3cret"}))
            .await;
        let session = ok.unwrap().expect("a session id after a password login");
        assert_eq!(g.check(&json!({"sessionId": session})).await, Ok(None));
        let refused = [
            json!({"username": "admin", "password": "wrong"}),
            json!({"username": "root", "password": "s3cret"}),
            json!({"username": "admin"}),
            json!({}),
        ];
        for auth in refused {
            assert_eq!(g.check(&auth).await, Err(Refusal::Credentials), "{auth}");
        }
        let mut forged = session.clone();
        forged.replace_range(0..1, if forged.starts_with('f') { "e" } else { "f" });
        assert_eq!(
            g.check(&json!({"sessionId": forged})).await,
            Err(Refusal::Session)
        );
        assert_eq!(
            g.check(&json!({"sessionId": "x.y.zz"})).await,
            Err(Refusal::Session)
        );
        // Another key (or another password hash) does not accept it.
        assert!(!gate(Duration::from_secs(60)).session_valid(&session));
    }

    #[test]
    fn sessions_expire() {
        let g = gate(Duration::ZERO);
        let s = g.new_session();
        std::thread::sleep(Duration::from_millis(2));
        assert!(!g.session_valid(&s));
    }

    #[tokio::test]
    async fn open_access_admits_anyone() {
        let config = AdminUiConfig {
            access: Access::Open,
            ..AdminUiConfig::default()
        };
        assert_eq!(Gate::new(&config, b"").check(&json!({})).await, Ok(None));
    }
}
