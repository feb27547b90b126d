//! The lock-sharded room registry of a namespace.
//!
//! Rooms are spread over shards by the hash of their name; each shard has its
//! own `parking_lot` lock, so joins, leaves and lookups on different rooms
//! never contend on one lock. A broadcast reads a room's members as an
//! immutable snapshot (`Arc<[Arc<Socket>]>`), built once after each change and
//! shared by every broadcast until the next change, so no lock is held while
//! the packet is queued on the members.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::RwLock;

/// A room name.
pub type Room = Arc<str>;

/// A read-only view of a room's members at one moment.
pub type Members<T> = Arc<[T]>;

struct RoomEntry<T> {
    members: HashMap<Arc<str>, T>,
    snapshot: Option<Members<T>>,
}

impl<T> Default for RoomEntry<T> {
    fn default() -> Self {
        RoomEntry {
            members: HashMap::new(),
            snapshot: None,
        }
    }
}

type Shard<T> = RwLock<HashMap<Room, RoomEntry<T>>>;

/// Room name -> members (keyed by member id), sharded by the room name's hash.
pub struct RoomRegistry<T> {
    shards: Box<[Shard<T>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl<T: Clone> Default for RoomRegistry<T> {
    fn default() -> Self {
        RoomRegistry::new(64)
    }
}

impl<T: Clone> RoomRegistry<T> {
    /// A registry with `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> RoomRegistry<T> {
        let n = shards.max(1).next_power_of_two();
        RoomRegistry {
            shards: (0..n).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, room: &str) -> &Shard<T> {
        let h = self.hasher.hash_one(room) as usize;
        &self.shards[h & (self.shards.len() - 1)]
    }

    /// Adds member `id` to `room`; returns false if it was already a member.
    pub fn join(&self, room: &Room, id: &Arc<str>, member: T) -> bool {
        let mut shard = self.shard(room).write();
        let entry = shard.entry(room.clone()).or_default();
        let added = entry.members.insert(id.clone(), member).is_none();
        if added {
            entry.snapshot = None;
        }
        added
    }

    /// Removes the socket `id` from `room`; an emptied room is dropped.
    pub fn leave(&self, room: &str, id: &str) -> bool {
        let mut shard = self.shard(room).write();
        let Some(entry) = shard.get_mut(room) else {
            return false;
        };
        let removed = entry.members.remove(id).is_some();
        if removed {
            entry.snapshot = None;
            if entry.members.is_empty() {
                shard.remove(room);
            }
        }
        removed
    }

    /// The members of `room` (empty when it does not exist).
    pub fn members(&self, room: &str) -> Option<Members<T>> {
        let shard = self.shard(room);
        {
            let g = shard.read();
            let entry = g.get(room)?;
            if let Some(s) = &entry.snapshot {
                return Some(s.clone());
            }
        }
        let mut g = shard.write();
        let entry = g.get_mut(room)?;
        let snap: Members<T> = entry.members.values().cloned().collect();
        entry.snapshot = Some(snap.clone());
        Some(snap)
    }

    /// Whether socket `id` is in `room`.
    pub fn contains(&self, room: &str, id: &str) -> bool {
        self.shard(room)
            .read()
            .get(room)
            .is_some_and(|e| e.members.contains_key(id))
    }

    /// Number of members of `room`.
    pub fn len(&self, room: &str) -> usize {
        self.shard(room)
            .read()
            .get(room)
            .map_or(0, |e| e.members.len())
    }

    /// Number of rooms.
    pub fn room_count(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// The names of every room (not a snapshot across shards).
    pub fn room_names(&self) -> Vec<Room> {
        let mut v = Vec::new();
        for s in self.shards.iter() {
            v.extend(s.read().keys().cloned());
        }
        v
    }
}
