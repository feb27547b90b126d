//! The admin CLI's identity (SPEC.md §4.14): while a server runs, the CLI
//! talks to its HTTP API with a short-lived token for the reserved subject
//! `@cli`, signed with the data directory's secret. Whoever can read the
//! secret can mint any user's token anyway, so this grants nothing new; it
//! lets the CLI act as an admin even before any admin user exists (the
//! first admin can be created with `rollcall user add` while the server
//! runs).

use super::auth::{Claims, TokenKeys};
use crate::store::{Role, User};

/// The reserved subject of CLI tokens.
pub const CLI_SUBJECT: &str = "@cli";
/// Longest lifetime a CLI token may have, seconds.
pub const CLI_TOKEN_MAX_SECS: u64 = 300;

/// The admin a valid CLI token stands for (`None` if `claims` is not one:
/// another subject, not role admin, or living longer than 300 s).
pub(crate) fn cli_user(claims: &Claims) -> Option<User> {
    (claims.sub == CLI_SUBJECT
        && claims.role == "admin"
        && claims.exp.saturating_sub(claims.iat) <= CLI_TOKEN_MAX_SECS)
        .then(|| User {
            id: CLI_SUBJECT.into(),
            email: "cli@localhost".into(),
            name: "rollcall CLI".into(),
            role: Role::Admin,
            password_hash: None,
            active: true,
            token_version: claims.ver,
            created_at: String::new(),
        })
}

/// A CLI token living `ttl_secs` (at most 300).
pub fn issue_cli_token(keys: &TokenKeys, ttl_secs: u64) -> String {
    let user = User {
        id: CLI_SUBJECT.into(),
        email: String::new(),
        name: String::new(),
        role: Role::Admin,
        password_hash: None,
        active: true,
        token_version: 0,
        created_at: String::new(),
    };
    keys.issue_with_ttl(&user, ttl_secs.min(CLI_TOKEN_MAX_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, role: &str, life: u64) -> Claims {
        Claims {
            sub: sub.into(),
            role: role.into(),
            ver: 0,
            exp: 1000 + life,
            iat: 1000,
            jti: None,
        }
    }

    #[test]
    fn only_short_lived_admin_cli_tokens_stand_for_the_cli() {
        assert_eq!(
            cli_user(&claims(CLI_SUBJECT, "admin", 60)).map(|u| u.role),
            Some(Role::Admin)
        );
        assert!(cli_user(&claims(CLI_SUBJECT, "admin", 301)).is_none());
        assert!(cli_user(&claims(CLI_SUBJECT, "teacher", 60)).is_none());
        assert!(cli_user(&claims("someone", "admin", 60)).is_none());
        let keys = TokenKeys::new(b"secret", 86_400);
        let c = keys.verify(&issue_cli_token(&keys, 10_000)).unwrap();
        assert!(c.exp - c.iat <= CLI_TOKEN_MAX_SECS);
        assert!(cli_user(&c).is_some());
    }
}
