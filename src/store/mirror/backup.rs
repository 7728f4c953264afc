//! The backup file, written from any store: every tree of one consistent
//! snapshot (the audit trail up to the snapshot's own counter, the images its
//! records and users refer to), plus files the store cannot do without (the
//! sealing key), ending with a SHA-256 of all before it. Restoring is the
//! embedded store's (`store::sled::backup`).
//!
//! Format: `GATEHOUSE-BACKUP 1\n`, then records `[code u8][len u32][key]
//! [len u32][value]` (codes as in [`super::codec`]; [`FILE`] for a file,
//! its name as key), then [`END`] and the 32-byte digest.

use super::codec::code;
use super::reads::RawRead;
use super::snapshot::Snapshot;
use super::{TreeId, keys};
use crate::store::{BackupSummary, StoreError};
use sha2::{Digest, Sha256};
use std::io::Write;

pub(in crate::store) const MAGIC: &[u8] = b"GATEHOUSE-BACKUP 1\n";
pub(in crate::store) const FILE: u8 = 0xFE;
pub(in crate::store) const END: u8 = 0xFF;
/// Entries read from the snapshot at a time.
const PAGE: usize = 10_000;

/// Entries of a tree that is not mirrored, in key order.
pub(in crate::store) type Entries<'a> =
    Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// Writes everything through a running digest.
struct Hashing<'a> {
    out: &'a mut dyn Write,
    digest: Sha256,
    bytes: u64,
}

impl Hashing<'_> {
    fn put(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.digest.update(data);
        self.bytes += data.len() as u64;
        self.out
            .write_all(data)
            .map_err(|e| StoreError::Durability(format!("writing the backup: {e}")))
    }

    fn record(&mut self, code: u8, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(&[code])?;
        for part in [key, value] {
            let len = u32::try_from(part.len())
                .map_err(|_| StoreError::Corrupt("an entry over 4 GiB".into()))?;
            self.put(&len.to_be_bytes())?;
            self.put(part)?;
        }
        Ok(())
    }
}

/// Writes `snapshot`, the entries of the trees it does not mirror
/// (`unmirrored(tree, below)`: the audit trail up to the snapshot's own
/// counter, the images) and `files` to `out`.
pub(in crate::store) fn write<'a>(
    snapshot: &Snapshot,
    unmirrored: &'a dyn Fn(TreeId, Option<Vec<u8>>) -> Entries<'a>,
    files: &[(String, Vec<u8>)],
    out: &mut dyn Write,
) -> Result<BackupSummary, StoreError> {
    let mut writer = Hashing {
        out,
        digest: Sha256::new(),
        bytes: 0,
    };
    writer.put(MAGIC)?;
    let mut entries = 0u64;
    for tree in super::codec::ALL_TREES {
        if matches!(tree, TreeId::Audit | TreeId::Media) {
            continue;
        }
        let mut start = Vec::new();
        loop {
            let page = snapshot.raw_range(tree, &start, PAGE);
            for (key, value) in &page {
                writer.record(code(tree), key, value)?;
                entries += 1;
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => {
                    start = last.to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
    }
    // The audit trail is read from disk: only what the snapshot's counter
    // had handed out belongs to this snapshot.
    let next_audit = snapshot
        .raw_get(TreeId::Meta, keys::counter("audit").as_bytes())
        .map(|raw| keys::decode_u64(&raw))
        .unwrap_or(1);
    for entry in unmirrored(TreeId::Audit, Some(keys::id(next_audit).to_vec())) {
        let (key, value) = entry?;
        writer.record(code(TreeId::Audit), &key, &value)?;
        entries += 1;
    }
    // Images are not mirrored in memory either: those on disk that the
    // snapshot's records and users refer to.
    for entry in unmirrored(TreeId::Media, None) {
        let (key, value) = entry?;
        if referenced(snapshot, &key)? {
            writer.record(code(TreeId::Media), &key, &value)?;
            entries += 1;
        }
    }
    for (name, content) in files {
        writer.record(FILE, name.as_bytes(), content)?;
    }
    writer.put(&[END])?;
    let digest = writer.digest.clone().finalize();
    writer
        .out
        .write_all(&digest)
        .map_err(|e| StoreError::Durability(format!("writing the backup: {e}")))?;
    Ok(BackupSummary {
        entries,
        bytes: writer.bytes + 32,
    })
}

/// Whether the image under `key` belongs to a record or user of `snapshot`.
fn referenced(snapshot: &Snapshot, key: &[u8]) -> Result<bool, StoreError> {
    use crate::domain::media::MediaKey;
    use crate::store::{RecordReads, UserReads};
    Ok(match MediaKey::from_bytes(key) {
        Some(MediaKey::Thumbnail(id)) => snapshot
            .resource(id)?
            .is_some_and(|r| r.thumbnail.is_some()),
        Some(MediaKey::Picture(id) | MediaKey::PictureThumbnail(id)) => {
            snapshot.user(id)?.is_some_and(|u| u.picture.is_some())
        }
        None => false,
    })
}
