//! Backups: every tree of one consistent snapshot (the audit trail up to the
//! snapshot's own counter), plus files the store cannot do without (the
//! sealing key), in one file ending with a SHA-256 of all before it; and the
//! restore of such a file into an empty data directory.
//!
//! Format: `GATEHOUSE-BACKUP 1\n`, then records `[code u8][len u32][key]
//! [len u32][value]` (codes as in [`super::large`]; [`FILE`] for a file,
//! its name as key), then [`END`] and the 32-byte digest.

use super::codec::tree_of;
use super::{SledStore, TreeId};
use crate::store::mirror;
use crate::store::mirror::backup::{END, Entries, FILE, MAGIC};
use crate::store::{BackupSummary, StoreError};
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// Entries written to sled between two batches at restore.
const BATCH: usize = 10_000;

/// Files carried by a backup: name and content.
pub type Files = Vec<(String, Vec<u8>)>;

impl SledStore {
    /// Writes one consistent snapshot and `files` to `out`.
    pub(super) fn write_backup(
        &self,
        files: &[(String, Vec<u8>)],
        out: &mut dyn Write,
    ) -> Result<BackupSummary, StoreError> {
        let snapshot = self.snapshot.load_full();
        let unmirrored = |tree: TreeId, below: Option<Vec<u8>>| {
            let tree = &self.trees[tree as usize];
            let entries = match below {
                Some(bound) => tree.range(..bound),
                None => tree.iter(),
            };
            Box::new(entries.map(|entry| {
                let (key, value) = entry?;
                Ok((key.to_vec(), value.to_vec()))
            })) as Entries<'_>
        };
        mirror::backup::write(&snapshot, &unmirrored, files, out)
    }

    /// Checks a backup file whole (form, tree codes, digest) without
    /// restoring it; returns what it holds and the names of its files.
    pub fn check_backup(backup: &Path) -> Result<(BackupSummary, Vec<String>), StoreError> {
        Self::check_backup_from(&mut open_backup(backup)?)
    }

    /// As [`SledStore::check_backup`], reading `input`.
    pub fn check_backup_from(
        input: &mut dyn Read,
    ) -> Result<(BackupSummary, Vec<String>), StoreError> {
        let mut names = Vec::new();
        let summary = read_records(input, &mut |code, key, _| {
            if code == FILE {
                names.push(String::from_utf8_lossy(&key).into_owned());
            } else if tree_of(code).is_none() {
                return Err(StoreError::Corrupt(format!(
                    "the backup holds tree code {code}, unknown to this version"
                )));
            }
            Ok(())
        })?;
        Ok((summary, names))
    }

    /// Restores `backup` into `dir`, which must hold no store yet. The file
    /// is checked whole first (its form, tree codes, digest, and that it
    /// carries each of `required` files and no other); the store is built
    /// aside and put in place only once complete. Returns the files it
    /// carried, for the caller to put in place.
    pub fn restore(
        dir: &Path,
        backup: &Path,
        required: &[&str],
    ) -> Result<(BackupSummary, Files), StoreError> {
        if dir.join("store").exists() {
            return Err(StoreError::Corrupt(format!(
                "{} already holds a store; restore only into an empty data directory",
                dir.display()
            )));
        }
        let (summary, names) = Self::check_backup(backup)?;
        for name in &names {
            if !required.contains(&name.as_str()) {
                return Err(StoreError::Corrupt(format!(
                    "the backup carries an unknown file `{name}`"
                )));
            }
        }
        if let Some(missing) = required
            .iter()
            .find(|name| !names.iter().any(|n| n == *name))
        {
            return Err(StoreError::Corrupt(format!("the backup lacks `{missing}`")));
        }
        let partial = dir.join("store.partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| {
                StoreError::Corrupt(format!("cannot clear {}: {e}", partial.display()))
            })?;
        }
        let files = write_trees(&partial, backup)?;
        std::fs::rename(&partial, dir.join("store")).map_err(|e| {
            StoreError::Corrupt(format!("cannot put the restored store in place: {e}"))
        })?;
        Ok((summary, files))
    }
}

