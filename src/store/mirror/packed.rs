//! One mirrored tree in memory: the bulk of its entries packed, sorted, into a
//! single buffer (a few bytes of overhead per entry), plus a persistent map of
//! the changes since it was packed. Readers share both through `Arc`s; a
//! commit adds to the changes, and once they grow past a fraction of the
//! packed entries they are merged into a new packed buffer.

use imbl::OrdMap;
use sled::IVec;
use std::sync::Arc;

/// A write: a value, or `None` for a removal.
pub(in crate::store) type Change = Option<IVec>;

/// Changes kept apart before a merge, at least; more for larger trees.
const MIN_CHANGES_BEFORE_MERGE: usize = 1024;

/// Sorted entries in one buffer: entry `i` is its key followed by its value.
#[derive(Default)]
struct Packed {
    bytes: Vec<u8>,
    /// Where each entry's key and value start in `bytes`.
    starts: Vec<(usize, usize)>,
}

impl Packed {
    /// Packs `entries` (in key order) into buffers of exactly `count` entries
    /// and `bytes` bytes when those are known, so nothing is copied twice.
    fn from_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        entries: impl Iterator<Item = (K, V)>,
        count: usize,
        bytes: usize,
    ) -> Self {
        let mut packed = Self {
            bytes: Vec::with_capacity(bytes),
            starts: Vec::with_capacity(count),
        };
        for (key, value) in entries {
            packed.push(key.as_ref(), value.as_ref());
        }
        packed.bytes.shrink_to_fit();
        packed.starts.shrink_to_fit();
        packed
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        let key_start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.starts.push((key_start, self.bytes.len()));
        self.bytes.extend_from_slice(value);
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn end(&self, index: usize) -> usize {
        self.starts
            .get(index + 1)
            .map_or(self.bytes.len(), |(key, _)| *key)
    }

    fn key(&self, index: usize) -> &[u8] {
        let (key, value) = self.starts[index];
        &self.bytes[key..value]
    }

    fn value(&self, index: usize) -> &[u8] {
        &self.bytes[self.starts[index].1..self.end(index)]
    }

    /// The index of `key`, or where it would go.
    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let mut low = 0;
        let mut high = self.len();
        while low < high {
            let middle = low + (high - low) / 2;
            match self.key(middle).cmp(key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }
}

#[derive(Clone, Default)]
pub(in crate::store) struct PackedTree {
    packed: Arc<Packed>,
    changes: OrdMap<IVec, Change>,
}

impl PackedTree {
    /// A tree from entries in key order.
    /// A tree from `count` entries of `bytes` bytes in all, in key order.
    pub(in crate::store) fn from_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        entries: impl Iterator<Item = (K, V)>,
        count: usize,
        bytes: usize,
    ) -> Self {
        Self {
            packed: Arc::new(Packed::from_sorted(entries, count, bytes)),
            changes: OrdMap::new(),
        }
    }

    pub(in crate::store) fn get(&self, key: &[u8]) -> Option<IVec> {
        match self.changes.get(key) {
            Some(change) => change.clone(),
            None => self
                .packed
                .find(key)
                .ok()
                .map(|index| IVec::from(self.packed.value(index))),
        }
    }

    /// The entries from `start` on, in key order, the changes laid over the
    /// packed entries (removals left out), borrowed from the tree.
    fn entries_from<'a>(&'a self, start: &[u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut packed = self.packed.find(start).unwrap_or_else(|at| at);
        let mut changes = self
            .changes
            .range::<_, [u8]>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .peekable();
        std::iter::from_fn(move || {
            loop {
                let from_packed = (packed < self.packed.len()).then(|| self.packed.key(packed));
                let changed = changes.peek().map(|(key, _)| key.as_ref());
                match (from_packed, changed) {
                    (None, None) => return None,
                    (Some(key), Some(changed)) if changed > key => {}
                    (Some(_), None) => {}
                    (from_packed, Some(changed)) => {
                        if from_packed == Some(changed) {
                            packed += 1;
                        }
                        let (key, change) = changes.next()?;
                        match change {
                            Some(value) => return Some((key.as_ref(), value.as_ref())),
                            None => continue,
                        }
                    }
                }
                let entry = (self.packed.key(packed), self.packed.value(packed));
                packed += 1;
                return Some(entry);
            }
        })
    }

    /// Up to `limit` entries from `start` on while their keys start with `prefix`.
    pub(in crate::store) fn range(
        &self,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Vec<(IVec, IVec)> {
        self.entries_from(start)
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (IVec::from(key), IVec::from(value)))
            .collect()
    }

    pub(in crate::store) fn apply(&mut self, key: &[u8], change: &Change) {
        self.changes.insert(IVec::from(key), change.clone());
        if self.changes.len() > MIN_CHANGES_BEFORE_MERGE.max(self.packed.len() / 8) {
            self.merge();
        }
    }

    /// Folds the changes into a new packed buffer.
    fn merge(&mut self) {
        let (count, bytes) = self.size();
        let merged = Packed::from_sorted(self.entries_from(&[]), count, bytes);
        self.packed = Arc::new(merged);
        self.changes = OrdMap::new();
    }

    /// How many entries and bytes (keys and values) the tree holds.
    pub(in crate::store) fn size(&self) -> (usize, usize) {
        let changed: usize = self
            .changes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum();
        (
            self.packed.len() + self.changes.len(),
            self.packed.bytes.len() + changed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The packed tree answers exactly like a plain sorted map, through
    /// inserts, overwrites, removals and merges.
    #[test]
    fn behaves_like_a_sorted_map() {
        let initial: BTreeMap<Vec<u8>, Vec<u8>> = (0u32..500)
            .map(|n| ((n * 2).to_be_bytes().to_vec(), format!("v{n}").into_bytes()))
            .collect();
        let mut tree = PackedTree::from_sorted(initial.iter(), 0, 0);
        let mut model = initial;
        let mut seed = 7u64;
        for round in 0..5000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = ((seed >> 33) as u32 % 1200).to_be_bytes().to_vec();
            if seed % 3 == 0 {
                model.remove(&key);
                tree.apply(&key, &None);
            } else {
                let value = format!("r{round}").into_bytes();
                model.insert(key.clone(), value.clone());
                tree.apply(&key, &Some(IVec::from(value)));
            }
            if round % 500 == 0 {
                let all = tree.range(&[], &[], usize::MAX);
                let expected: Vec<(Vec<u8>, Vec<u8>)> =
                    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let got: Vec<(Vec<u8>, Vec<u8>)> =
                    all.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                assert_eq!(got, expected, "round {round}");
            }
            assert_eq!(tree.get(&key).map(|v| v.to_vec()), model.get(&key).cloned());
        }
        let start = 300u32.to_be_bytes();
        let got: Vec<Vec<u8>> = tree
            .range(&start, &[0, 0], 5)
            .iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        let expected: Vec<Vec<u8>> = model
            .range(start.to_vec()..)
            .filter(|(k, _)| k.starts_with(&[0, 0]))
            .take(5)
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(got, expected);
    }
}
