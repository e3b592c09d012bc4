//! Results one translation keeps for the next: each with the keys it read, so
//! that the next translation reuses it unless one of them changed.

use std::collections::HashMap;
use std::sync::Arc;

use super::changes::{Changes, Dep};
use super::index::Index;

/// Derived results by key, each with what it depends on.
pub struct Derived<K, V> {
    previous: HashMap<K, (Arc<V>, Vec<Dep>)>,
    next: HashMap<K, (Arc<V>, Vec<Dep>)>,
}

impl<K, V> Default for Derived<K, V> {
    fn default() -> Self {
        Derived {
            previous: HashMap::new(),
            next: HashMap::new(),
        }
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
        if let Some((value, _)) = self.next.get(key) {
            return value.clone();
        }
        let kept = (self.previous.remove(key)).filter(|(_, deps)| !changes.touches(deps.iter()));
        let (value, deps) = match kept {
            Some(kept) => kept,
            None => {
                let (value, mut reads) = index.recording(compute);
                reads.insert(0, own);
                (Arc::new(value), reads)
            }
        };
        self.next.insert(key.clone(), (value.clone(), deps));
        value
    }

    /// Ends one translation: what it did not ask for is dropped.
    pub fn finish(&mut self) {
        self.previous = std::mem::take(&mut self.next);
    }
}
