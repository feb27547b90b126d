//! How values sit in sled: JSON-encoded serde values under string keys,
//! composite keys joined by `\0`, and [`Table`], the typed access to one
//! tree (get, list, create, insert and update of a `T` by key) that every
//! concern uses instead of its own copy of the same decode loops.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::error::StoreError;

/// What a sled transaction closure returns.
pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// A value as stored.
pub(super) fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A stored value, decoded.
pub(super) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(b)?)
}

/// Aborts a transaction with `e`.
pub(super) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// The error of a failed transaction.
pub(super) fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// The key `a \0 b` (a record of a session, an active session of a course).
pub(super) fn pair_key(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1 + b.len());
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// The prefix `a \0` of every [`pair_key`] starting with `a`.
pub(super) fn pair_prefix(a: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k
}

/// Inside a transaction: the value of `key`, which must exist
/// (`NotFound(what)` otherwise).
pub(super) fn tx_existing<T: DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
    what: &'static str,
) -> TxResult<T> {
    let Some(v) = tree.get(key)? else {
        return abort(StoreError::NotFound(what));
    };
    dec(&v).or_else(abort)
}

/// One sled tree of JSON-encoded `T`s.
pub(super) struct Table<T> {
    tree: sled::Tree,
    /// What a `T` is called in `NotFound` and `Exists` errors.
    what: &'static str,
    _values: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Table<T> {
    /// Opens (or creates) tree `name` of `db`.
    pub(super) fn open(db: &sled::Db, name: &str, what: &'static str) -> Result<Self, StoreError> {
        Ok(Table {
            tree: db.open_tree(name)?,
            what,
            _values: PhantomData,
        })
    }

    /// The tree, for transactions and batches spanning several trees.
    pub(super) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<T>, StoreError> {
        self.tree.get(key)?.map(|v| dec(&v)).transpose()
    }

    /// Whether `key` has a value.
    pub(super) fn contains(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Every value, in key order.
    pub(super) fn all(&self) -> Result<Vec<T>, StoreError> {
        Self::decode_all(self.tree.iter())
    }

    /// The values whose keys start with `prefix`, in key order.
    pub(super) fn with_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<Vec<T>, StoreError> {
        Self::decode_all(self.tree.scan_prefix(prefix))
    }

    fn decode_all(iter: sled::Iter) -> Result<Vec<T>, StoreError> {
        iter.map(|r| r.map_err(StoreError::from).and_then(|(_, v)| dec(&v)))
            .collect()
    }

    /// Stores `value` under `key` (a plain insert: no transaction).
    pub(super) fn insert(&self, key: impl AsRef<[u8]>, value: &T) -> Result<(), StoreError> {
        self.tree.insert(key, enc(value))?;
        Ok(())
    }

    /// Stores `value` under `key`, which must be new (`Exists(what)` otherwise).
    pub(super) fn create(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.tree
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(enc(value)))?
            .map_err(|_| StoreError::Exists(self.what))
    }

    /// Changes the value of `key` in place, in a sled transaction
    /// (`NotFound(what)` when there is none); returns the new value.
    pub(super) fn update(&self, key: &str, f: impl Fn(&mut T)) -> Result<T, StoreError> {
        self.tree
            .transaction(|tree| {
                let mut v: T = tx_existing(tree, key.as_bytes(), self.what)?;
                f(&mut v);
                tree.insert(key.as_bytes(), enc(&v))?;
                Ok(v)
            })
            .map_err(tx_err)
    }
}
