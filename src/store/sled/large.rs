//! Units of work too large for one sled transaction, such as an import of
//! 100,000 users. A sled transaction keeps every intermediate version of the
//! nodes it writes in memory until it ends (about 3 KiB per write, 3 GB for
//! such an import). A large unit is therefore first written whole, as one
//! record in sled's default tree (one atomic insert, flushed): from then on
//! it is committed. It is then applied in chunks, with a flush after each so
//! sled can let go of what it wrote, and the record is removed. A crash in
//! between is finished from the record at the next open.

use super::TreeId;
use super::codec::{decode, encode};
use super::packed::Change;
use super::tx::WriteSet;
use crate::store::StoreError;
use sled::IVec;

/// Writes above which a unit goes this way.
pub(super) const LARGE: usize = 20_000;
/// Writes applied between two flushes.
const CHUNK: usize = 5_000;
/// The key of the record of a large unit being applied.
const PENDING: &[u8] = b"pending_large_commit";

/// Commits `writes` as described above.
pub(super) fn commit(
    db: &sled::Db,
    trees: &[sled::Tree],
    writes: &WriteSet,
) -> Result<(), StoreError> {
    db.insert(PENDING, encode(writes))?;
    db.flush()?;
    let entries = writes
        .iter()
        .map(|((tree, key), change)| (*tree, key.clone(), change.clone()));
    apply(db, trees, entries)?;
    db.remove(PENDING)?;
    db.flush()?;
    Ok(())
}

/// Finishes a large unit a crash interrupted; true when there was one.
pub(super) fn recover(db: &sled::Db, trees: &[sled::Tree]) -> Result<bool, StoreError> {
    let Some(record) = db.get(PENDING)? else {
        return Ok(false);
    };
    apply(db, trees, decode(&record)?.into_iter())?;
    db.remove(PENDING)?;
    db.flush()?;
    tracing::warn!("finished applying a large unit of work a crash had interrupted");
    Ok(true)
}

fn apply(
    db: &sled::Db,
    trees: &[sled::Tree],
    entries: impl Iterator<Item = (TreeId, IVec, Change)>,
) -> Result<(), StoreError> {
    let mut batches: Vec<sled::Batch> = trees.iter().map(|_| sled::Batch::default()).collect();
    let mut pending = 0;
    for (tree, key, change) in entries {
        let batch = &mut batches[tree as usize];
        match change {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
        pending += 1;
        if pending == CHUNK {
            flush_batches(db, trees, &mut batches)?;
            pending = 0;
        }
    }
    flush_batches(db, trees, &mut batches)
}

fn flush_batches(
    db: &sled::Db,
    trees: &[sled::Tree],
    batches: &mut [sled::Batch],
) -> Result<(), StoreError> {
    for (tree, batch) in trees.iter().zip(batches.iter_mut()) {
        tree.apply_batch(std::mem::take(batch))?;
    }
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_commit_a_crash_interrupted_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut writes = WriteSet::new();
        for n in 0..12_000u64 {
            let key = IVec::from(&n.to_be_bytes()[..]);
            writes.insert((TreeId::Meta, key), Some(IVec::from(&b"value"[..])));
        }
        {
            let store = super::super::SledStore::open(dir.path(), 1 << 20)
                .unwrap_or_else(|e| panic!("{e}"));
            // As if the process died right after the record was flushed.
            store
                .db
                .insert(PENDING, encode(&writes))
                .unwrap_or_else(|e| panic!("{e}"));
            store.db.flush().unwrap_or_else(|e| panic!("{e}"));
        }
        let store =
            super::super::SledStore::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let meta = &store.trees[TreeId::Meta as usize];
        let last = meta.get(11_999u64.to_be_bytes()).unwrap_or_default();
        assert_eq!(last.as_deref(), Some(&b"value"[..]));
        assert!(store.db.get(PENDING).unwrap_or_default().is_none());
    }
}
