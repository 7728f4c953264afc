//! Uploads that keep the quota exact. A new file (or a replacement) grows in
//! the hidden staging directory, invisible to every command, and replaces its
//! target only when complete; an append or resume writes in place while the
//! path is marked busy for the user's other sessions. Bytes are admitted
//! against the quota before they are written, and anything but a commit
//! (error, truncation, abort, a dropped task) puts the file and the usage back.

use super::path::VirtualPath;
use super::storage::{Home, StorageError, StorageResult, blocking};
use crate::service::QuotaRefusal;

/// Quota reserved ahead of the bytes, so most chunks need no bookkeeping.
const RESERVE_STEP: u64 = 8 * 1024 * 1024;

/// How an upload treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// STOR: a new file replaces the old one when complete.
    Replace,
    /// APPE: bytes added at the end (the file is created when missing).
    Append,
    /// REST n then STOR: bytes written from `n`, the rest of the file replaced.
    Resume(u64),
}

enum Target {
    Staged {
        part: String,
    },
    InPlace {
        start: u64,
        old_size: u64,
        created: bool,
    },
}

/// Where an upload stands; the file and the phase change under one lock, so
/// an abandoned upload is put back only after its last write has landed, and
/// never after its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Writing,
    Committed,
    Abandoned,
}

struct FileState {
    file: std::fs::File,
    phase: Phase,
}

/// What the blocking steps of an upload share.
struct Inner {
    home: Home,
    path: VirtualPath,
    target: Target,
    state: std::sync::Mutex<FileState>,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An upload in progress.
pub struct Upload {
    inner: std::sync::Arc<Inner>,
    written: u64,
    reservation: Reservation,
}

impl Home {
    /// Starts an upload to `path`; fails before any byte moves (so before the
    /// 150 reply) when the path is wrong, busy or over the file-count quota.
    pub async fn begin_upload(
        &self,
        path: &VirtualPath,
        mode: UploadMode,
    ) -> StorageResult<Upload> {
        if path.is_root() {
            return Err(StorageError::NotAFile);
        }
        match mode {
            UploadMode::Replace => self.begin_staged(path).await,
            UploadMode::Append | UploadMode::Resume(_) => self.begin_in_place(path, mode).await,
        }
    }

    async fn begin_staged(&self, path: &VirtualPath) -> StorageResult<Upload> {
        let (dir, parent, rel) = (self.dir.clone(), path.parent(), path.relative());
        let replaces = blocking(move || {
            if !dir.symlink_metadata(parent.relative())?.is_dir() {
                return Err(StorageError::NotADirectory);
            }
            match dir.symlink_metadata(rel) {
                Ok(meta) if !meta.is_file() => Err(StorageError::NotAFile),
                Ok(_) => Ok(true),
                Err(_) => Ok(false),
            }
        })
        .await?;
        // A new file needs room in the file-count quota; a replacement only
        // if its target is gone by the time it completes (checked then).
        let mut reservation = Reservation::new(self);
        if !replaces {
            reservation.take(0, 1)?;
        }
        let part = format!("{}-{:016x}.part", self.user, rand::random::<u64>());
        let (staging, name) = (self.homes.staging.clone(), part.clone());
        let file = blocking(move || {
            let mut options = cap_std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            Ok(staging.open_with(name, &options)?.into_std())
        })
        .await?;
        Ok(self.upload(path, file, Target::Staged { part }, reservation))
    }

    async fn begin_in_place(&self, path: &VirtualPath, mode: UploadMode) -> StorageResult<Upload> {
        // A file the upload creates takes one of the file-count quota, taken
        // before the file exists; without it, a missing file is not created.
        let mut reservation = Reservation::new(self);
        let missing = matches!(self.stat(path).await, Err(StorageError::NotFound));
        if missing {
            reservation.take(0, 1)?;
        }
        let may_create = reservation.files > 0;
        // Claimed and opened under the user's lock, so no DELE or RNTO of
        // another session slips between the check and the open.
        let (home, path_owned) = (self.clone(), path.clone());
        let (file, start, existed) = blocking(move || {
            let _user = home.files.lock();
            home.files.claim(&path_owned)?;
            let opened = open_in_place(&home.dir, &path_owned, mode, may_create);
            if opened.is_err() {
                home.files.release(&path_owned);
            }
            opened
        })
        .await?;
        let target = Target::InPlace {
            start,
            old_size: existed.unwrap_or(0),
            created: existed.is_none(),
        };
        Ok(self.upload(path, file, target, reservation))
    }

