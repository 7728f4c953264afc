//! Files gatehouse writes whole and private (mode 0600): written aside,
//! synced and renamed into place, so a failed or interrupted write never
//! leaves a half file where a good one was.

use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// A new file at `path`, readable by the owner only.
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes a file at `path` through `write` into a 0600 temporary file beside
/// it, synced, then renamed over `path`: an interrupted or failed write
/// leaves any earlier file at `path` as it was.
pub fn write_aside<T>(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let mut file = private_file(&temporary)?;
    let written = write(&mut file).and_then(|value| {
        file.sync_all().context("syncing")?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(value)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Writes `secret` and a newline to `path` (0600), whole or not at all.
pub(crate) fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    write_aside(path, |file| Ok(writeln!(file, "{secret}")?))
}
