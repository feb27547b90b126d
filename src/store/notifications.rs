//! Notifications and attendance tallies (SPEC.md §4.16).
//!
//! Why stored: a notification is acknowledged only once it is on disk, so a
//! user who was offline gets it on the next connection. A notification is
//! addressed to one user or to one role; a user's notifications are their
//! own plus those of their role created after their account. Read state:
//! a user notification carries its own `read` flag; a role notification is
//! read per user (a mark in `notif_read`), so one student reading a role
//! notice does not read it for the others.
//!
//! Trees (all keyed so that a prefix scan lists one owner in id order):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `notif_user` | user id `\0` notification id | [`Notification`] |
//! | `notif_role` | role `\0` notification id | [`Notification`] |
//! | `notif_read` | user id `\0` notification id | empty (a role notification read by the user) |
//! | `attendance_tally` | course id `\0` student id | [`Tally`] |
//!
//! Notification ids are 16 lower-case hex digits of a sled-generated number
//! (monotonic, also across restarts), so key order is creation order.
//! Lock: none of its own; writes run under the store's write lock.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::codec::{pair_key, pair_prefix, Table};
use super::error::StoreError;
use super::model::{Record, Role, Status, User};
use super::{Store, Ticket};

/// How many of a user's newest notifications unread counts, unread pages
/// and "mark all read" look at (so their cost stays bounded however many
/// notifications pile up; older ones are still listed by plain pages).
pub const UNREAD_SCAN: usize = 1000;

/// Who a notification is addressed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationTarget {
    /// Every device of one user.
    User(String),
    /// Every user with this role.
    Role(Role),
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationBody {
    /// The notification's type (`info`, `success`, `warning`, `session_started`, ...).
    pub kind: String,
    /// Title.
    pub title: String,
    /// Text.
    pub message: String,
    /// Free-form details.
    pub data: Option<Value>,
    /// A link the client may open.
    pub action_url: Option<String>,
}

impl NotificationBody {
    /// A notification of `kind` with a title and a message.
    pub fn new(kind: &str, title: &str, message: &str) -> NotificationBody {
        NotificationBody {
            kind: kind.into(),
            title: title.into(),
            message: message.into(),
            data: None,
            action_url: None,
        }
    }

    /// Adds details.
    pub fn with_data(mut self, data: Value) -> NotificationBody {
        self.data = Some(data);
        self
    }

    /// The same, addressed to `target`.
    pub fn to(self, target: NotificationTarget) -> NewNotification {
        NewNotification { target, body: self }
    }
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Id: 16 hex digits, increasing with creation.
    pub id: String,
    /// The addressee.
    pub target: NotificationTarget,
    /// What it says.
    pub body: NotificationBody,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Creation time (Unix ms).
    pub created_ms: u64,
    /// Read (user notifications; role notifications are read per user).
    pub read: bool,
}

/// A notification to store; the store adds id, time and read state.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The addressee.
    pub target: NotificationTarget,
    /// What it says.
    pub body: NotificationBody,
}

/// A student's attendance in a course over the sessions ended since
/// tallying began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Ended sessions the student had a record in.
    pub sessions: u64,
    /// Of those, the ones the student was present in.
    pub present: u64,
}

impl Tally {
    /// Percentage present (0-100); `None` before any session.
    pub fn percent(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.present as f64 * 100.0 / self.sessions as f64)
    }
}

/// A student's percentage before (`None`: first tallied session) and
/// after one more ended session.
pub type TallyChange = (String, Option<f64>, f64);

/// A page of a user's notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationPage {
    /// Newest first, each with `read` as this user sees it.
    pub items: Vec<Notification>,
    /// Where the next (older) page starts, if there are more.
    pub next_before: Option<String>,
}

/// The notification trees.
pub(super) struct Notifications {
    db: sled::Db,
    by_user: Table<Notification>,
    by_role: Table<Notification>,
    read: sled::Tree,
    tally: Table<Tally>,
}

