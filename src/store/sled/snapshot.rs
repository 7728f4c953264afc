//! The committed state of every mirrored tree, held in memory as persistent
//! maps: readers take an `Arc` of it and never wait; a commit publishes a new
//! version that shares all unchanged nodes with the old one.

use super::reads::RawRead;
use super::{MIRRORED_TREES, TreeId};
use imbl::OrdMap;
use sled::IVec;
use std::ops::Bound;

/// A write staged by a unit of work: a value, or `None` for a removal.
pub(super) type Change = Option<IVec>;

#[derive(Clone, Default)]
pub(super) struct Snapshot {
    trees: [OrdMap<IVec, IVec>; MIRRORED_TREES],
}

impl Snapshot {
    /// Loads the mirrored trees from sled.
    pub(super) fn load(trees: &[sled::Tree]) -> Result<Self, sled::Error> {
        let mut snapshot = Self::default();
        for (map, tree) in snapshot.trees.iter_mut().zip(trees) {
            for entry in tree.iter() {
                // Copied: what sled hands out may share (and keep alive) a
                // whole page of its own.
                let (key, value) = entry?;
                map.insert(IVec::from(&key[..]), IVec::from(&value[..]));
            }
        }
        Ok(snapshot)
    }

    /// How many entries and bytes (keys and values) the snapshot holds.
    pub(super) fn size(&self) -> (usize, usize) {
        self.trees.iter().fold((0, 0), |(entries, bytes), map| {
            let held: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
            (entries + map.len(), bytes + held)
        })
    }

    /// Applies one change; changes to trees that are not mirrored are ignored.
    pub(super) fn apply(&mut self, tree: TreeId, key: &[u8], change: &Change) {
        let Some(map) = self.trees.get_mut(tree as usize) else {
            return;
        };
        match change {
            Some(value) => {
                map.insert(IVec::from(key), value.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

impl RawRead for Snapshot {
    fn raw_get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        self.trees.get(tree as usize)?.get(key).cloned()
    }

    fn raw_scan(&self, tree: TreeId, prefix: &[u8]) -> Vec<(IVec, IVec)> {
        let Some(map) = self.trees.get(tree as usize) else {
            return Vec::new();
        };
        map.range::<_, [u8]>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    fn raw_range(&self, tree: TreeId, start: &[u8], limit: usize) -> Vec<(IVec, IVec)> {
        let Some(map) = self.trees.get(tree as usize) else {
            return Vec::new();
        };
        map.range::<_, [u8]>((Bound::Included(start), Bound::Unbounded))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}
