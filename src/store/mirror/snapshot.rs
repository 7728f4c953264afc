//! The committed state of every mirrored tree, held in memory: readers take
//! an `Arc` of it and never wait; a commit publishes a new version that shares
//! everything unchanged with the old one (see [`super::packed`]).

use super::packed::{Change, PackedTree};
use super::reads::RawRead;
use super::{MIRRORED_TREES, TreeId};
use sled::IVec;

#[derive(Clone, Default)]
pub(in crate::store) struct Snapshot {
    trees: [PackedTree; MIRRORED_TREES],
}

impl Snapshot {
    /// Loads the mirrored trees from sled, each packed in key order.
    pub(in crate::store) fn load(trees: &[sled::Tree]) -> Result<Self, sled::Error> {
        let mut snapshot = Self::default();
        for (slot, tree) in snapshot.trees.iter_mut().zip(trees) {
            // A first pass sizes the buffers, so the second copies each byte once.
            let (mut count, mut bytes) = (0, 0);
            for entry in tree.iter() {
                let (key, value) = entry?;
                count += 1;
                bytes += key.len() + value.len();
            }
            let mut failure = None;
            let entries = tree
                .iter()
                .map_while(|entry| entry.map_err(|error| failure = Some(error)).ok());
            *slot = PackedTree::from_sorted(entries, count, bytes);
            if let Some(error) = failure {
                return Err(error);
            }
        }
        Ok(snapshot)
    }

    /// Builds the snapshot from entries in any order; those of trees that are
    /// not mirrored are left out.
    pub(in crate::store) fn from_entries(
        entries: impl IntoIterator<Item = (TreeId, Vec<u8>, Vec<u8>)>,
    ) -> Self {
        let mut per_tree: [Vec<(Vec<u8>, Vec<u8>)>; MIRRORED_TREES] =
            std::array::from_fn(|_| Vec::new());
        for (tree, key, value) in entries {
            if let Some(slot) = per_tree.get_mut(tree as usize) {
                slot.push((key, value));
            }
        }
        let mut snapshot = Self::default();
        for (slot, mut entries) in snapshot.trees.iter_mut().zip(per_tree) {
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let bytes = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
            let count = entries.len();
            *slot = PackedTree::from_sorted(entries.into_iter(), count, bytes);
        }
        snapshot
    }

    /// How many entries and bytes (keys and values) the snapshot holds.
    pub(in crate::store) fn size(&self) -> (usize, usize) {
        self.trees.iter().fold((0, 0), |(entries, bytes), tree| {
            let (held, size) = tree.size();
            (entries + held, bytes + size)
        })
    }

    /// Applies one change; changes to trees that are not mirrored are ignored.
    pub(in crate::store) fn apply(&mut self, tree: TreeId, key: &[u8], change: &Change) {
        if let Some(slot) = self.trees.get_mut(tree as usize) {
            slot.apply(key, change);
        }
    }
}

impl RawRead for Snapshot {
    fn raw_get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        self.trees.get(tree as usize)?.get(key)
    }

    fn raw_entries(
        &self,
        tree: TreeId,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Vec<(IVec, IVec)> {
        self.trees
            .get(tree as usize)
            .map(|t| t.range(start, prefix, limit))
            .unwrap_or_default()
    }
}
