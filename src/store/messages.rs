//! Direct messages (the `/messenger` namespace's data): every message of a
//! conversation in order, an index from message id to its place, and each
//! user's inbox of messages not yet handed to any of their devices.
//!
//! Trees:
//! - `messages`: `low user \0 high user \0 id (8 bytes BE)` → [`Message`]
//!   (a conversation's key sorts the two user ids, so both sides read one
//!   range, oldest first);
//! - `message_ids`: id (8 bytes BE) → the `messages` key;
//! - `inbox`: `recipient \0 id (8 bytes BE)` → empty: not yet delivered.
//!
//! A message is one sled transaction over the three trees (all or none).
//! Ids come from sled's `generate_id` (unique and increasing across
//! restarts); the caller takes one before the write so that it can note the
//! message as "being delivered" before the message can be seen.

use serde::{Deserialize, Serialize};
use sled::transaction::Transactional;

use super::codec::{dec, enc, pair_key, pair_prefix, tx_err, Table};
use super::error::StoreError;
use super::flusher::Ticket;
use super::Store;

/// One direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Id, increasing in the order messages were accepted.
    pub id: u64,
    /// Sender's user id.
    pub from: String,
    /// Recipient's user id.
    pub to: String,
    /// The text.
    pub text: String,
    /// The sender's own id for the message, echoed back.
    pub client_id: Option<String>,
    /// When it was accepted (RFC 3339).
    pub sent_at: String,
    /// When the recipient marked it read.
    pub read_at: Option<String>,
}

/// The message trees.
pub(super) struct Messages {
    db: sled::Db,
    messages: Table<Message>,
    ids: sled::Tree,
    inbox: sled::Tree,
}

impl Messages {
    /// Opens the message trees of `db`.
    pub(super) fn open(db: &sled::Db) -> Result<Messages, StoreError> {
        Ok(Messages {
            db: db.clone(),
            messages: Table::open(db, "messages", "message")?,
            ids: db.open_tree("message_ids")?,
            inbox: db.open_tree("inbox")?,
        })
    }
}

/// The key prefix of the conversation between `a` and `b`.
fn conversation(a: &str, b: &str) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut k = pair_key(lo, hi);
    k.push(0);
    k
}

fn message_key(m: &Message) -> Vec<u8> {
    let mut k = conversation(&m.from, &m.to);
    k.extend_from_slice(&m.id.to_be_bytes());
    k
}