impl Notifications {
    /// Opens the trees of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Notifications, StoreError> {
        Ok(Notifications {
            db: db.clone(),
            by_user: Table::open(db, "notif_user", "notification")?,
            by_role: Table::open(db, "notif_role", "notification")?,
            read: db.open_tree("notif_read")?,
            tally: Table::open(db, "attendance_tally", "tally")?,
        })
    }

    fn build(&self, n: NewNotification) -> Result<Notification, StoreError> {
        let now = super::now_ms();
        Ok(Notification {
            id: format!("{:016x}", self.db.generate_id()?),
            target: n.target,
            body: n.body,
            created_at: super::format_rfc3339(now),
            created_ms: now,
            read: false,
        })
    }

    fn key(n: &Notification) -> (bool, Vec<u8>) {
        match &n.target {
            NotificationTarget::User(u) => (true, pair_key(u, &n.id)),
            NotificationTarget::Role(r) => (false, pair_key(r.as_str(), &n.id)),
        }
    }

    /// The notifications `user` sees, newest first, with ids below `before`.
    fn visible<'a>(
        &'a self,
        user: &'a User,
        before: Option<&str>,
    ) -> impl Iterator<Item = Result<Notification, StoreError>> + 'a {
        let since = super::parse_rfc3339(&user.created_at).unwrap_or(0);
        let range = |prefix: Vec<u8>| {
            let mut end = prefix.clone();
            match before {
                Some(b) => end.extend_from_slice(b.as_bytes()),
                None => end.push(0xff),
            }
            (prefix, end)
        };
        let (ua, ub) = range(pair_prefix(&user.id));
        let (ra, rb) = range(pair_prefix(user.role.as_str()));
        let decode =
            |r: sled::Result<(sled::IVec, sled::IVec)>| -> Result<Notification, StoreError> {
                let (_, v) = r?;
                super::codec::dec(&v)
            };
        let mine = self.by_user.tree().range(ua..ub).rev().map(decode);
        let role = self
            .by_role
            .tree()
            .range(ra..rb)
            .rev()
            .map(decode)
            .filter(move |n| n.as_ref().map_or(true, |n| n.created_ms >= since))
            .map(move |n| {
                let mut n = n?;
                n.read = self.read.contains_key(pair_key(&user.id, &n.id))?;
                Ok(n)
            });
        Merge {
            a: mine.peekable(),
            b: role.peekable(),
        }
    }
}

/// Merges two newest-first streams of notifications by id.
struct Merge<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A, B> Iterator for Merge<A, B>
where
    A: Iterator<Item = Result<Notification, StoreError>>,
    B: Iterator<Item = Result<Notification, StoreError>>,
{
    type Item = Result<Notification, StoreError>;
    fn next(&mut self) -> Option<Self::Item> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(Ok(a)), Some(Ok(b))) => a.id > b.id,
            (Some(Err(_)), _) | (Some(_), None) => true,
            (None, None) => return None,
            _ => false,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

impl Store {
    /// Stores notifications; the ticket covers all. Plain inserts, one per
    /// notification (each stands on its own, and a sled batch would seal
    /// and write sled's buffer at once: this runs on the mark path).
    pub fn add_notifications(
        &self,
        new: Vec<NewNotification>,
    ) -> Result<(Vec<Notification>, Ticket), StoreError> {
        let n = &self.inner.notifications;
        self.inner.flusher.write(|_w| {
            let mut out = Vec::with_capacity(new.len());
            for item in new {
                let stored = n.build(item)?;
                let (user, key) = Notifications::key(&stored);
                let table = if user { &n.by_user } else { &n.by_role };
                table.insert(key, &stored)?;
                out.push(stored);
            }
            Ok(out)
        })
    }

