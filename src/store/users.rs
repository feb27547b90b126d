//! Users: the `users` tree, its `users_by_email` index and a cache of
//! display names (a name is shown with every mark, so it is looked up far
//! more often than a user changes).
//!
//! Lock: `names` is a leaf lock. It is filled under the store's write lock
//! (so no change of the user slips between the read and the insert) and
//! emptied per user by every write of that user, also under the write lock.

use std::collections::HashMap;
use std::sync::Arc;

use sled::transaction::Transactional;

use super::codec::{abort, enc, tx_err, Table};
use super::error::StoreError;
use super::flusher::Writing;
use super::model::User;

/// The users and what is derived from them.
pub(super) struct Users {
    users: Table<User>,
    /// Lower-case email to user id.
    emails: sled::Tree,
    /// Display names by user id (`None`: no such user), filled on use and
    /// dropped when the user is written.
    names: parking_lot::RwLock<HashMap<String, Option<Arc<str>>>>,
}

impl Users {
    /// Opens the users' trees of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Users, StoreError> {
        Ok(Users {
            users: Table::open(db, "users", "user")?,
            emails: db.open_tree("users_by_email")?,
            names: parking_lot::RwLock::new(HashMap::new()),
        })
    }

    /// Creates a user (id and email must be new), in one transaction.
    pub(super) fn create(&self, _w: &Writing<'_>, user: &User) -> Result<(), StoreError> {
        let email = user.email.to_lowercase();
        (self.users.tree(), &self.emails)
            .transaction(|(users, emails)| {
                if users.get(user.id.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("user"));
                }
                if emails.get(email.as_bytes())?.is_some() {
                    return abort(StoreError::Exists("email"));
                }
                users.insert(user.id.as_bytes(), enc(user))?;
                emails.insert(email.as_bytes(), user.id.as_bytes())?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.names.write().remove(&user.id);
        Ok(())
    }

    /// A user by id.
    pub(super) fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.users.get(id)
    }

    /// The cached display name of `id`, when there is one.
    pub(super) fn cached_name(&self, id: &str) -> Option<Option<Arc<str>>> {
        self.names.read().get(id).cloned()
    }

    /// Reads the display name of `id` and caches it.
    pub(super) fn load_name(
        &self,
        _w: &Writing<'_>,
        id: &str,
    ) -> Result<Option<Arc<str>>, StoreError> {
        let name = self.get(id)?.map(|u| Arc::<str>::from(u.name));
        self.names.write().insert(id.to_string(), name.clone());
        Ok(name)
    }

    /// A user by email (case-insensitive).
    pub(super) fn by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        match self.emails.get(email.to_lowercase())? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// All users.
    pub(super) fn all(&self) -> Result<Vec<User>, StoreError> {
        self.users.all()
    }

    /// Changes a user in place.
    pub(super) fn update(
        &self,
        _w: &Writing<'_>,
        id: &str,
        f: impl Fn(&mut User),
    ) -> Result<User, StoreError> {
        let user = self.users.update(id, f)?;
        self.names.write().remove(id);
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{open, TempDir};
    use super::super::{now_rfc3339, Role, User};

    #[test]
    fn user_names_are_cached_and_follow_changes() {
        let dir = TempDir::new("names");
        let store = open(&dir);
        assert_eq!(store.user_name("u1").unwrap(), None);
        let user = User {
            id: "u1".into(),
            email: "u1@example.test".into(),
            name: "First".into(),
            role: Role::Student,
            password_hash: None,
            active: true,
            token_version: 0,
            created_at: now_rfc3339(),
        };
        let _ = store.create_user(&user).unwrap();
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("First"));
        let _ = store
            .update_user("u1", |u| u.name = "Second".into())
            .unwrap();
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("Second"));
        assert_eq!(store.user_name("u1").unwrap().as_deref(), Some("Second"));
    }
}
