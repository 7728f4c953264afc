//! Wiring: opens the store, builds the directory service, serves the admin API
//! and FTPS, and shuts down gracefully (in-flight requests finish, the store is flushed).

use crate::config::{Config, MissingUserAction};
use crate::domain::clock::{Clock, SystemClock};
use crate::service::Directory;
use crate::service::secrets::{self, SecretSealer};
use crate::service::sync::{SyncMode, SyncPolicy, SyncReport};
use crate::store::sled::SledStore;
use anyhow::Context;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const ROOT_TOKEN_FILE: &str = "root.token";

/// A started daemon: its bound address and a handle to stop it.
pub struct Running {
    pub http_addr: SocketAddr,
    /// The FTPS control address, when FTP is enabled.
    pub ftp_addr: Option<SocketAddr>,
    ftp_task: Option<JoinHandle<()>>,
    mail_task: Option<JoinHandle<()>>,
    /// The certificate pair of FTPS and HTTPS, read again on SIGHUP.
    certs: Option<Arc<crate::tls::CertStore>>,
    pub directory: Arc<Directory>,
    stop: watch::Sender<bool>,
    http_task: JoinHandle<std::io::Result<()>>,
}

/// Opens the store and the directory service; on the first start, writes the
/// root token file.
fn open_directory(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Directory> {
    let open_files = crate::host::harden_process();
    tracing::debug!(open_files, "umask 077; open-files limit");
    crate::host::make_private(&config.data_dir).with_context(|| {
        format!(
            "cannot create or protect data_dir {}",
            config.data_dir.display()
        )
    })?;
    let store = SledStore::open(&config.data_dir, config.store.cache_mb * 1024 * 1024)
        .with_context(|| {
            format!(
                "cannot open the store in {} (is a daemon running on it?)",
                config.data_dir.display()
            )
        })?;
    let (directory, root_token) =
        Directory::open(Arc::new(store), config, clock, sealer(&config.data_dir)?)
            .context("cannot open the directory")?;
    if let Some(token) = root_token {
        let path = config.data_dir.join(ROOT_TOKEN_FILE);
        write_secret_file(&path, &token)
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(file = %path.display(), "first start: root API token written");
    }
    Ok(directory)
}

/// Connects the directory to LDAP when `ldap.url` is set.
fn attach_ldap(directory: &Directory, config: &Config) -> anyhow::Result<bool> {
    if config.ldap.url.is_none() {
        return Ok(false);
    }
    let ldap = crate::ldap::LdapDirectory::new(&config.ldap).context("LDAP setup")?;
    let policy = SyncPolicy {
        deactivate_missing: config.ldap.missing_user_action == MissingUserAction::Deactivate,
        max_missing_ratio: config.ldap.max_missing_ratio,
    };
    directory.sync.set_external(Arc::new(ldap), policy);
    Ok(true)
}

/// Runs a directory sync every `interval` until `stopped` turns true.
async fn scheduled_sync(
    directory: Arc<Directory>,
    interval: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let mode = directory.sync.scheduled_sync_mode();
        if let Err(error) = directory.sync.sync_directory(mode, &|_| {}).await {
            tracing::warn!(%error, "scheduled directory sync did not run");
        }
    }
}

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
    write_secret_file(&path, &token).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(file = %path.display(), "root API token reset");
    Ok(path)
}

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

/// `gatehouse users export`: writes every user as CSV to `out` (a file made
/// 0600 once the store is open, or standard output), calling `progress` with
/// the count after each page. Returns how many were written.
pub fn export_users(
    config: &Config,
    out: Option<&std::path::Path>,
    progress: &dyn Fn(usize),
) -> anyhow::Result<usize> {
    let directory = open_directory(config, Arc::new(SystemClock))?;
    let principal = root_principal(&directory)?;
    let mut out: Box<dyn std::io::Write> = match out {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::stdout().lock()),
    };
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

