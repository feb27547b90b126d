//! Revoked tokens: the `revoked_tokens` tree, token id (`jti`) → the
//! token's expiry (Unix seconds). A token logged out of one device stays
//! refused until it would have expired anyway; expired entries are pruned
//! when the server starts. (Logging out every device bumps the user's token
//! version instead, see `users`.)

use super::error::StoreError;
use super::flusher::Ticket;
use super::Store;

/// The revoked-token tree.
pub(super) struct Revoked {
    tree: sled::Tree,
}

impl Revoked {
    /// Opens the tree of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Revoked, StoreError> {
        Ok(Revoked {
            tree: db.open_tree("revoked_tokens")?,
        })
    }
}

impl Store {
    /// Refuses the token `jti` from now on (until `exp`, Unix seconds).
    pub fn revoke_token(&self, jti: &str, exp: u64) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let (_, t) = i
            .flusher
            .write(|_w| Ok::<_, StoreError>(i.revoked.tree.insert(jti, &exp.to_be_bytes())?))?;
        Ok(t)
    }

    /// Whether the token `jti` was revoked.
    pub fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.inner.revoked.tree.contains_key(jti)?)
    }

    /// Forgets revoked tokens that expired before `now` (Unix seconds);
    /// returns how many.
    pub fn prune_revoked_tokens(&self, now: u64) -> Result<usize, StoreError> {
        let i = &self.inner;
        let mut expired = Vec::new();
        for kv in i.revoked.tree.iter() {
            let (k, v) = kv?;
            let exp = <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if exp < now {
                expired.push(k);
            }
        }
        let n = expired.len();
        if n > 0 {
            let _ = i.flusher.write(|_w| {
                for k in expired {
                    i.revoked.tree.remove(k)?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{open, TempDir};

    #[test]
    fn revoked_tokens_are_kept_until_they_expire() {
        let dir = TempDir::new("revoked");
        let store = open(&dir);
        assert!(!store.is_token_revoked("j1").unwrap());
        let _ = store.revoke_token("j1", 100).unwrap();
        let _ = store.revoke_token("j2", 300).unwrap();
        assert!(store.is_token_revoked("j1").unwrap());
        assert_eq!(store.prune_revoked_tokens(200).unwrap(), 1);
        assert!(!store.is_token_revoked("j1").unwrap());
        assert!(store.is_token_revoked("j2").unwrap());
    }
}
