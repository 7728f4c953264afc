//! The commands that work on a stopped daemon's data directory: LDAP sync,
//! root token reset, backup, restore, verify, FTP rescan, CSV export and
//! import. Each opens the store itself (refused while a daemon holds it).

use super::files::{write_aside, write_secret};
use super::{ROOT_TOKEN_FILE, attach_ldap, open_directory};
use crate::config::Config;
use crate::domain::clock::SystemClock;
use crate::service::Directory;
use crate::service::secrets;
use crate::service::sync::{SyncMode, SyncReport};
use crate::store::sled::SledStore;
use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// `gatehouse ldap sync`: one sync run against the store, reporting progress.
pub async fn sync_ldap(
    config: &Config,
    mode: SyncMode,
    progress: &(dyn Fn(usize) + Sync),
) -> anyhow::Result<SyncReport> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    if !attach_ldap(&directory, config)? {
        anyhow::bail!("ldap.url is not set");
    }
    let report = directory
        .sync
        .sync_directory(mode, progress)
        .await
        .context("sync failed")?;
    directory.flush().context("flushing the store")?;
    Ok(report)
}

/// `gatehouse root-token reset`: revokes the root user's API tokens, issues a
/// new one and writes it to the root token file. Returns the file's path.
pub fn reset_root_token(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let token = directory
        .credentials
        .reset_root_token()
        .context("issuing a new root token")?;
    directory.flush().context("flushing the store")?;
    let path = config.data_dir.join(ROOT_TOKEN_FILE);
    write_secret(&path, &token)?;
    tracing::info!(file = %path.display(), "root API token reset");
    Ok(path)
}

/// `gatehouse backup --out FILE` with the daemon stopped: a consistent
/// backup of the store and the sealing key, mode 0600, audited.
pub fn backup(config: &Config, out: &Path) -> anyhow::Result<crate::store::BackupSummary> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let summary = write_aside(out, |file| {
        let mut writer = std::io::BufWriter::new(file);
        let summary = directory
            .backup(None, &mut writer)
            .context("taking the backup")?;
        writer.flush().context("writing the backup")?;
        Ok(summary)
    })?;
    directory.flush().context("flushing the store")?;
    Ok(summary)
}

/// `gatehouse restore FILE`: a backup into an empty data directory, checked
/// whole before anything is written; the store is then opened and verified,
/// and set aside (`store.rejected`) if it does not verify.
pub fn restore(config: &Config, backup: &Path) -> anyhow::Result<crate::store::BackupSummary> {
    if config.store.backend == crate::config::StoreBackend::Postgres {
        anyhow::bail!(
            "a backup is restored into a sled data directory ([store] backend = \"sled\"); \
             bring it to PostgreSQL with `gatehouse migrate-store` from there"
        );
    }
    crate::host::make_private(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let key_path = config.data_dir.join(secrets::KEY_FILE);
    if key_path.exists() {
        anyhow::bail!(
            "{} already holds a sealing key; restore only into an empty data directory",
            config.data_dir.display()
        );
    }
    let (summary, files) = SledStore::restore(&config.data_dir, backup, &[secrets::KEY_FILE])
        .with_context(|| format!("cannot restore {}", backup.display()))?;
    for (_, content) in files {
        write_aside(&key_path, |file| Ok(file.write_all(&content)?))?;
    }
    let verified = open_directory(config, Arc::new(SystemClock)).and_then(|directory| {
        let drift = directory.verify().context("verifying the restored store")?;
        directory.flush().context("flushing the store")?;
        Ok(drift)
    });
    match verified {
        Ok(drift) if drift.is_empty() => Ok(summary),
        outcome => {
            let _ = std::fs::rename(
                config.data_dir.join("store"),
                config.data_dir.join("store.rejected"),
            );
            let _ = std::fs::remove_file(&key_path);
            let why = match outcome {
                Ok(drift) => format!(
                    "{} drifts, first: {}",
                    drift.len(),
                    drift.first().cloned().unwrap_or_default()
                ),
                Err(error) => format!("{error:#}"),
            };
            anyhow::bail!(
                "the restored store is not consistent ({why}); it was moved to store.rejected"
            )
        }
    }
}

/// `gatehouse verify`: every drift between the store's indexes and records.
pub fn verify(config: &Config) -> anyhow::Result<Vec<String>> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    Ok(directory.verify()?)
}

/// `gatehouse ftp rescan`: recomputes every FTP account's usage from disk.
pub fn rescan_ftp_usage(config: &Config) -> anyhow::Result<usize> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let scanned = directory.ftp.rescan_all_ftp().context("rescan failed")?;
    directory.flush().context("flushing the store")?;
    Ok(scanned)
}

/// The root user acting for a command run against a stopped daemon.
fn root_principal(directory: &Directory) -> anyhow::Result<crate::service::Principal> {
    let root = directory
        .accounts
        .find_root()
        .context("the root user is missing")?;
    Ok(crate::service::Principal {
        user: root,
        via: crate::domain::credentials::TokenKind::Api,
    })
}

/// `gatehouse users export`: writes every user as CSV to `out` (a 0600 file,
/// put in place only once complete, or standard output), calling `progress`
/// with the count after each page. Returns how many were written.
pub fn export_users(
    config: &Config,
    out: Option<&Path>,
    progress: &dyn Fn(usize),
) -> anyhow::Result<usize> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let principal = root_principal(&directory)?;
    let export = |out: &mut dyn Write| -> anyhow::Result<usize> {
        let mut query = crate::service::index::UserQuery::default();
        out.write_all(&crate::service::exchange::UserExchange::header())?;
        let mut written = 0;
        loop {
            let page = directory.exchange.export_page(&principal, &query)?;
            out.write_all(&page.csv)?;
            written += page.rows;
            progress(written);
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        out.flush()?;
        Ok(written)
    };
    match out {
        Some(path) => write_aside(path, |file| export(&mut std::io::BufWriter::new(file))),
        None => export(&mut std::io::stdout().lock()),
    }
}

/// `gatehouse users import`: plans and (unless `dry_run`) applies `csv`.
pub async fn import_users(
    config: &Config,
    csv: &[u8],
    mode: crate::service::exchange::ImportMode,
    dry_run: bool,
) -> anyhow::Result<crate::service::exchange::ImportReport> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let principal = root_principal(&directory)?;
    let report = directory
        .exchange
        .import(&principal, csv, mode, dry_run)
        .await?;
    directory.flush().context("flushing the store")?;
    Ok(report)
}

/// `gatehouse migrate-store`: copies the sled store under `from` (its daemon
/// stopped) into the PostgreSQL database at `to` (`None`: the config's
/// `[postgres]` URL), resuming a copy that stopped, and verifies it.
pub fn migrate_store(
    config: &Config,
    from: &std::path::Path,
    to: Option<String>,
    progress: &dyn Fn(&str, u64),
) -> anyhow::Result<crate::store::postgres::CopyReport> {
    let url = match to {
        Some(url) => url,
        None => config
            .postgres
            .database_url()?
            .context("--to postgres without a URL needs postgres.url or postgres.url_file")?
            .expose()
            .to_owned(),
    };
    let source = SledStore::open(from, config.store.cache_mb * 1024 * 1024).with_context(|| {
        format!(
            "cannot open the sled store in {} (is its daemon stopped?)",
            from.display()
        )
    })?;
    let options = crate::store::postgres::PostgresOptions {
        url,
        pool_size: 2,
        acquire_timeout: config.postgres.acquire_timeout,
    };
    Ok(crate::store::postgres::sled_to_postgres(
        &source, &options, progress,
    )?)
}
