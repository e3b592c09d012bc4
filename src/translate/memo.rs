//! Results one translation keeps for the next: each with the keys it read, so
//! that the next translation reuses it unless one of them changed.

use foldhash::HashMap;
use std::sync::Arc;

use super::changes::{Changes, Dep};
use super::index::Index;

/// Values by key that the caller decides are still valid: taken from the last
/// translation, kept for the next. The two memos below are built on it.
pub struct Kept<K, V> {
    previous: HashMap<K, V>,
    next: HashMap<K, V>,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Kept {
            previous: HashMap::default(),
            next: HashMap::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V> Kept<K, V> {
    /// The value the last translation kept for `key`.
    pub fn take(&mut self, key: &K) -> Option<V> {
        self.previous.remove(key)
    }

    /// Keeps `value` for the next translation.
    pub fn keep(&mut self, key: K, value: V) {
        self.next.insert(key, value);
    }

    /// What this translation has kept for `key` so far.
    fn kept(&self, key: &K) -> Option<&V> {
        self.next.get(key)
    }

    /// Ends one translation: what it did not keep is dropped.
    pub fn finish(&mut self) {
        self.previous = std::mem::take(&mut self.next);
        self.next.reserve(self.previous.len());
    }
}

/// Derived results by key, each with what it depends on.
pub struct Derived<K, V>(Kept<K, (Arc<V>, Vec<Dep>)>);

impl<K, V> Default for Derived<K, V> {
    fn default() -> Self {
        Derived(Kept::default())
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Derived<K, V> {
    /// The result for `key`: the one kept from the last translation when none of
    /// its dependencies (`own`, the object it derives from, among them) is in
    /// `changes`, else `compute` run with the index's reads recorded.
    pub fn get(
        &mut self,
        key: &K,
        own: Dep,
        changes: &Changes,
        index: &Index<'_>,
        compute: impl FnOnce() -> V,
    ) -> Arc<V> {
        if let Some((value, _)) = self.0.kept(key) {
            return value.clone();
        }
        let kept = (self.0.take(key)).filter(|(_, deps)| !changes.touches(deps.iter()));
        let (value, deps) = match kept {
            Some(kept) => kept,
            None => {
                let (value, mut reads) = index.recording(compute);
                reads.insert(0, own);
                (Arc::new(value), reads)
            }
        };
        self.0.keep(key.clone(), (value.clone(), deps));
        value
    }

    /// Ends one translation: what it did not ask for is dropped.
    pub fn finish(&mut self) {
        self.0.finish();
    }
}

/// Status values by object, each with the status it was serialized from: an
/// equal status takes the value the last translation serialized.
pub struct Serialized<K, S>(Kept<K, (S, Arc<serde_json::Value>)>);

impl<K, S> Default for Serialized<K, S> {
    fn default() -> Self {
        Serialized(Kept::default())
    }
}

impl<K: std::hash::Hash + Eq, S: serde::Serialize + PartialEq> Serialized<K, S> {
    /// Keeps the value of `key` from the last translation as it is (when the
    /// caller knows its status is the same).
    pub fn keep(&mut self, key: &K)
    where
        K: Clone,
    {
        if let Some(kept) = self.0.take(key) {
            self.0.keep(key.clone(), kept);
        }
    }

    /// `status` as JSON.
    pub fn value(&mut self, key: K, status: S) -> Arc<serde_json::Value> {
        let value = match self.0.take(&key) {
            Some((kept, value)) if kept == status => value,
            _ => Arc::new(super::status_value(&status)),
        };
        self.0.keep(key, (status, value.clone()));
        value
    }

    /// Ends one translation: the statuses of objects it did not serialize are
    /// dropped.
    pub fn finish(&mut self) {
        self.0.finish();
    }
}
