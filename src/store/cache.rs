//! Decoded values by key, for the records read on every request (sessions
//! and courses), so that a hot read is a hash lookup and an `Arc` clone
//! instead of a sled read and a JSON decode.
//!
//! The cache is filled on read and dropped per key when the key is written.
//! A generation number, bumped by every invalidation, keeps a reader from
//! caching a value that a write replaced while it was reading. It knows
//! nothing of where values come from: the caller passes the loader.
//!
//! Lock: `map` is a leaf lock, never held while loading or while taking
//! another lock; a writer invalidates after its change, under the store's
//! write lock.

use std::collections::HashMap;
use std::sync::Arc;

use super::error::StoreError;

/// Decoded values of one tree by key (see the module docs).
pub(super) struct Cache<T> {
    /// The generation and the cached values.
    map: parking_lot::RwLock<(u64, HashMap<String, Arc<T>>)>,
}

impl<T> Cache<T> {
    /// An empty cache.
    pub(super) fn new() -> Cache<T> {
        Cache {
            map: parking_lot::RwLock::new((0, HashMap::new())),
        }
    }

    /// The value of `id`, from the cache when there, else from `load`.
    pub(super) fn get(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Option<T>, StoreError>,
    ) -> Result<Option<Arc<T>>, StoreError> {
        let generation = {
            let m = self.map.read();
            if let Some(v) = m.1.get(id) {
                return Ok(Some(v.clone()));
            }
            m.0
        };
        let Some(v) = load()? else {
            return Ok(None);
        };
        let v = Arc::new(v);
        let mut m = self.map.write();
        if m.0 == generation {
            m.1.insert(id.to_string(), v.clone());
        }
        Ok(Some(v))
    }

    /// Forgets `id`; call after writing it.
    pub(super) fn invalidate(&self, id: &str) {
        let mut m = self.map.write();
        m.0 += 1;
        m.1.remove(id);
    }
}
