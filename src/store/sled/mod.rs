//! The embedded store on sled, the only module that imports it. Committed state
//! is mirrored in memory ([`snapshot`]) so readers never touch sled and never
//! wait; writers are serialised, stage their writes ([`tx`]), and apply them
//! to sled in one multi-tree transaction (or, for very large units, through
//! [`large`]); [`durability`] makes them durable with group commit before
//! anyone acknowledges them.

mod backup;
mod large;
mod migrate;

use super::mirror::{
    MIRRORED_TREES, SCHEMA_VERSION, TREE_NAMES, TreeId, codec, keys, packed, reads, snapshot, tx,
    verify,
};

use super::durability::GroupCommit;
use super::{Commit, Decision, StoreError, UnitOfWork};
use crate::domain::audit::AuditEntry;
use arc_swap::ArcSwap;
use reads::{RawRead, decode};
use sled::Transactional;
use sled::transaction::TransactionError;
use snapshot::Snapshot;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tx::{Tx, WriteSet};

/// The sled store; cheap to share behind an `Arc`.
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// The committed state readers see.
    snapshot: ArcSwap<Snapshot>,
    /// Serialises units of work, so each sees the state it commits over.
    writer: Mutex<()>,
    group_commit: GroupCommit,
}

/// How long opening waits for the lock of a store that was just closed
/// (sled lets go of it from a background thread, a moment after the drop).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(dir.join("store"))
        .cache_capacity(cache_bytes);
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            // sled reports the lock only in its message (kind Other).
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the store under `dir`, brings its schema up to date
    /// and loads the mirror.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let trees: Vec<sled::Tree> = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<_, _>>()?;
        large::recover(&db, &trees)?;
        let snapshot = Snapshot::load(&trees[..MIRRORED_TREES])?;
        let (entries, bytes) = snapshot.size();
        tracing::info!(entries, mib = bytes >> 20, "store loaded into memory");
        let store = Self {
            db,
            trees,
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
            group_commit: GroupCommit::default(),
        };
        migrate::run(&store)?;
        Ok(store)
    }

    /// Runs `work` over a unit of work and commits what it staged.
    fn run(&self, work: &mut dyn FnMut(&Tx) -> Decision) -> Result<Commit, StoreError> {
        let _writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let base = self.snapshot.load_full();
        let tx = Tx::new(&base);
        if work(&tx) == Decision::Rollback {
            return Ok(Commit::default());
        }
        let writes = tx.into_writes();
        if writes.is_empty() {
            return Ok(Commit::default());
        }
        self.apply_to_disk(&writes)?;
        let mut next = (*base).clone();
        for ((tree, key), change) in &writes {
            next.apply(*tree, key, change);
        }
        self.snapshot.store(Arc::new(next));
        Ok(self.group_commit.next_commit())
    }

    /// Applies staged writes to sled atomically across the trees they touch.
    fn apply_to_disk(&self, writes: &WriteSet) -> Result<(), StoreError> {
        if writes.len() > large::LARGE {
            return large::commit(&self.db, &self.trees, writes);
        }
        let mut touched: Vec<TreeId> = writes.keys().map(|(tree, _)| *tree).collect();
        touched.dedup();
        let trees: Vec<sled::Tree> = touched
            .iter()
            .map(|tree| self.trees[*tree as usize].clone())
            .collect();
        let outcome = trees.as_slice().transaction(|view| {
            for ((tree, key), change) in writes {
                let slot = touched.iter().position(|t| t == tree).unwrap_or_default();
                match change {
                    Some(value) => view[slot].insert(key.clone(), value.clone())?,
                    None => view[slot].remove(key.clone())?,
                };
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        });
        outcome.map_err(|error| match error {
            TransactionError::Storage(error) => StoreError::Storage(error),
            TransactionError::Abort(()) => StoreError::NotRun,
        })
    }

    /// One tree as sled holds it (for copying the store elsewhere).
    pub(in crate::store) fn tree(&self, tree: TreeId) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    fn schema_version(&self) -> u64 {
        self.snapshot
            .load()
            .raw_get(TreeId::Meta, keys::SCHEMA_VERSION)
            .map(|raw| keys::decode_u64(&raw))
            .unwrap_or(0)
    }
}

impl super::Store for SledStore {
    fn snapshot(&self) -> super::Snapshot {
        self.snapshot.load_full()
    }

    fn transact(
        &self,
        work: &mut dyn FnMut(&dyn UnitOfWork) -> Decision,
    ) -> Result<Commit, StoreError> {
        self.run(&mut |tx| work(tx))
    }

    fn wait_durable(&self, commit: Commit) -> Result<(), StoreError> {
        self.group_commit.wait(commit, || self.flush())
    }

    fn audit_page(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let tree = &self.trees[TreeId::Audit as usize];
        let entries = match before {
            Some(id) => tree.range(..keys::id(id)),
            None => tree.iter(),
        };
        entries
            .rev()
            .take(limit)
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    fn media(
        &self,
        key: crate::domain::media::MediaKey,
    ) -> Result<Option<crate::domain::media::StoredImage>, StoreError> {
        let tree = &self.trees[TreeId::Media as usize];
        match tree.get(key.bytes())? {
            None => Ok(None),
            Some(raw) => crate::domain::media::StoredImage::decode(&raw)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("an image blob is damaged".into())),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    fn backup(
        &self,
        files: &[(String, Vec<u8>)],
        out: &mut dyn std::io::Write,
    ) -> Result<super::BackupSummary, StoreError> {
        self.write_backup(files, out)
    }

    fn verify(&self) -> Result<Vec<String>, StoreError> {
        verify::drift(&*self.snapshot.load_full())
    }
}

#[cfg(test)]
mod tests {
    use super::SledStore;

    #[test]
    fn opening_waits_for_a_store_that_is_being_closed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = SledStore::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().to_owned();
        let second = std::thread::spawn(move || SledStore::open(&path, 1 << 20).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
        assert_eq!(second.join().ok(), Some(true), "the lock was waited for");
    }
}
