//! The cap on sockets per user on `/`: a CONNECT beyond it is refused with
//! `too_many_connections`. A slot is taken in the authentication middleware
//! (before the socket exists for anyone else, so concurrent CONNECTs cannot
//! overshoot) and held by a [`SocketSlot`] in the socket's data: it is given
//! back when the socket disconnects (the disconnect handler drops it) or,
//! for a socket that never finished connecting, when the socket is freed.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Connected sockets per user (clones share the counts).
#[derive(Clone)]
pub(crate) struct SocketCap {
    max: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One socket's place in its user's count; dropping it gives it back.
pub(crate) struct SocketSlot {
    user: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl SocketCap {
    /// At most `max` sockets per user (0: no cap).
    pub(crate) fn new(max: usize) -> SocketCap {
        SocketCap {
            max,
            counts: Arc::default(),
        }
    }

    /// The cap (0: none).
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more socket of `user`, or `None` at the cap.
    pub(crate) fn take(&self, user: &str) -> Option<SocketSlot> {
        let mut counts = self.counts.lock();
        let n = counts.entry(user.to_string()).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            user: user.to_string(),
            counts: self.counts.clone(),
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(n) = counts.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let cap = SocketCap::new(2);
        let a = cap.take("u").unwrap();
        let _b = cap.take("u").unwrap();
        assert!(cap.take("u").is_none());
        assert!(cap.take("v").is_some());
        drop(a);
        assert!(cap.take("u").is_some());
        assert!(SocketCap::new(0).take("u").is_some());
    }
}