fn inbox_key(to: &str, id: u64) -> Vec<u8> {
    let mut k = pair_prefix(to);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    /// A new message id (unique, increasing; not yet used by anything).
    pub fn next_message_id(&self) -> Result<u64, StoreError> {
        Ok(self.inner.messages.db.generate_id()?)
    }

    /// Stores `m` (with an id from [`Store::next_message_id`]) and puts it in
    /// the recipient's inbox, in one transaction.
    pub fn add_message(&self, m: &Message) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let ms = &i.messages;
        let key = message_key(m);
        let ((), t) = i.flusher.write(|_w| {
            (ms.messages.tree(), &ms.ids, &ms.inbox)
                .transaction(|(messages, ids, inbox)| {
                    messages.insert(key.as_slice(), enc(m))?;
                    ids.insert(&m.id.to_be_bytes(), key.as_slice())?;
                    inbox.insert(inbox_key(&m.to, m.id), &[] as &[u8])?;
                    Ok(())
                })
                .map_err(tx_err)
        })?;
        Ok(t)
    }

    /// Up to `limit` messages between `a` and `b` older than `before` (all
    /// when `None`), oldest first, and whether older ones remain.
    pub fn messages_between(
        &self,
        a: &str,
        b: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        let prefix = conversation(a, b);
        let mut end = prefix.clone();
        end.extend_from_slice(&before.unwrap_or(u64::MAX).to_be_bytes());
        let tree = self.inner.messages.messages.tree();
        let mut out = Vec::with_capacity(limit.min(128));
        let mut more = false;
        for kv in tree.range(prefix.clone()..end).rev() {
            let (_, v) = kv?;
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(dec::<Message>(&v)?);
        }
        out.reverse();
        Ok((out, more))
    }

    /// A message by id.
    pub fn message(&self, id: u64) -> Result<Option<Message>, StoreError> {
        let ms = &self.inner.messages;
        match ms.ids.get(id.to_be_bytes())? {
            Some(key) => ms.messages.get(key),
            None => Ok(None),
        }
    }

    /// Marks message `id` read (if it is not already); the message and, when
    /// it changed, the write's ticket.
    pub fn mark_message_read(
        &self,
        id: u64,
        at: &str,
    ) -> Result<(Message, Option<Ticket>), StoreError> {
        let i = &self.inner;
        let ms = &i.messages;
        let key = ms
            .ids
            .get(id.to_be_bytes())?
            .ok_or(StoreError::NotFound("message"))?;
        let mut m = ms
            .messages
            .get(&key)?
            .ok_or(StoreError::NotFound("message"))?;
        if m.read_at.is_some() {
            return Ok((m, None));
        }
        let ((), t) = i.flusher.write(|_w| {
            m.read_at = Some(at.to_string());
            ms.messages.insert(&key, &m)
        })?;
        Ok((m, Some(t)))
    }

    /// Up to `limit` messages in `user`'s inbox (not yet delivered), oldest
    /// first.
    pub fn undelivered(&self, user: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        for kv in self.inner.messages.inbox.scan_prefix(pair_prefix(user)) {
            if out.len() == limit {
                break;
            }
            let (k, _) = kv?;
            let id_bytes: [u8; 8] = k[k.len().saturating_sub(8)..]
                .try_into()
                .map_err(|_| StoreError::NotFound("message"))?;
            if let Some(m) = self.message(u64::from_be_bytes(id_bytes))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Takes message `id` out of `user`'s inbox (it reached a device).
    pub fn mark_delivered(&self, user: &str, id: u64) -> Result<Ticket, StoreError> {
        let i = &self.inner;
        let key = inbox_key(user, id);
        let (_, t) = i
            .flusher
            .write(|_w| Ok::<_, StoreError>(i.messages.inbox.remove(key)?))?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{open, TempDir};
    use super::*;

    fn msg(store: &Store, from: &str, to: &str, text: &str) -> Message {
        let m = Message {
            id: store.next_message_id().unwrap(),
            from: from.into(),
            to: to.into(),
            text: text.into(),
            client_id: None,
            sent_at: crate::store::now_rfc3339(),
            read_at: None,
        };
        let _ = store.add_message(&m).unwrap();
        m
    }

    #[test]
    fn conversations_page_and_inboxes_drain() {
        let dir = TempDir::new("messages");
        let store = open(&dir);
        let a1 = msg(&store, "a", "b", "1");
        let b2 = msg(&store, "b", "a", "2");
        let a3 = msg(&store, "a", "b", "3");
        let _other = msg(&store, "a", "c", "x");
        let (all, more) = store.messages_between("b", "a", None, 10).unwrap();
        assert_eq!(all, vec![a1.clone(), b2.clone(), a3.clone()]);
        assert!(!more);
        let (page, more) = store.messages_between("a", "b", None, 2).unwrap();
        assert_eq!(page, vec![b2.clone(), a3.clone()]);
        assert!(more);
        let (page, more) = store.messages_between("a", "b", Some(b2.id), 2).unwrap();
        assert_eq!(page, vec![a1.clone()]);
        assert!(!more);
        assert_eq!(store.undelivered("b", 10).unwrap(), vec![a1.clone(), a3]);
        let _ = store.mark_delivered("b", a1.id).unwrap();
        assert_eq!(store.undelivered("b", 10).unwrap().len(), 1);
        let (read, t) = store.mark_message_read(a1.id, "now").unwrap();
        assert_eq!(read.read_at.as_deref(), Some("now"));
        assert!(t.is_some());
        let (_, t) = store.mark_message_read(a1.id, "later").unwrap();
        assert!(t.is_none());
        assert_eq!(
            store.message(a1.id).unwrap().unwrap().read_at.as_deref(),
            Some("now")
        );
    }
}
