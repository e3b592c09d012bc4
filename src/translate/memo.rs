//! Results one translation keeps for the next, which reuses them where its
//! changes touch nothing they were made from.

use foldhash::HashMap;

/// Values by key that the caller decides are still valid: taken from the last
/// translation, kept for the next.
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

    /// Ends one translation: what it did not keep is dropped.
    pub fn finish(&mut self) {
        self.previous = std::mem::take(&mut self.next);
        self.next.reserve(self.previous.len());
    }
}

/// The entries the last translation kept for a sorted input list, in its order:
/// walked beside the next input, each key finds its entry by a merge-join rather
/// than by hashing, and entries of keys the input no longer holds are skipped.
pub struct InOrder<E>(std::iter::Peekable<std::vec::IntoIter<E>>);

impl<E> InOrder<E> {
    pub fn new(entries: Vec<E>) -> Self {
        InOrder(entries.into_iter().peekable())
    }

    /// The entry of one key, when the last translation kept one: `compare`
    /// orders an entry's key against it. Keys must be asked for in ascending
    /// order (an input out of order only finds fewer entries: nothing is reused
    /// under another key).
    pub fn take(&mut self, compare: impl Fn(&E) -> std::cmp::Ordering) -> Option<E> {
        while self.0.peek().is_some_and(|entry| compare(entry).is_lt()) {
            self.0.next();
        }
        self.0.next_if(|entry| compare(entry).is_eq())
    }
}

#[cfg(test)]
mod tests {
    use super::InOrder;

    fn take(kept: &mut InOrder<(&'static str, u32)>, key: &str) -> Option<u32> {
        kept.take(|(k, _)| (*k).cmp(key)).map(|(_, value)| value)
    }

    #[test]
    fn finds_kept_keys_in_order_and_skips_those_gone() {
        let mut kept = InOrder::new(vec![("a", 1), ("b", 2), ("d", 4), ("e", 5)]);
        assert_eq!(take(&mut kept, "a"), Some(1));
        // "b" is gone from the input; "c" is new.
        assert_eq!(take(&mut kept, "c"), None);
        assert_eq!(take(&mut kept, "d"), Some(4));
        assert_eq!(take(&mut kept, "f"), None);
        assert_eq!(take(&mut kept, "g"), None);
    }

    #[test]
    fn keys_out_of_order_find_less_but_never_another_keys_entry() {
        let mut kept = InOrder::new(vec![("a", 1), ("b", 2), ("c", 3)]);
        assert_eq!(take(&mut kept, "b"), Some(2));
        assert_eq!(take(&mut kept, "a"), None);
        assert_eq!(take(&mut kept, "c"), Some(3));
    }
}