/// Starts everything `config` asks for, with `clock` as the time source.
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    crate::telemetry::install();
    let directory = Arc::new(open_directory(config, clock)?);
    let ldap = attach_ldap(&directory, config)?;
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on http.listen = {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let sso = crate::sso::SsoProviders::new(&config.sso, &config.http.public_url)
        .context("single sign-on setup")?;
    let router = crate::http::router(directory.clone(), Arc::new(sso), &config.http);
    let (stop, stopped) = watch::channel(false);
    let certs = match config.ftp.enabled || config.http.tls {
        true => {
            let paths = crate::tls::resolve(&config.tls).context("TLS setup")?;
            Some(Arc::new(
                crate::tls::CertStore::load(paths).context("TLS setup")?,
            ))
        }
        false => None,
    };
    let http_tls = match (config.http.tls, &certs) {
        (true, Some(certs)) => {
            let mut server =
                crate::tls::server_config(certs.clone()).context("TLS for the admin API")?;
            server.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
        }
        _ => None,
    };
    let ftp = match (config.ftp.enabled, &certs) {
        (true, Some(certs)) => {
            let moved = directory
                .ftp
                .rename_homes_to_ids()
                .context("renaming FTP homes to user ids")?;
            if moved > 0 {
                tracing::info!(moved, "FTP homes now named by user id");
            }
            Some(
                crate::ftp::start(directory.clone(), config, certs.clone(), stop.subscribe())
                    .await?,
            )
        }
        _ => None,
    };
    let limits = crate::http::server::ConnectionLimits {
        header_timeout: config.http.header_timeout,
        max_connections: config.http.max_connections,
        max_per_address: config.http.max_connections_per_address,
        proxies: config.http.trusted_proxies.clone(),
    };
    let http_task = tokio::spawn(crate::http::server::serve(
        listener, router, limits, http_tls, stopped,
    ));
    tracing::info!(%http_addr, "admin API listening");
    if ldap {
        tokio::spawn(scheduled_sync(
            directory.clone(),
            config.ldap.sync_interval,
            stop.subscribe(),
        ));
    }
    let mail_task = match config.mail.enabled() {
        true => {
            let worker =
                crate::mail::Worker::new(directory.clone(), &config.mail, &config.http.public_url)
                    .context("mail setup")?;
            Some(tokio::spawn(worker.run(stop.subscribe())))
        }
        false => None,
    };
    let (ftp_addr, ftp_task) = ftp.map(|server| (server.addr, server.task)).unzip();
    Ok(Running {
        http_addr,
        ftp_addr,
        ftp_task,
        mail_task,
        certs,
        directory,
        stop,
        http_task,
    })
}

impl Running {
    /// Reads the TLS certificate and key again: new handshakes (HTTPS and
    /// FTPS) get the new pair, open connections and sessions keep theirs.
    pub fn reload_certificates(&self) {
        let Some(certs) = &self.certs else { return };
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(error) => {
                tracing::error!(%error, "TLS certificate not reloaded; the old one stays")
            }
        }
    }

    /// Stops accepting, lets in-flight requests finish, then flushes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.http_task
            .await
            .context("HTTP task panicked")?
            .context("HTTP server failed")?;
        if let Some(ftp_task) = self.ftp_task {
            ftp_task.await.context("FTP task panicked")?;
        }
        if let Some(mail_task) = self.mail_task {
            mail_task.await.context("mail task panicked")?;
        }
        self.directory.flush().context("flushing the store")?;
        tracing::info!("stopped; store flushed");
        Ok(())
    }
}

/// Runs the daemon until SIGTERM or ctrl-c.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Listening before anything starts: a SIGHUP's default action would end
    // the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let running = Arc::new(start(&config, Arc::new(SystemClock)).await?);
    // Under systemd (Type=notify): ready now; elsewhere this does nothing.
    if let Err(error) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::debug!(%error, "no service manager to tell we are ready");
    }
    let reloader = match hangups {
        Ok(hangups) => Some(tokio::spawn(reload_on_hangup(running.clone(), hangups))),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP: certificates reload only at restart");
            None
        }
    };
    wait_for_signal().await;
    if let Some(reloader) = reloader {
        reloader.abort();
        let _ = reloader.await;
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let running = Arc::into_inner(running).context("the daemon is still in use")?;
    tracing::info!("shutting down");
    running.shutdown().await
}

/// Reloads the certificates on each SIGHUP (`systemctl reload`).
async fn reload_on_hangup(running: Arc<Running>, mut hangups: tokio::signal::unix::Signal) {
    while hangups.recv().await.is_some() {
        running.reload_certificates();
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The key that seals secrets at rest, from `data_dir/secret.key` (created,
/// mode 0600, on first start). Losing it loses every sealed 2FA seed.
fn sealer(data_dir: &Path) -> anyhow::Result<SecretSealer> {
    let path = data_dir.join(secrets::KEY_FILE);
    let encoded = match std::fs::read_to_string(&path) {
        Ok(encoded) => encoded,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretSealer::generate_key()?;
            let encoded = data_encoding::HEXLOWER.encode(&key);
            write_secret_file(&path, &encoded)
                .with_context(|| format!("cannot write {}", path.display()))?;
            encoded
        }
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let key: [u8; secrets::KEY_LEN] = data_encoding::HEXLOWER
        .decode(encoded.trim().as_bytes())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("{} does not hold a 256-bit hex key", path.display()))?;
    Ok(SecretSealer::new(&key)?)
}

/// Writes `secret` to `path`, readable by the owner only.
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{secret}")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        writeln!(file, "{secret}")
    }
}
