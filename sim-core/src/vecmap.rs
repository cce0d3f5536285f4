//! Sorted-vector maps and sets for the small tables of a node: the same order as a
//! `BTreeMap` (so every decision that iterates them is unchanged), a few bytes an entry
//! instead of a B-tree node's worth, and look-ups by binary search over contiguous memory.
//! A simulated network holds a million of each, with a handful of entries in most.

/// Tables up to this many entries are searched linearly.
const LINEAR_MAX: usize = 32;

/// A map kept as a vector sorted by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map (allocates nothing).
    pub const fn new() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }

    fn find(&self, k: &K) -> Result<usize, usize> {
        if self.entries.len() > LINEAR_MAX {
            return self.entries.binary_search_by(|(key, _)| key.cmp(k));
        }
        // Small tables: count the smaller keys without a branch per key. Every key's load is
        // independent, so cache misses overlap, and nothing is mispredicted; a binary search
        // would wait for each probe before choosing the next.
        let i = self.entries.iter().filter(|(key, _)| key < k).count();
        match self.entries.get(i) {
            Some((key, _)) if key == k => Ok(i),
            _ => Err(i),
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Starts loading the table into the cache, as much as a linear search reads (a hint).
    pub fn prefetch(&self) {
        let n = self.entries.len().min(LINEAR_MAX);
        let step = (64 / std::mem::size_of::<(K, V)>().max(1)).max(1);
        for e in self.entries[..n].iter().step_by(step) {
            crate::prefetch::prefetch(e);
        }
        if let Some(last) = self.entries[..n].last() {
            crate::prefetch::prefetch(last);
        }
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k).ok().map(|i| &self.entries[i].1)
    }

    /// The value of `k`, to change.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self.find(k) {
            Ok(i) => Some(&mut self.entries[i].1),
            Err(_) => None,
        }
    }

    /// Whether `k` is there.
    pub fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_ok()
    }

    /// Sets `k` to `v`; the value it replaces, if any.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            Err(i) => {
                self.grow_for_one();
                self.entries.insert(i, (k, v));
                None
            }
        }
    }

    /// Removes `k`; its value, if it was there.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.find(k).ok()?;
        let v = self.entries.remove(i).1;
        self.shrink();
        Some(v)
    }

    /// Where `k` is in the key order: `Ok` with its index if there, else `Err` with the index
    /// it would take (so either is the first entry not below `k`).
    pub fn position(&self, k: &K) -> Result<usize, usize> {
        self.find(k)
    }

    /// The entry at index `i` of the key order.
    pub fn get_index(&self, i: usize) -> Option<(&K, &V)> {
        self.entries.get(i).map(|(k, v)| (k, v))
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in key order, values to change.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.shrink();
    }

    /// Room for one more: tables grow by two entries, and past 32 by an eighth, not by
    /// doubling, so that a million tables hold little unused room (a peer's ~11 connections
    /// took 16 slots when doubling).
    fn grow_for_one(&mut self) {
        let (len, cap) = (self.entries.len(), self.entries.capacity());
        if len == cap {
            self.entries
                .reserve_exact(if len < 32 { 2 } else { len / 8 });
        }
    }
}

/// Room for one more in a vector that may grow to millions of entries (a simulator's slabs
/// and queues): by doubling while small, and past 4 096 entries by an eighth, so that its
/// unused room is at most an eighth instead of up to half. Large blocks are grown in place
/// by the allocator (`mremap`), so growing often costs little.
pub fn reserve_for_one<T>(v: &mut Vec<T>) {
    let (len, cap) = (v.len(), v.capacity());
    if len == cap {
        v.reserve_exact(if len < 4096 { len.max(4) } else { len / 8 });
    }
}

