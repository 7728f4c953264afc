//! The FTP storage backend: the libunftp filesystem backend (capability-based,
//! so no path, `..` or symlink leaves the user's home) wrapped with quota
//! accounting. Uploads are our own: large buffers, the quota checked while the
//! bytes flow, and a failed upload leaves neither a partial file nor a usage change.

use super::auth::FtpUser;
use crate::service::Directory;
use async_trait::async_trait;
use cap_std::fs::{Dir, OpenOptions};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, Result, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

/// Bytes moved per write to disk.
const CHUNK: usize = 1024 * 1024;
/// Quota reserved ahead of the bytes, so most chunks need no bookkeeping.
const RESERVE_STEP: u64 = 8 * 1024 * 1024;

/// One session's view of storage: the user's home, with quota accounting.
pub struct QuotaStorage {
    inner: std::result::Result<Filesystem, String>,
    home: Option<Arc<Dir>>,
    directory: Arc<Directory>,
}

impl fmt::Debug for QuotaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaStorage")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn local_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::LocalError, message.into())
}

/// A path below the home, without the leading `/` libunftp gives.
fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

impl QuotaStorage {
    pub fn new(root: &Path, directory: Arc<Directory>) -> Self {
        let inner = Filesystem::new(root)
            .map_err(|e| format!("cannot open FTP root {}: {e}", root.display()));
        Self {
            inner,
            home: None,
            directory,
        }
    }

    fn inner(&self) -> Result<&Filesystem> {
        self.inner
            .as_ref()
            .map_err(|message| local_error(message.clone()))
    }

    fn home(&self) -> Result<Arc<Dir>> {
        self.home
            .clone()
            .ok_or_else(|| Error::from(ErrorKind::PermissionDenied))
    }

    fn record(&self, user: &FtpUser, bytes: i64, files: i64) -> Result<()> {
        self.directory
            .ftp
            .ftp_record(user.id, bytes, files)
            .map_err(|e| local_error(e.to_string()))
    }

    /// Size of the regular file at `path`, if there is one.
    async fn file_size(&self, user: &FtpUser, path: &Path) -> Option<u64> {
        let meta = StorageBackend::<FtpUser>::metadata(self.inner().ok()?, user, path)
            .await
            .ok()?;
        meta.is_file().then(|| meta.len())
    }
}

/// Keeps an upload inside its quota: reserves ahead of the bytes written.
struct QuotaGuard<'a> {
    directory: &'a Directory,
    user: u64,
    /// Quota needed only for growth beyond the file's size before the upload.
    baseline: u64,
    reserved: u64,
}

impl QuotaGuard<'_> {
    /// Admits the file growing to `size` bytes, or reports the quota exceeded.
    fn admit(&mut self, size: u64) -> Result<()> {
        let growth = size.saturating_sub(self.baseline);
        if growth <= self.reserved {
            return Ok(());
        }
        let need = growth - self.reserved;
        for ask in [need.max(RESERVE_STEP), need] {
            if self.directory.ftp.ftp_reserve(self.user, ask) {
                self.reserved += ask;
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::ExceededStorageAllocationError,
            "the upload would exceed the quota",
        ))
    }
}

impl Drop for QuotaGuard<'_> {
    fn drop(&mut self) {
        self.directory.ftp.ftp_release(self.user, self.reserved);
    }
}

/// Copies `input` into `file` in large chunks, admitting each chunk against the
/// quota first. Returns the bytes written.
async fn copy_within_quota(
    input: &mut (impl AsyncRead + Unpin),
    file: &mut tokio::fs::File,
    start: u64,
    quota: &mut QuotaGuard<'_>,
) -> Result<u64> {
    let mut buffer = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let mut filled = 0;
        while filled < CHUNK {
            let read = input.read(&mut buffer[filled..]).await?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        if filled == 0 {
            break;
        }
        quota.admit(start + written + filled as u64)?;
        file.write_all(&buffer[..filled]).await?;
        written += filled as u64;
    }
    file.flush().await?;
    Ok(written)
}

/// Name of the hidden file an upload goes to before it replaces its target.
fn part_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique: u64 = rand::random();
    target.with_file_name(format!(".{name}.{unique:016x}.part"))
}

