//! Units of work too large for one sled transaction, such as an import of
//! 100,000 users. A sled transaction keeps every intermediate version of the
//! nodes it writes in memory until it ends (about 3 KiB per write, 3 GB for
//! such an import). A large unit is therefore first written whole, as one
//! record in sled's default tree (one atomic insert, flushed): from then on
//! it is committed. It is then applied in chunks, with a flush after each so
//! sled can let go of what it wrote, and the record is removed. A crash in
//! between is finished from the record at the next open.

use super::TreeId;
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

pub(super) const ALL_TREES: [TreeId; 21] = [
    TreeId::Users,
    TreeId::Logins,
    TreeId::Emails,
    TreeId::References,
    TreeId::ActiveAdmins,
    TreeId::Groups,
    TreeId::Credentials,
    TreeId::Tokens,
    TreeId::Meta,
    TreeId::Organizations,
    TreeId::OrganizationCodes,
    TreeId::Projects,
    TreeId::Resources,
    TreeId::Memberships,
    TreeId::MemberProjects,
    TreeId::Audit,
    TreeId::Outbox,
    TreeId::OutboxQueue,
    TreeId::SsoSubjects,
    TreeId::Entries,
    TreeId::Media,
];

/// A tree's code in a record: its place in [`ALL_TREES`], which only grows
/// at the end, so records written by an older version read back the same.
pub(super) fn code(tree: TreeId) -> u8 {
    ALL_TREES
        .iter()
        .position(|t| *t == tree)
        .and_then(|index| u8::try_from(index).ok())
        .unwrap_or(u8::MAX)
}

/// The tree with `code`, if there is one.
pub(super) fn tree_of(code: u8) -> Option<TreeId> {
    ALL_TREES.get(usize::from(code)).copied()
}

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

/// The record: per write, the tree, the key, and the value or a removal.
fn encode(writes: &WriteSet) -> Vec<u8> {
    let mut out = Vec::new();
    for ((tree, key), change) in writes {
        out.push(code(*tree));
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        match change {
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                out.extend_from_slice(value);
            }
            None => out.push(0),
        }
    }
    out
}

fn decode(mut raw: &[u8]) -> Result<Vec<(TreeId, IVec, Change)>, StoreError> {
    let damaged =
        || StoreError::Corrupt("the record of an interrupted large commit is damaged".into());
    let take = |len: usize, raw: &mut &[u8]| -> Result<Vec<u8>, StoreError> {
        if raw.len() < len {
            return Err(damaged());
        }
        let (head, rest) = raw.split_at(len);
        *raw = rest;
        Ok(head.to_vec())
    };
    let mut entries = Vec::new();
    while !raw.is_empty() {
        let tree = take(1, &mut raw)?[0];
        let tree = *ALL_TREES.get(usize::from(tree)).ok_or_else(damaged)?;
        let len = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| damaged())?);
        let key = IVec::from(take(len as usize, &mut raw)?);
        let change = match take(1, &mut raw)?[0] {
            1 => {
                let len = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| damaged())?);
                Some(IVec::from(take(len as usize, &mut raw)?))
            }
            _ => None,
        };
        entries.push((tree, key, change));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_round_trips_through_the_record() {
        assert_eq!(ALL_TREES.len(), super::super::TREE_NAMES.len());
        for (index, tree) in ALL_TREES.iter().enumerate() {
            assert_eq!(usize::from(code(*tree)), index);
        }
        // Codes written by earlier versions keep their meaning.
        assert_eq!(code(TreeId::Audit), 15);
        let mut writes = WriteSet::new();
        writes.insert(
            (TreeId::Users, IVec::from(&b"k1"[..])),
            Some(IVec::from(&b"v1"[..])),
        );
        writes.insert((TreeId::Audit, IVec::from(&b"k2"[..])), None);
        let decoded = decode(&encode(&writes)).unwrap_or_default();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].0, TreeId::Users);
        assert_eq!(decoded[1].2, None);
        assert!(
            decode(&encode(&writes)[..5]).is_err(),
            "a cut record is refused"
        );
    }

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
