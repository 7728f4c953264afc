//! What gatehouse sets on its own process and files at start: a umask that
//! keeps everything it creates private (directories 0700, files 0600), the
//! data directory (store, keys, tokens, FTP homes) made private, and the soft
//! open-files limit raised to the hard one, so thousands of idle clients
//! cannot starve the API and FTPS of descriptors.

use rustix::fs::Mode;
use rustix::process::{Resource, getrlimit, setrlimit, umask};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Applies the umask and the open-files limit; returns the open-files limit.
pub fn harden_process() -> Option<u64> {
    umask(Mode::from_raw_mode(0o077));
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(%error, "could not raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Makes `dir` (created when missing) and what it directly holds private to
/// this user: directories 0700, files 0600.
pub fn make_private(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let mode = if entry.file_type()?.is_dir() {
            0o700
        } else {
            0o600
        };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_becomes_private() {
        let Ok(base) = tempfile::tempdir() else {
            return;
        };
        let data = base.path().join("data");
        assert!(std::fs::create_dir_all(data.join("store")).is_ok());
        assert!(std::fs::write(data.join("root.token"), "x").is_ok());
        assert!(std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).is_ok());
        assert!(make_private(&data).is_ok());
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(mode(&data), Some(0o700));
        assert_eq!(mode(&data.join("store")), Some(0o700));
        assert_eq!(mode(&data.join("root.token")), Some(0o600));
    }
}
