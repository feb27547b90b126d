//! What can go wrong in the store: one typed error for callers
//! ([`StoreError`]) and the cause of a failed group flush ([`FlushError`]),
//! shared by every waiter that flush was meant to cover.

use std::sync::Arc;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode.
    #[error("corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The thing exists already.
    #[error("{0} already exists")]
    Exists(&'static str),
    /// The change does not fit the current state (e.g. session not active).
    #[error("{0}")]
    Conflict(&'static str),
    /// The session has ended.
    #[error("session is not active")]
    SessionNotActive,
    /// The data directory was written by a newer version.
    #[error("unsupported schema version {0}")]
    Schema(u64),
    /// The flush that was to make a write durable failed.
    #[error("flush failed: {0}")]
    Flush(Arc<FlushError>),
    /// The store's flusher has stopped (the store is being closed).
    #[error("store closed")]
    Closed,
}

/// Why a group flush failed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// sled could not write its log.
    #[error("sled flush: {0}")]
    Sled(sled::Error),
    /// `fdatasync` of the data file failed.
    #[error("fdatasync: {0}")]
    Sync(std::io::Error),
}
