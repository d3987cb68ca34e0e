//! Containers that remember what was changed in them, so that persistence (`crate::store`) saves exactly the
//! rows a write touched, without anyone having to say so: every way to change their contents goes through a method
//! that records it. Reading is free (they dereference to the plain container).
//!
//! Marks are conservative: taking a mutable reference marks, whether or not anything is then changed. They cost
//! nothing without a data directory beyond a set insert, and the set is emptied by every save.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};

/// A value saved as a whole, marked changed by every mutable access.
#[derive(Debug, Default, Clone)]
pub struct Tracked<T> {
    value: T,
    changed: bool,
}

impl<T> Tracked<T> {
    /// The value, unchanged (as loaded, or as the value of a new partition).
    pub fn new(value: T) -> Tracked<T> {
        Tracked { value, changed: false }
    }

    /// Whether it changed since the last call, clearing the mark.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Whether it changed since the mark was last cleared.
    pub(crate) fn is_changed(&self) -> bool {
        self.changed
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.value
    }
}

/// A map saved row by row: it records the keys inserted, removed or borrowed mutably.
#[derive(Debug, Clone)]
pub struct TrackedMap<K, V> {
    map: BTreeMap<K, V>,
    changed: BTreeSet<K>,
}

impl<K, V> Default for TrackedMap<K, V> {
    fn default() -> Self {
        TrackedMap { map: BTreeMap::new(), changed: BTreeSet::new() }
    }
}

impl<K: Ord + Clone, V> TrackedMap<K, V> {
    /// The map, unchanged.
    pub fn new(map: BTreeMap<K, V>) -> TrackedMap<K, V> {
        TrackedMap { map, changed: BTreeSet::new() }
    }

    /// The value at `key`, to change it.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (stored, _) = self.map.get_key_value(key)?;
        // Marked once: a key already marked is not copied again.
        if !self.changed.contains(key) {
            self.changed.insert(stored.clone());
        }
        self.map.get_mut(key)
    }

    /// The value at `key`, to change it without marking it (for saving it, which changes only the marks inside).
    pub(crate) fn peek_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get_mut(key)
    }

    /// Inserts or replaces the value at `key`.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    /// Removes the value at `key`.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (key, value) = self.map.remove_entry(key)?;
        self.changed.insert(key);
        Some(value)
    }

    /// Every value, to change them (marks them all).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.changed.extend(self.map.keys().cloned());
        self.map.values_mut()
    }

    /// The keys changed since the last call (present or removed), clearing the marks.
    pub(crate) fn take_changed(&mut self) -> BTreeSet<K> {
        std::mem::take(&mut self.changed)
    }

    /// Whether any key changed since the marks were last cleared.
    pub(crate) fn is_changed(&self) -> bool {
        !self.changed.is_empty()
    }
}

impl<K, V> Deref for TrackedMap<K, V> {
    type Target = BTreeMap<K, V>;

    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<'a, K, V> IntoIterator for &'a TrackedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::collections::btree_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_to_change_a_map_is_recorded() {
        let mut map = TrackedMap::new(BTreeMap::from([(1, "a"), (2, "b"), (3, "c")]));
        assert!(!map.is_changed());
        let _ = map.get(&1);
        assert!(!map.is_changed(), "reading marks nothing");
        if let Some(v) = map.get_mut(&2) {
            *v = "B";
        }
        map.remove(&3);
        map.insert(4, "d");
        assert_eq!(map.get_mut(&9), None);
        assert_eq!(map.take_changed(), BTreeSet::from([2, 3, 4]));
        assert!(map.take_changed().is_empty());
        map.values_mut().for_each(|_| ());
        assert_eq!(map.take_changed(), BTreeSet::from([1, 2, 4]));
    }

    #[test]
    fn a_whole_value_records_a_change() {
        let mut whole = Tracked::new(5);
        assert!(!whole.take_changed());
        *whole += 1;
        assert!(whole.take_changed());
    }
}