    /// A page of `user`'s notifications: at most `limit`, newest first,
    /// older than `before` when given, only unread ones if `unread_only`.
    pub fn notifications_page(
        &self,
        user: &User,
        before: Option<&str>,
        limit: usize,
        unread_only: bool,
    ) -> Result<NotificationPage, StoreError> {
        let mut items = Vec::with_capacity(limit.min(128));
        let mut more = false;
        let scan = if unread_only { UNREAD_SCAN } else { usize::MAX };
        for n in self.inner.notifications.visible(user, before).take(scan) {
            let n = n?;
            if unread_only && n.read {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(n);
        }
        let next_before = if more {
            items.last().map(|n| n.id.clone())
        } else {
            None
        };
        Ok(NotificationPage { items, next_before })
    }

    /// How many of `user`'s newest [`UNREAD_SCAN`] notifications are unread.
    pub fn unread_count(&self, user: &User) -> Result<usize, StoreError> {
        let mut count = 0;
        for n in self
            .inner
            .notifications
            .visible(user, None)
            .take(UNREAD_SCAN)
        {
            if !n?.read {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Marks notifications read for `user`: the given ids, or every one
    /// when `ids` is `None`. Returns the ids that changed (unknown ids and
    /// ids of other users are skipped) and the write's ticket.
    pub fn mark_notifications_read(
        &self,
        user: &User,
        ids: Option<&[String]>,
    ) -> Result<(Vec<String>, Ticket), StoreError> {
        let n = &self.inner.notifications;
        self.inner.flusher.write(|_w| {
            let wanted: Option<std::collections::HashSet<&str>> =
                ids.map(|ids| ids.iter().map(String::as_str).collect());
            let mut changed = Vec::new();
            let unread: Vec<Notification> = n
                .visible(user, None)
                .take(UNREAD_SCAN)
                .filter(|r| r.as_ref().map_or(true, |n| !n.read))
                .filter(|r| {
                    r.as_ref()
                        .map_or(true, |n| wanted.as_ref().is_none_or(|w| w.contains(&*n.id)))
                })
                .collect::<Result<_, _>>()?;
            for mut item in unread {
                match &item.target {
                    NotificationTarget::User(u) => {
                        item.read = true;
                        n.by_user.insert(pair_key(u, &item.id), &item)?;
                    }
                    NotificationTarget::Role(_) => {
                        n.read.insert(pair_key(&user.id, &item.id), &[] as &[u8])?;
                    }
                }
                changed.push(item.id);
            }
            changed.reverse();
            Ok(changed)
        })
    }

    /// Adds an ended session's records to its course's tallies; returns,
    /// per student, the percentage before (`None` if it was their first
    /// tallied session) and after.
    pub fn tally_session(
        &self,
        course_id: &str,
        records: &[Record],
    ) -> Result<(Vec<TallyChange>, Ticket), StoreError> {
        let n = &self.inner.notifications;
        self.inner.flusher.write(|_w| {
            let mut out = Vec::with_capacity(records.len());
            let mut batch = sled::Batch::default();
            for r in records {
                let key = pair_key(course_id, &r.student_id);
                let before = n.tally.get(&key)?.unwrap_or_default();
                let after = Tally {
                    sessions: before.sessions + 1,
                    present: before.present + u64::from(r.status == Status::Present),
                };
                batch.insert(key, super::codec::enc(&after));
                out.push((
                    r.student_id.clone(),
                    before.percent(),
                    after.percent().unwrap_or(0.0),
                ));
            }
            n.tally.tree().apply_batch(batch)?;
            Ok(out)
        })
    }

    /// A student's tally in a course.
    pub fn tally(&self, course_id: &str, student_id: &str) -> Result<Tally, StoreError> {
        Ok(self
            .inner
            .notifications
            .tally
            .get(pair_key(course_id, student_id))?
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{open, TempDir};

    fn user(id: &str, role: Role, created_at: &str) -> User {
        User {
            id: id.into(),
            email: format!("{id}@x.test"),
            name: id.into(),
            role,
            password_hash: None,
            active: true,
            token_version: 0,
            created_at: created_at.into(),
        }
    }

    fn note(target: NotificationTarget, title: &str) -> NewNotification {
        NotificationBody::new("info", title, "m").to(target)
    }

    #[test]
    fn users_see_their_own_and_their_roles_newer_notifications_with_own_read_state() {
        let dir = TempDir::new("notif");
        let s = &open(&dir);
        let early = user("s1", Role::Student, "2000-01-01T00:00:00.000Z");
        let (_, _) = s
            .add_notifications(vec![
                note(NotificationTarget::User("s1".into()), "a"),
                note(NotificationTarget::Role(Role::Student), "b"),
                note(NotificationTarget::User("s2".into()), "other"),
                note(NotificationTarget::Role(Role::Teacher), "teachers"),
                note(NotificationTarget::User("s1".into()), "c"),
            ])
            .expect("add");
        let page = s.notifications_page(&early, None, 10, false).expect("page");
        let titles: Vec<&str> = page.items.iter().map(|n| n.body.title.as_str()).collect();
        assert_eq!(titles, ["c", "b", "a"]);
        assert_eq!(s.unread_count(&early).expect("count"), 3);
        // Paging: two, then the rest.
        let p1 = s.notifications_page(&early, None, 2, false).expect("p1");
        assert_eq!(p1.items.len(), 2);
        let p2 = s
            .notifications_page(&early, p1.next_before.as_deref(), 2, false)
            .expect("p2");
        assert_eq!(p2.items.len(), 1);
        assert_eq!(p2.items[0].body.title, "a");
        assert_eq!(p2.next_before, None);
        // Reading the role one is per user.
        let b = page.items[1].id.clone();
        let (changed, _) = s
            .mark_notifications_read(&early, Some(std::slice::from_ref(&b)))
            .expect("read");
        assert_eq!(changed, std::slice::from_ref(&b));
        assert_eq!(s.unread_count(&early).expect("count"), 2);
        let other = user("s3", Role::Student, "2000-01-01T00:00:00.000Z");
        assert_eq!(s.unread_count(&other).expect("count"), 1);
        // A user created after a role notification does not get it.
        let late = user("s4", Role::Student, "2999-01-01T00:00:00.000Z");
        assert_eq!(s.unread_count(&late).expect("count"), 0);
        // Read all.
        let (changed, _) = s.mark_notifications_read(&early, None).expect("all");
        assert_eq!(changed.len(), 2);
        assert_eq!(s.unread_count(&early).expect("count"), 0);
        let unread = s.notifications_page(&early, None, 10, true).expect("u");
        assert!(unread.items.is_empty());
    }

    #[test]
    fn tallies_count_ended_sessions() {
        let dir = TempDir::new("tally");
        let store = open(&dir);
        let rec = |student: &str, status: Status| Record {
            session_id: "x".into(),
            student_id: student.into(),
            status,
            marked_by: None,
            marked_at: None,
            method: "teacher".into(),
            location: None,
        };
        let (out, _) = store
            .tally_session("c", &[rec("a", Status::Present), rec("b", Status::Absent)])
            .expect("tally");
        assert_eq!(out[0], ("a".into(), None, 100.0));
        assert_eq!(out[1], ("b".into(), None, 0.0));
        let (out, _) = store
            .tally_session("c", &[rec("a", Status::Absent)])
            .expect("tally");
        assert_eq!(out[0], ("a".into(), Some(100.0), 50.0));
        assert_eq!(store.tally("c", "a").expect("get").sessions, 2);
    }
}