fn open_backup(backup: &Path) -> Result<BufReader<std::fs::File>, StoreError> {
    std::fs::File::open(backup)
        .map(BufReader::new)
        .map_err(|e| StoreError::Corrupt(format!("cannot read {}: {e}", backup.display())))
}

/// Writes the trees of a checked backup into a new sled database at `path`.
fn write_trees(path: &Path, backup: &Path) -> Result<Files, StoreError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(64 << 20)
        .open()?;
    let mut files = Vec::new();
    let mut batches: Vec<(sled::Tree, sled::Batch, usize)> = Vec::new();
    read_records(&mut open_backup(backup)?, &mut |record_code, key, value| {
        if record_code == FILE {
            files.push((String::from_utf8_lossy(&key).into_owned(), value));
            return Ok(());
        }
        let tree =
            tree_of(record_code).ok_or_else(|| StoreError::Corrupt("unknown tree".into()))?;
        let name = super::TREE_NAMES[tree as usize];
        let slot = match batches
            .iter()
            .position(|(t, _, _)| t.name() == name.as_bytes())
        {
            Some(slot) => slot,
            None => {
                batches.push((db.open_tree(name)?, sled::Batch::default(), 0));
                batches.len() - 1
            }
        };
        let (tree, batch, count) = &mut batches[slot];
        batch.insert(key, value);
        *count += 1;
        if *count >= BATCH {
            tree.apply_batch(std::mem::take(batch))?;
            *count = 0;
        }
        Ok(())
    })?;
    for (tree, batch, _) in batches {
        tree.apply_batch(batch)?;
    }
    db.flush()?;
    Ok(files)
}

/// Reads every record of a backup, checking its form and final digest.
fn read_records(
    input: &mut dyn Read,
    visit: &mut dyn FnMut(u8, Vec<u8>, Vec<u8>) -> Result<(), StoreError>,
) -> Result<BackupSummary, StoreError> {
    let damaged = |what: &str| StoreError::Corrupt(format!("the backup is damaged: {what}"));
    let mut digest = Sha256::new();
    let mut bytes = 0u64;
    // Read through `take`: the buffer grows with what is really there, so a
    // damaged length cannot make us allocate gigabytes up front.
    let mut read = |len: usize, digest: &mut Sha256| -> Result<Vec<u8>, StoreError> {
        let mut buffer = Vec::new();
        let got = (&mut *input)
            .take(len as u64)
            .read_to_end(&mut buffer)
            .map_err(|_| damaged("unreadable"))?;
        if got != len {
            return Err(damaged("it ends early"));
        }
        digest.update(&buffer);
        bytes += len as u64;
        Ok(buffer)
    };
    if read(MAGIC.len(), &mut digest)? != MAGIC {
        return Err(damaged("not a gatehouse backup"));
    }
    let mut entries = 0u64;
    loop {
        let record_code = read(1, &mut digest)?[0];
        if record_code == END {
            break;
        }
        let mut parts = Vec::with_capacity(2);
        for _ in 0..2 {
            let len = read(4, &mut digest)?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| damaged("a length"))?);
            parts.push(read(len as usize, &mut digest)?);
        }
        let value = parts.pop().unwrap_or_default();
        let key = parts.pop().unwrap_or_default();
        if record_code != FILE {
            entries += 1;
        }
        visit(record_code, key, value)?;
    }
    let expected = digest.finalize();
    let mut found = [0u8; 32];
    input
        .read_exact(&mut found)
        .map_err(|_| damaged("no digest at the end"))?;
    if found[..] != expected[..] {
        return Err(damaged("its digest does not match"));
    }
    Ok(BackupSummary {
        entries,
        bytes: bytes + 32,
    })
}
