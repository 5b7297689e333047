//! A tiny copy-on-write map from a request outcome to its cached metric handles, read
//! lock-free on every request and written only when an outcome is first seen.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Outcomes whose handles are cached per edge; rarer ones are still recorded, through
/// the family map.
const MAX_CACHED_OUTCOMES: usize = 64;

/// Small copy-on-write map from outcome to cached series. Readers load an `Arc` and
/// scan a few entries; writers (first sighting of an outcome) take a mutex and publish
/// a new list.
pub(super) struct OutcomeCache<K, V> {
    entries: ArcSwap<Vec<(K, V)>>,
    insert: Mutex<()>,
}

impl<K: Copy + PartialEq, V: Clone> OutcomeCache<K, V> {
    pub(super) fn new() -> Self {
        OutcomeCache {
            entries: ArcSwap::from_pointee(Vec::new()),
            insert: Mutex::new(()),
        }
    }

    #[inline]
    pub(super) fn with<R>(
        &self,
        key: K,
        make: impl FnOnce() -> V,
        use_it: impl FnOnce(&V) -> R,
    ) -> R {
        {
            let entries = self.entries.load();
            if let Some((_, v)) = entries.iter().find(|(k, _)| *k == key) {
                return use_it(v);
            }
        }
        self.with_slow(key, make, use_it)
    }

    #[cold]
    fn with_slow<R>(&self, key: K, make: impl FnOnce() -> V, use_it: impl FnOnce(&V) -> R) -> R {
        // A poisoned lock only means another recorder panicked mid-insert; the list it
        // guards is replaced atomically, so it is still consistent.
        let _guard = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.entries.load_full();
        if let Some((_, v)) = current.iter().find(|(k, _)| *k == key) {
            return use_it(v);
        }
        let value = make();
        if current.len() < MAX_CACHED_OUTCOMES {
            let mut next = Vec::with_capacity(current.len() + 1);
            next.extend(current.iter().cloned());
            next.push((key, value.clone()));
            self.entries.store(Arc::new(next));
        }
        use_it(&value)
    }
}