    fn upload(
        &self,
        path: &VirtualPath,
        file: std::fs::File,
        target: Target,
        reservation: Reservation,
    ) -> Upload {
        Upload {
            inner: std::sync::Arc::new(Inner {
                home: self.clone(),
                path: path.clone(),
                target,
                state: std::sync::Mutex::new(FileState {
                    file,
                    phase: Phase::Writing,
                }),
            }),
            written: 0,
            reservation,
        }
    }
}

/// Opens the file an append or resume writes to, positioned where it starts;
/// returns it, the start, and the size it had (None: created now).
fn open_in_place(
    dir: &cap_std::fs::Dir,
    path: &VirtualPath,
    mode: UploadMode,
    may_create: bool,
) -> StorageResult<(std::fs::File, u64, Option<u64>)> {
    let rel = path.relative();
    let existed = match dir.symlink_metadata(&rel) {
        Ok(meta) if meta.is_file() => Some(meta.len()),
        Ok(_) => return Err(StorageError::NotAFile),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let start = match (mode, existed) {
        (UploadMode::Resume(offset), Some(size)) if offset <= size => offset,
        (UploadMode::Resume(_), _) => return Err(StorageError::BadOffset),
        (_, size) => size.unwrap_or(0),
    };
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create(existed.is_none() && may_create);
    let mut file = dir.open_with(&rel, &options)?.into_std();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
    Ok((file, start, existed))
}

/// Quota held by an upload in progress, given back when it ends (after the
/// usage is recorded, so the bytes are counted at least once, never missed).
struct Reservation {
    home: Home,
    bytes: u64,
    files: u64,
}

impl Reservation {
    fn new(home: &Home) -> Self {
        Self {
            home: home.clone(),
            bytes: 0,
            files: 0,
        }
    }

    fn take(&mut self, bytes: u64, files: u64) -> StorageResult<()> {
        match self
            .home
            .directory()
            .ftp
            .ftp_reserve(self.home.user, bytes, files)
        {
            Ok(()) => {
                self.bytes += bytes;
                self.files += files;
                Ok(())
            }
            Err(QuotaRefusal::Bytes) => Err(StorageError::QuotaBytes),
            Err(QuotaRefusal::Files) => Err(StorageError::QuotaFiles),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let ftp = &self.home.directory().ftp;
        ftp.ftp_release(self.home.user, self.bytes, self.files);
    }
}

impl Upload {
    /// Size the file will have once the bytes written so far are in.
    fn end(&self) -> u64 {
        match &self.inner.target {
            Target::Staged { .. } => self.written,
            Target::InPlace { start, .. } => start + self.written,
        }
    }

    /// Quota needed: growth beyond the file's size before the upload. A staged
    /// upload needs room for the whole new copy, as both exist until it ends.
    fn growth(&self, end: u64) -> u64 {
        match &self.inner.target {
            Target::Staged { .. } => end,
            Target::InPlace { old_size, .. } => end.saturating_sub(*old_size),
        }
    }

    /// Admits `chunk` against the quota and starts writing it on a blocking
    /// thread, so the next chunk can arrive meanwhile. The previous write must
    /// be done first (writes land in order).
    pub fn start_write(&mut self, chunk: Vec<u8>) -> StorageResult<PendingWrite> {
        let growth = self.growth(self.end() + chunk.len() as u64);
        if growth > self.reservation.bytes {
            let need = growth - self.reservation.bytes;
            if self.reservation.take(need.max(RESERVE_STEP), 0).is_err() {
                self.reservation.take(need, 0)?;
            }
        }
        self.written += chunk.len() as u64;
        let inner = self.inner.clone();
        Ok(PendingWrite(tokio::task::spawn_blocking(move || {
            let mut state = inner.state();
            let written = match state.phase {
                Phase::Writing => std::io::Write::write_all(&mut state.file, &chunk),
                _ => Err(std::io::Error::other("the upload has ended")),
            };
            (chunk, written)
        })))
    }

    /// Completes the upload: the file takes its place and the usage its size,
    /// whatever happens to the task meanwhile. Returns the bytes received.
    pub async fn commit(self) -> StorageResult<u64> {
        let end = self.end();
        let holds_file = self.reservation.files > 0;
        let inner = self.inner.clone();
        blocking(move || {
            let mut state = inner.state();
            if state.phase != Phase::Writing {
                return Err(StorageError::Aborted);
            }
            let home = &inner.home;
            let _user = home.files.lock();
            let outcome = match &inner.target {
                Target::Staged { part } => commit_staged(home, &inner.path, part, end, holds_file),
                Target::InPlace {
                    old_size, created, ..
                } => state
                    .file
                    .set_len(end)
                    .map_err(StorageError::from)
                    .and_then(|()| home.record(end as i64 - *old_size as i64, i64::from(*created))),
            };
            if outcome.is_ok() {
                state.phase = Phase::Committed;
            }
            outcome
        })
        .await?;
        Ok(self.written)
    }
}

/// A chunk being written; gives its buffer back when done.
pub struct PendingWrite(tokio::task::JoinHandle<(Vec<u8>, std::io::Result<()>)>);

impl PendingWrite {
    pub async fn done(self) -> StorageResult<Vec<u8>> {
        let (chunk, written) = self
            .0
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?;
        written?;
        Ok(chunk)
    }
}

/// Moves a finished staged upload over its target and records the change.
fn commit_staged(
    home: &Home,
    path: &VirtualPath,
    part: &str,
    end: u64,
    holds_file: bool,
) -> StorageResult<()> {
    home.files.ensure_idle(path)?;
    let replaced = match home.dir.symlink_metadata(path.relative()) {
        Ok(meta) if meta.is_file() => Some(meta.len()),
        Ok(_) => return Err(StorageError::NotAFile),
        Err(_) => None,
    };
    // A replacement whose target vanished meanwhile now adds a file.
    let late_file = replaced.is_none() && !holds_file;
    let ftp = &home.directory().ftp;
    if late_file && ftp.ftp_reserve(home.user, 0, 1).is_err() {
        return Err(StorageError::QuotaFiles);
    }
    let renamed = home.homes.staging.rename(part, &home.dir, path.relative());
    let bytes = end as i64 - replaced.unwrap_or(0) as i64;
    let recorded = renamed
        .map_err(StorageError::from)
        .and_then(|()| home.record(bytes, i64::from(replaced.is_none())));
    if late_file {
        ftp.ftp_release(home.user, 0, 1);
    }
    recorded
}

impl Drop for Upload {
    /// Anything but a commit puts the file back: after the last write landed
    /// (the lock waits for it), and never after a commit that raced the drop.
    fn drop(&mut self) {
        let inner = &self.inner;
        let mut state = inner.state();
        if state.phase == Phase::Writing {
            state.phase = Phase::Abandoned;
            let undone = match &inner.target {
                Target::Staged { part } => inner.home.homes.staging.remove_file(part),
                Target::InPlace { created: true, .. } => {
                    inner.home.dir.remove_file(inner.path.relative())
                }
                Target::InPlace { old_size, .. } => state.file.set_len(*old_size),
            };
            if let Err(error) = undone {
                tracing::warn!(user_id = inner.home.user, %error, "could not undo an unfinished upload");
            }
        }
        drop(state);
        if matches!(inner.target, Target::InPlace { .. }) {
            inner.home.files.release(&inner.path);
        }
    }
}
