//! Homes on disk for FTP sessions: every path opened through cap-std below the
//! user's home (no `..` or symlink leaves it), and every change that moves the
//! user's usage (delete, rename over a file, an upload's end) made under the
//! user's lock and recorded in the store in the same step, so sessions of one
//! user racing each other keep the usage exact. Uploads live in `upload.rs`.

use super::path::VirtualPath;
use crate::domain::user::UserId;
use crate::service::{Directory, ServiceError};
use cap_std::fs::{Dir, Metadata};
use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

/// Why a storage action failed; `reply.rs` turns each into a reply code.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("not a plain file")]
    NotAFile,
    #[error("not a directory")]
    NotADirectory,
    #[error("already exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("permission denied")]
    Denied,
    #[error("an upload to it is in progress")]
    Busy,
    #[error("bad name: {0}")]
    BadName(&'static str),
    #[error("restart offset beyond the end of the file")]
    BadOffset,
    #[error("byte quota exceeded")]
    QuotaBytes,
    #[error("file-count quota exceeded")]
    QuotaFiles,
    #[error("upload truncated (no TLS close_notify)")]
    Truncated,
    #[error("aborted by the client")]
    Aborted,
    #[error("data connection: {0}")]
    Data(String),
    #[error(transparent)]
    Io(std::io::Error),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<std::io::Error> for StorageError {
    fn from(error: std::io::Error) -> Self {
        match error.kind() {
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::PermissionDenied => Self::Denied,
            ErrorKind::AlreadyExists => Self::Exists,
            ErrorKind::DirectoryNotEmpty => Self::NotEmpty,
            ErrorKind::NotADirectory => Self::NotADirectory,
            ErrorKind::IsADirectory => Self::NotAFile,
            _ => Self::Io(error),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// Runs blocking file-system work off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StorageResult<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))?
}

/// What every session of one user shares: the lock usage changes are made
/// under, and the paths being written in place (unaddressable meanwhile).
#[derive(Debug, Default)]
pub struct UserFiles {
    lock: Mutex<()>,
    busy: Mutex<HashSet<VirtualPath>>,
}

impl UserFiles {
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn busy(&self) -> MutexGuard<'_, HashSet<VirtualPath>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `path` as written in place; Busy if it already is.
    pub fn claim(&self, path: &VirtualPath) -> StorageResult<()> {
        if self.busy().insert(path.clone()) {
            Ok(())
        } else {
            Err(StorageError::Busy)
        }
    }

    pub fn release(&self, path: &VirtualPath) {
        self.busy().remove(path);
    }

    /// Busy if `path`, or anything inside it, is being written in place.
    pub fn ensure_idle(&self, path: &VirtualPath) -> StorageResult<()> {
        match self.busy().iter().any(|busy| busy.is_within(path)) {
            true => Err(StorageError::Busy),
            false => Ok(()),
        }
    }
}

/// This daemon's name among those sharing an FTP root: made up at its first
/// start and kept in its data directory.
pub fn daemon_name(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("daemon.id");
    match std::fs::read_to_string(&path) {
        Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => {
            let name = format!("{:016x}", rand::random::<u64>());
            std::fs::write(&path, &name)?;
            Ok(name)
        }
    }
}

/// All homes: the directory service for accounting, the hidden staging
/// directory uploads grow in, and the per-user shared state.
pub struct Homes {
    pub directory: Arc<Directory>,
    pub staging: Arc<Dir>,
    users: Mutex<HashMap<UserId, Weak<UserFiles>>>,
}

/// Where uploads grow until complete, inside the FTP root but in no home:
/// one folder per daemon (named by `daemon`), so daemons sharing the root
/// never touch each other's uploads in progress.
pub const STAGING_DIR: &str = ".staging";

/// Creates `name` in `dir` unless it is there already.
fn ensure_dir(dir: &Dir, name: &str) -> std::io::Result<()> {
    match dir.create_dir(name) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

impl Homes {
    pub fn open(directory: Arc<Directory>, root: &Path, daemon: &str) -> std::io::Result<Self> {
        let root_dir = Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        ensure_dir(&root_dir, STAGING_DIR)?;
        let all_staging = root_dir.open_dir(STAGING_DIR)?;
        ensure_dir(&all_staging, daemon)?;
        let staging = all_staging.open_dir(daemon)?;
        // Parts this daemon left by a crash belong to no upload any more, nor
        // do those of older versions, which staged in the folder itself.
        for dir in [&staging, &all_staging] {
            for entry in dir.entries()? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    let _ = dir.remove_file(entry.file_name());
                }
            }
        }
        Ok(Self {
            directory,
            staging: Arc::new(staging),
            users: Mutex::new(HashMap::new()),
        })
    }

    /// Opens user `id`'s home for a signed-in session.
    pub fn home(self: &Arc<Self>, id: UserId, home: &Path) -> std::io::Result<Home> {
        let dir = Dir::open_ambient_dir(home, cap_std::ambient_authority())?;
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.retain(|_, files| files.strong_count() > 0);
        let files = match users.get(&id).and_then(Weak::upgrade) {
            Some(files) => files,
            None => {
                let files = Arc::new(UserFiles::default());
                users.insert(id, Arc::downgrade(&files));
                files
            }
        };
        Ok(Home {
            user: id,
            dir: Arc::new(dir),
            files,
            homes: self.clone(),
        })
    }
}

/// A signed-in user's home.
#[derive(Clone)]
pub struct Home {
    pub user: UserId,
    pub dir: Arc<Dir>,
    pub files: Arc<UserFiles>,
    pub homes: Arc<Homes>,
}

/// A directory entry for listings.
pub struct Entry {
    pub name: String,
    pub meta: Metadata,
}

impl Home {
    pub fn directory(&self) -> &Directory {
        &self.homes.directory
    }

    /// Metadata of `path` (not following a final symlink).
    pub async fn stat(&self, path: &VirtualPath) -> StorageResult<Metadata> {
        let (dir, rel) = (self.dir.clone(), path.relative());
        blocking(move || Ok(dir.symlink_metadata(rel)?)).await
    }

    /// Size of the plain file at `path`.
    pub async fn file_size(&self, path: &VirtualPath) -> StorageResult<u64> {
        let meta = self.stat(path).await?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(StorageError::NotAFile)
        }
    }

    /// Entries of the directory at `path`, or the file itself; symlinks are
    /// never shown, so no listing reveals where one points.
    /// At most `limit` entries (a folder with more is listed in part, and the
    /// cut logged), so one listing cannot take unbounded memory.
    pub async fn list(&self, path: &VirtualPath, limit: usize) -> StorageResult<Vec<Entry>> {
        let (dir, rel, name) = (self.dir.clone(), path.relative(), path.name().to_owned());
        blocking(move || {
            let meta = dir.symlink_metadata(&rel)?;
            if meta.is_file() {
                return Ok(vec![Entry { name, meta }]);
            }
            if !meta.is_dir() {
                return Err(StorageError::NotFound);
            }
            let mut entries = Vec::new();
            for entry in dir.read_dir(&rel)? {
                if entries.len() == limit {
                    tracing::warn!(limit, "a listing was cut short");
                    break;
                }
                let entry = entry?;
                let meta = entry.metadata()?;
                if meta.is_file() || meta.is_dir() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    entries.push(Entry { name, meta });
                }
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(entries)
        })
        .await
    }

    pub async fn make_dir(&self, path: &VirtualPath) -> StorageResult<()> {
        if path.is_root() {
            return Err(StorageError::Exists);
        }
        let (dir, rel) = (self.dir.clone(), path.relative());
        blocking(move || Ok(dir.create_dir(rel)?)).await
    }

    pub async fn remove_dir(&self, path: &VirtualPath) -> StorageResult<()> {
        if path.is_root() {
            return Err(StorageError::Denied);
        }
        self.files.ensure_idle(path)?;
        let (dir, rel) = (self.dir.clone(), path.relative());
        blocking(move || Ok(dir.remove_dir(rel)?)).await
    }

    /// Deletes a plain file and gives its bytes back to the quota.
    pub async fn delete(&self, path: &VirtualPath) -> StorageResult<()> {
        let home = self.clone();
        let path = path.clone();
        blocking(move || {
            let _user = home.files.lock();
            home.files.ensure_idle(&path)?;
            let rel = path.relative();
            let meta = home.dir.symlink_metadata(&rel)?;
            if meta.is_dir() {
                return Err(StorageError::NotAFile);
            }
            home.dir.remove_file(&rel)?;
            let (bytes, files) = if meta.is_file() {
                (meta.len(), 1)
            } else {
                (0, 0)
            };
            home.record(-(bytes as i64), -files)
        })
        .await
    }

    /// Renames `from` to `to`; a plain file replaced at `to` leaves the usage.
    pub async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> StorageResult<()> {
        if from.is_root() || to.is_root() {
            return Err(StorageError::Denied);
        }
        if to.is_within(from) && to != from {
            return Err(StorageError::BadName("a directory cannot move into itself"));
        }
        let home = self.clone();
        let (from, to) = (from.clone(), to.clone());
        blocking(move || {
            let _user = home.files.lock();
            home.files.ensure_idle(&from)?;
            home.files.ensure_idle(&to)?;
            home.dir.symlink_metadata(from.relative())?;
            let replaced = match home.dir.symlink_metadata(to.relative()) {
                Ok(meta) if meta.is_file() && from != to => Some(meta.len()),
                _ => None,
            };
            home.dir.rename(from.relative(), &home.dir, to.relative())?;
            match replaced {
                Some(bytes) => home.record(-(bytes as i64), -1),
                None => Ok(()),
            }
        })
        .await
    }

    /// Sets a plain file's modification time (MFMT).
    pub async fn set_modified(&self, path: &VirtualPath, time: SystemTime) -> StorageResult<()> {
        let (dir, rel) = (self.dir.clone(), path.relative());
        blocking(move || {
            if !dir.symlink_metadata(&rel)?.is_file() {
                return Err(StorageError::NotAFile);
            }
            let file = dir.open(&rel)?.into_std();
            file.set_modified(time)?;
            Ok(())
        })
        .await
    }

    /// Opens a plain file for reading from `offset` (554 past its end).
    pub async fn open_read(&self, path: &VirtualPath, offset: u64) -> StorageResult<std::fs::File> {
        let (dir, rel) = (self.dir.clone(), path.relative());
        blocking(move || {
            let file = dir.open(&rel)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(StorageError::NotAFile);
            }
            if offset > meta.len() {
                return Err(StorageError::BadOffset);
            }
            let mut file = file.into_std();
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))?;
            Ok(file)
        })
        .await
    }

    /// Records a change of this user's usage (called under the user's lock).
    pub fn record(&self, bytes: i64, files: i64) -> StorageResult<()> {
        Ok(self.directory().ftp.ftp_record(self.user, bytes, files)?)
    }
}
