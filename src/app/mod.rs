//! Wiring: opens the store, builds the directory service, serves the admin API
//! and FTPS, and shuts down gracefully (in-flight requests finish, the store is
//! flushed). The commands run on a stopped daemon's data directory are in
//! [`offline`]; files written whole and private in [`files`].

mod files;
mod offline;

pub use files::write_aside;
pub use offline::{
    backup, export_users, import_users, migrate_store, rescan_ftp_usage, reset_root_token, restore,
    sync_ldap, verify,
};

use crate::config::StoreBackend;
use crate::config::{Config, MissingUserAction};
use crate::domain::clock::{Clock, SystemClock};
use crate::service::Directory;
use crate::service::secrets::{self, SecretSealer};
use crate::service::sync::SyncPolicy;
use crate::store::postgres::PostgresOptions;
use crate::store::sled::SledStore;
use crate::store::{PostgresStore, Store};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) const ROOT_TOKEN_FILE: &str = "root.token";

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
pub(crate) fn open_directory(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Directory> {
    let open_files = crate::host::harden_process();
    tracing::debug!(open_files, "umask 077; open-files limit");
    crate::host::make_private(&config.data_dir).with_context(|| {
        format!(
            "cannot create or protect data_dir {}",
            config.data_dir.display()
        )
    })?;
    let (directory, root_token) = Directory::open(
        open_store(config)?,
        config,
        clock,
        sealer(&config.data_dir)?,
    )
    .context("cannot open the directory")?;
    if let Some(token) = root_token {
        let path = config.data_dir.join(ROOT_TOKEN_FILE);
        files::write_secret(&path, &token)?;
        tracing::info!(file = %path.display(), "first start: root API token written");
    }
    Ok(directory)
}

/// Opens the store `[store] backend` names.
fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store.backend {
        StoreBackend::Sled => Arc::new(
            SledStore::open(&config.data_dir, config.store.cache_mb * 1024 * 1024).with_context(
                || {
                    format!(
                        "cannot open the store in {} (is a daemon running on it?)",
                        config.data_dir.display()
                    )
                },
            )?,
        ),
        StoreBackend::Postgres => {
            let url = config
                .postgres
                .database_url()?
                .context("store.backend = \"postgres\" needs postgres.url or postgres.url_file")?;
            let options = PostgresOptions {
                url: url.expose().to_owned(),
                pool_size: config.postgres.pool_size,
                acquire_timeout: config.postgres.acquire_timeout,
            };
            Arc::new(PostgresStore::open(&options).context("cannot open the PostgreSQL store")?)
        }
    })
}

/// Connects the directory to LDAP when `ldap.url` is set.
pub(crate) fn attach_ldap(directory: &Directory, config: &Config) -> anyhow::Result<bool> {
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

/// Runs a directory sync every `interval` until `stopped` turns true, while
/// this daemon leads (see [`crate::store::Store::leadership`]).
async fn scheduled_sync(
    directory: Arc<Directory>,
    interval: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let leader = directory.leadership();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if !*leader.borrow() {
            continue;
        }
        let mode = directory.sync.scheduled_sync_mode();
        if let Err(error) = directory.sync.sync_directory(mode, &|_| {}).await {
            tracing::warn!(%error, "scheduled directory sync did not run");
        }
    }
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
            files::write_secret(&path, &encoded)?;
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
