//! Passwords (argon2) and access tokens (JWT, HS256 only, expiry required).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::store::{Store, User};

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role at the time of issue.
    pub role: String,
    /// The user's token version at the time of issue.
    pub ver: u64,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Token id: names the device that logged in with it (optional, so that
    /// tokens made before it existed stay valid; every token issued here
    /// has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Why a socket or request was not authenticated; `code()` is what clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token.
    #[error("missing token")]
    MissingToken,
    /// Bad signature, wrong algorithm, malformed or missing claims.
    #[error("invalid token")]
    InvalidToken,
    /// Past its expiry.
    #[error("token expired")]
    TokenExpired,
    /// The user does not exist.
    #[error("unknown user")]
    UnknownUser,
    /// The user is disabled.
    #[error("user disabled")]
    UserDisabled,
    /// The token's version is older than the user's.
    #[error("token revoked")]
    TokenRevoked,
    /// The store failed.
    #[error("internal error")]
    Internal,
}

impl AuthError {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::TokenExpired => "token_expired",
            AuthError::UnknownUser => "unknown_user",
            AuthError::UserDisabled => "user_disabled",
            AuthError::TokenRevoked => "token_revoked",
            AuthError::Internal => "internal",
        }
    }
}

/// Issues and checks tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    ttl_secs: u64,
}

impl TokenKeys {
    /// Keys from a secret; tokens live `ttl_secs`.
    pub fn new(secret: &[u8], ttl_secs: u64) -> TokenKeys {
        TokenKeys {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            ttl_secs,
        }
    }

    /// A token for `user`.
    pub fn issue(&self, user: &User) -> String {
        self.issue_with_ttl(user, self.ttl_secs)
    }

    /// A token for `user` that lives `ttl_secs`.
    pub fn issue_with_ttl(&self, user: &User, ttl_secs: u64) -> String {
        self.issue_claims(user, ttl_secs).0
    }

    /// A token for `user` (normal lifetime) and its id (`jti`).
    pub fn issue_device(&self, user: &User) -> (String, String) {
        let (token, claims) = self.issue_claims(user, self.ttl_secs);
        (token, claims.jti.unwrap_or_default())
    }

    fn issue_claims(&self, user: &User, ttl_secs: u64) -> (String, Claims) {
        let now = crate::store::now_ms() / 1000;
        let claims = Claims {
            sub: user.id.clone(),
            role: user.role.as_str().into(),
            ver: user.token_version,
            exp: now + ttl_secs,
            iat: now,
            jti: Some(crate::util::random_id(12)),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .unwrap_or_default();
        (token, claims)
    }

    /// Checks a token's signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp", "sub"]);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                _ => AuthError::InvalidToken,
            })
    }

    /// Checks a token and that its user exists, is active and has not
    /// revoked it.
    pub fn authenticate(&self, store: &Store, token: Option<&str>) -> Result<User, AuthError> {
        self.authenticate_claims(store, token).map(|(user, _)| user)
    }

    /// As [`TokenKeys::authenticate`], also refusing a token whose id was
    /// revoked (logged out of its device); the user and the token's claims.
    pub fn authenticate_claims(
        &self,
        store: &Store,
        token: Option<&str>,
    ) -> Result<(User, Claims), AuthError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let claims = self.verify(token)?;
        if let Some(cli) = super::cli_token::cli_user(&claims) {
            return Ok((cli, claims));
        }
        let user = store
            .user(&claims.sub)
            .map_err(|_| AuthError::Internal)?
            .ok_or(AuthError::UnknownUser)?;
        if !user.active {
            return Err(AuthError::UserDisabled);
        }
        if claims.ver != user.token_version {
            return Err(AuthError::TokenRevoked);
        }
        if let Some(jti) = &claims.jti {
            if store
                .is_token_revoked(jti)
                .map_err(|_| AuthError::Internal)?
            {
                return Err(AuthError::TokenRevoked);
            }
        }
        Ok((user, claims))
    }
}

/// argon2's working memory (19 MiB with the default parameters), kept per
/// thread and reused: allocating it for every hash let the allocator keep
/// freed blocks around, so that memory grew far beyond one block per
/// hashing thread (the hashing pool of SPEC.md §4.24 runs a fixed number of
/// threads, so this is the whole memory of password hashing).
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [argon2::Block]) -> R) -> R {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() != count {
            *b = vec![argon2::Block::default(); count];
        }
        f(&mut b[..])
    })
}

/// Hashes a password with argon2id (default parameters), as a PHC string.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, SaltString};
    use argon2::{Algorithm, Params, PasswordHash, Version};
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let argon = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let hashed = (|| {
        let raw_salt = salt.decode_b64(&mut salt_buf).ok()?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        with_blocks(params.block_count(), |m| {
            argon.hash_password_into_with_memory(password.as_bytes(), raw_salt, &mut out, m)
        })
        .ok()?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).ok()?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).ok()?),
        };
        Some(phc.to_string())
    })();
    hashed.unwrap_or_default()
}

/// Checks a password against an argon2 PHC string (its own parameters).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::Output;
    use argon2::{Algorithm, Params, PasswordHash, Version};
    let check = || {
        let h = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(h.algorithm).ok()?;
        let version = match h.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&h).ok()?;
        let expected = h.hash?;
        let mut salt_buf = [0u8; 64];
        let salt = h.salt?.decode_b64(&mut salt_buf).ok()?;
        let mut out = vec![0u8; expected.len()];
        let argon = argon2::Argon2::new(algorithm, version, params.clone());
        with_blocks(params.block_count(), |m| {
            argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, m)
        })
        .ok()?;
        // Output's equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_roundtrip() {
        let h = hash_password("s3cret");
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("other", &h));
        assert!(!verify_password("s3cret", "not a hash"));
        // Hashes made by the crate's own hasher (older data) still verify.
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2::Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("s3cret", &theirs));
        assert!(!verify_password("s3creT", &theirs));
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // And ours verify with the crate's verifier.
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        assert!(argon2::Argon2::default()
            .verify_password(b"s3cret", &PasswordHash::new(&h).unwrap())
            .is_ok());
    }

    #[test]
    fn tokens_refuse_none_and_expired() {
        let keys = TokenKeys::new(b"k", 60);
        let user = User {
            id: "u1".into(),
            email: "a@b".into(),
            name: "A".into(),
            role: crate::store::Role::Student,
            password_hash: None,
            active: true,
            token_version: 0,
            created_at: String::new(),
        };
        let t = keys.issue(&user);
        assert_eq!(keys.verify(&t).unwrap().sub, "u1");
        // alg: none
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(r#"{"sub":"u1","role":"student","ver":0,"exp":9999999999,"iat":0}"#)
        );
        assert_eq!(keys.verify(&none), Err(AuthError::InvalidToken));
        let other = TokenKeys::new(b"other", 60).issue(&user);
        assert_eq!(keys.verify(&other), Err(AuthError::InvalidToken));
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "u1".into(),
                role: "student".into(),
                ver: 0,
                exp: 1,
                iat: 0,
                jti: None,
            },
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(keys.verify(&expired), Err(AuthError::TokenExpired));
    }
}