impl<K, V> VecMap<K, V> {
    /// Sets each `(k, v)` of `items` in turn (a later value for a key replaces an earlier
    /// one), as that many [`VecMap::insert`]s would, in one merge: O(n + m log m), not
    /// O(n m).
    pub fn extend_in_turn(&mut self, mut items: Vec<(K, V)>)
    where
        K: Ord,
    {
        if items.is_empty() {
            return;
        }
        // Stable: for equal keys the later item stays later; keep the last of each run.
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last: Vec<(K, V)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            match last.last_mut() {
                Some(l) if l.0 == k => l.1 = v,
                _ => last.push((k, v)),
            }
        }
        let old = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity(old.len() + last.len());
        let mut new = last.into_iter().peekable();
        for (k, v) in old {
            while new.peek().is_some_and(|n| n.0 < k) {
                merged.extend(new.next());
            }
            match new.peek() {
                Some(n) if n.0 == k => merged.extend(new.next()),
                _ => merged.push((k, v)),
            }
        }
        merged.extend(new);
        self.entries = merged;
    }

    /// Gives back memory a table that shrank a lot no longer needs, and all of it once
    /// empty (most of a million peers' handshake tables are empty most of the time).
    fn shrink(&mut self) {
        if self.entries.is_empty() {
            self.entries = Vec::new();
        } else if self.entries.capacity() > 8 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    /// Gives back all spare memory.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }
}

/// A set kept as a sorted vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecSet<K> {
    map: VecMap<K, ()>,
}

impl<K> Default for VecSet<K> {
    fn default() -> Self {
        VecSet {
            map: VecMap::default(),
        }
    }
}

impl<K: Ord> VecSet<K> {
    /// An empty set.
    pub const fn new() -> Self {
        VecSet { map: VecMap::new() }
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `k` is a member.
    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Adds `k`; false if it was a member already.
    pub fn insert(&mut self, k: K) -> bool {
        self.map.insert(k, ()).is_none()
    }

    /// Removes `k`; false if it was not a member.
    pub fn remove(&mut self, k: &K) -> bool {
        self.map.remove(k).is_some()
    }

    /// Members in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.map.keys()
    }

    /// Where `k` is in the order: `Ok` with its index if a member, else `Err` with the
    /// index it would take.
    pub fn position(&self, k: &K) -> Result<usize, usize> {
        self.map.position(k)
    }

    /// The member at index `i` of the order.
    pub fn get_index(&self, i: usize) -> Option<&K> {
        self.map.get_index(i).map(|(k, _)| k)
    }

    /// Gives back all spare memory.
    pub fn shrink_to_fit(&mut self) {
        self.map.shrink_to_fit();
    }

    /// Adds every member of `sorted` (increasing, none a member yet) in one merge.
    pub fn extend_sorted(&mut self, sorted: Vec<K>) {
        let items = sorted.into_iter().map(|k| (k, ())).collect();
        self.map.extend_in_turn(items);
    }

    /// The set of `sorted`, which must be strictly increasing (entries out of order or
    /// repeated are left out).
    pub fn from_sorted(sorted: impl IntoIterator<Item = K>) -> Self {
        let mut entries: Vec<(K, ())> = Vec::new();
        for k in sorted {
            if entries.last().is_none_or(|(last, _)| *last < k) {
                entries.push((k, ()));
            }
        }
        VecSet {
            map: VecMap { entries },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A batch set in one merge leaves what the same inserts one by one leave.
        #[test]
        fn extend_in_turn_is_inserts_in_turn(
            before in prop::collection::vec((0u16..60, any::<u32>()), 0..40),
            batch in prop::collection::vec((0u16..60, any::<u32>()), 0..80)
        ) {
            let mut one_by_one = VecMap::new();
            let mut merged = VecMap::new();
            for &(k, v) in &before {
                one_by_one.insert(k, v);
                merged.insert(k, v);
            }
            for &(k, v) in &batch {
                one_by_one.insert(k, v);
            }
            merged.extend_in_turn(batch);
            prop_assert_eq!(one_by_one, merged);
        }

        /// Any sequence of operations leaves the same entries, in the same order, as a
        /// `BTreeMap` given the same operations.
        #[test]
        fn a_vec_map_behaves_like_a_btree_map(ops in prop::collection::vec((0u8..4, 0u16..40, any::<u32>()), 0..300)) {
            let mut m = VecMap::new();
            let mut b = BTreeMap::new();
            for (op, k, v) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(m.insert(k, v), b.insert(k, v)),
                    2 => prop_assert_eq!(m.remove(&k), b.remove(&k)),
                    _ => {
                        m.retain(|key, _| key % 7 != u16::try_from(v % 7).unwrap_or(0));
                        b.retain(|key, _| key % 7 != u16::try_from(v % 7).unwrap_or(0));
                    }
                }
                prop_assert_eq!(m.get(&k), b.get(&k));
                prop_assert_eq!(m.len(), b.len());
            }
            let got: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
            let want: Vec<_> = b.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