#[async_trait]
impl StorageBackend<FtpUser> for QuotaStorage {
    type Metadata = Meta;

    fn enter(&mut self, user: &FtpUser) -> std::io::Result<()> {
        let inner = self
            .inner
            .as_mut()
            .map_err(|message| std::io::Error::other(message.clone()))?;
        StorageBackend::<FtpUser>::enter(inner, user)?;
        let home = Dir::open_ambient_dir(&user.home, cap_std::ambient_authority())?;
        self.home = Some(Arc::new(home));
        Ok(())
    }

    fn supported_features(&self) -> u32 {
        unftp_core::storage::FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Meta> {
        self.inner()?.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        self.inner()?.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        let home = self.home()?;
        let path = relative(path.as_ref()).to_owned();
        let file = tokio::task::spawn_blocking(move || home.open(path))
            .await
            .map_err(|e| local_error(e.to_string()))??;
        let mut file = tokio::fs::File::from_std(file.into_std());
        if start_pos > 0 {
            file.seek(std::io::SeekFrom::Start(start_pos)).await?;
        }
        Ok(Box::new(tokio::io::BufReader::with_capacity(CHUNK, file)))
    }

    async fn put<
        P: AsRef<Path> + Send + fmt::Debug,
        R: AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        user: &FtpUser,
        mut input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let home = self.home()?;
        let target = relative(path.as_ref()).to_owned();
        let previous = self.file_size(user, path.as_ref()).await;
        let old_size = previous.unwrap_or(0);
        // A fresh upload goes to a hidden part file and replaces the target only
        // when complete; a resumed or appended one writes in place.
        let in_place = start_pos > 0;
        let written_path = if in_place {
            target.clone()
        } else {
            part_name(&target)
        };
        let open_home = home.clone();
        let open_path = written_path.clone();
        let file = tokio::task::spawn_blocking(move || {
            let mut options = OpenOptions::new();
            options.write(true).create(true);
            open_home.open_with(open_path, &options)
        })
        .await
        .map_err(|e| local_error(e.to_string()))??;
        let mut file = tokio::fs::File::from_std(file.into_std());
        file.set_len(start_pos).await?;
        file.seek(std::io::SeekFrom::Start(start_pos)).await?;
        let mut quota = QuotaGuard {
            directory: &self.directory,
            user: user.id,
            baseline: old_size,
            reserved: 0,
        };
        let outcome = copy_within_quota(&mut input, &mut file, start_pos, &mut quota).await;
        drop(file);
        let written = match outcome {
            Ok(written) => written,
            Err(error) => {
                let cleanup = if in_place {
                    let mut options = OpenOptions::new();
                    options.write(true);
                    home.open_with(&target, &options)
                        .and_then(|f| f.set_len(start_pos))
                } else {
                    home.remove_file(&written_path)
                };
                if let Err(cleanup_error) = cleanup {
                    tracing::warn!(user_id = user.id, error = %cleanup_error, "could not clean up a failed upload");
                }
                let kept = if in_place {
                    start_pos as i64 - old_size as i64
                } else {
                    0
                };
                self.record(user, kept, 0)?;
                return Err(error);
            }
        };
        if !in_place {
            let (from, to, dir) = (written_path.clone(), target.clone(), home.clone());
            tokio::task::spawn_blocking(move || dir.rename(from, &dir, to))
                .await
                .map_err(|e| local_error(e.to_string()))??;
        }
        let final_size = start_pos + written;
        let new_file = i64::from(previous.is_none());
        self.record(user, final_size as i64 - old_size as i64, new_file)?;
        Ok(written)
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let size = self.file_size(user, path.as_ref()).await;
        self.inner()?.del(user, path).await?;
        match size {
            Some(size) => self.record(user, -(size as i64), -1),
            None => Ok(()),
        }
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpUser,
        from: P,
        to: P,
    ) -> Result<()> {
        let same = relative(from.as_ref()) == relative(to.as_ref());
        let replaced = if same {
            None
        } else {
            self.file_size(user, to.as_ref()).await
        };
        self.inner()?.rename(user, from, to).await?;
        match replaced {
            Some(size) => self.record(user, -(size as i64), -1),
            None => Ok(()),
        }
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        self.inner()?.cwd(user, path).await
    }
}
