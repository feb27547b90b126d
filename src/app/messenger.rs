//! The `/messenger` namespace (seed 004): direct messages between users who
//! share a course (or with an admin), typing indicators, read receipts and
//! history; SPEC.md §4.22. The events are `events::messenger`'s table,
//! handled by the same per-socket pipeline as `/` (so a message is durable
//! before anyone sees it or its ack).
//!
//! **Delivery, once.** A message is written to the recipient's inbox with
//! the message itself. After the write is durable, the live path sends
//! `newMessage` to the recipient's room; if any device got it, the inbox
//! entry is removed. A device that connects takes the inbox entries and
//! gets each as `newMessage`. The two paths are serialized per recipient
//! (a striped lock), and a message whose live path has not run yet is
//! *pending* (noted before it is written) and left to the live path, which
//! reaches the new device through the room it joined: so every message
//! reaches a device of the recipient once, whether it was online or not.
//! (A crash between the delivery and the removal of the inbox entry makes
//! it be delivered again on the next connection.)
//!
//! Locks: a stripe is taken first, then (inside) the pending set (a leaf),
//! the adapter's room locks through join/emit, and the store's write lock
//! through the inbox removal. Nothing takes a stripe while holding any of
//! those.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};

use super::auth::TokenKeys;
use super::devices::user_room;
use super::events::{message_json, MESSENGER_EVENTS};
use super::App;
use crate::socketio::{Namespace, NamespaceSetup, Payload, Socket, SocketIo};
use crate::store::{Message, Store, User};

/// Undelivered messages handed to a device on connection, at most (the
/// rest stay in the inbox for the next one, and in the history).
pub(crate) const MAX_REPLAY: usize = 500;

/// Stripes of the per-recipient delivery lock.
const STRIPES: usize = 64;

/// Creates the namespace; its connections go to the application in `app`.
pub(crate) fn namespace(
    io: &SocketIo,
    app: Arc<OnceLock<Arc<App>>>,
    store: &Store,
    keys: &TokenKeys,
    stats: &Arc<super::AppStats>,
) -> Arc<Namespace> {
    let (store, keys, stats) = (store.clone(), keys.clone(), stats.clone());
    let setup = NamespaceSetup::new(move |socket| {
        if let Some(app) = app.get() {
            on_connection(app, socket);
        }
    })
    .middleware(move |socket| {
        let result = super::authenticate(&store, &keys, &stats, &socket, false);
        async move { result }
    });
    io.ns_with("/messenger", setup)
}

fn on_connection(app: &Arc<App>, socket: Arc<Socket>) {
    let Some(user) = socket.data().get::<Arc<User>>() else {
        socket.disconnect();
        return;
    };
    let (ctx, _) = app.attach_pipeline(&socket, MESSENGER_EVENTS);
    // Unknown events take rate-limit tokens here too (SPEC.md §4.24).
    let limits = (app.config.rate_per_sec, app.config.rate_burst);
    socket.on_any(move |s, _event, _payload, ack| {
        super::abuse::unknown_event(&ctx, limits, s, ack, super::events::MESSAGE_ERROR);
    });
    app.platform_b
        .delivery
        .connect(&app.store, &socket, &user.id);
}

/// Who is being delivered what (see the module docs).
pub(crate) struct Delivery {
    stripes: Box<[Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Ids of messages whose live delivery has not run yet.
    pending: Mutex<HashSet<u64>>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: Default::default(),
            pending: Mutex::new(HashSet::new()),
        }
    }
}

/// A message noted as pending; dropping it un-notes it (also when the
/// request fails before its delivery runs).
pub(crate) struct PendingGuard {
    delivery: Arc<Delivery>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.delivery.pending.lock().remove(&self.id);
    }
}

impl Delivery {
    fn stripe(&self, user: &str) -> MutexGuard<'_, ()> {
        let h = self.hasher.hash_one(user) as usize;
        self.stripes[h % self.stripes.len()].lock()
    }

    /// Notes message `id` as pending, before it is written.
    pub(crate) fn begin(self: &Arc<Self>, id: u64) -> PendingGuard {
        self.pending.lock().insert(id);
        PendingGuard {
            delivery: self.clone(),
            id,
        }
    }

    /// The live path: `newMessage` to the recipient's devices (the message
    /// is durable); takes it out of the inbox when a device got it.
    pub(crate) fn deliver(
        &self,
        ns: &Arc<Namespace>,
        store: &Store,
        guard: PendingGuard,
        m: &Message,
    ) {
        let _stripe = self.stripe(&m.to);
        drop(guard);
        let n = ns
            .to(&user_room(&m.to))
            .emit("newMessage", &Payload::one(message_json(m)));
        if n > 0 {
            if let Err(e) = store.mark_delivered(&m.to, m.id) {
                tracing::warn!(error = %e, "cannot clear a delivered message from the inbox");
            }
        }
    }

    /// A device connects: it joins its user's room, and gets the messages
    /// no device of the user has had yet (those not pending).
    pub(crate) fn connect(&self, store: &Store, socket: &Arc<Socket>, user: &str) {
        let _stripe = self.stripe(user);
        socket.join(&user_room(user));
        let waiting = match store.undelivered(user, MAX_REPLAY) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot read an inbox");
                return;
            }
        };
        for m in waiting {
            if self.pending.lock().contains(&m.id) {
                continue;
            }
            if socket
                .emit("newMessage", &Payload::one(message_json(&m)))
                .is_err()
            {
                return;
            }
            if let Err(e) = store.mark_delivered(user, m.id) {
                tracing::warn!(error = %e, "cannot clear a delivered message from the inbox");
            }
        }
    }
}

/// Whether `a` may message `b`: either is an admin, or they share a course
/// (as its teachers or students).
pub(crate) fn may_message(
    store: &Store,
    a: &User,
    b: &User,
) -> Result<bool, crate::store::StoreError> {
    use crate::store::Role;
    if a.role == Role::Admin || b.role == Role::Admin {
        return Ok(true);
    }
    let member = |c: &crate::store::Course, id: &str| {
        c.teachers.iter().any(|t| t == id) || c.students.iter().any(|s| s == id)
    };
    Ok(store
        .courses()?
        .iter()
        .any(|c| member(c, &a.id) && member(c, &b.id)))
}
