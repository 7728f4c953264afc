//! The FTPS endpoint (libunftp): explicit TLS required for login and data,
//! users signed in through the directory, each rooted in their home, held to
//! their quota by the storage backend in `storage.rs`.

mod auth;
mod storage;

use crate::config::Config;
use crate::service::Directory;
use crate::tls::CertPaths;
use auth::{FtpAuthenticator, FtpUsers};
use libunftp::options::{FtpsRequired, Shutdown};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use storage::QuotaStorage;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long sessions get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    #[error("cannot prepare the FTP root {0}: {1}")]
    Root(String, std::io::Error),
    #[error("cannot listen on ftp.listen = {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("FTPS setup failed: {0}")]
    Server(#[from] libunftp::ServerError),
}

/// A running FTPS server.
pub struct FtpServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Claims the configured address (port 0 picks a free one) and reports it.
fn reserve_address(listen: SocketAddr) -> Result<SocketAddr, FtpError> {
    let probe = std::net::TcpListener::bind(listen).map_err(|e| FtpError::Bind(listen, e))?;
    probe.local_addr().map_err(|e| FtpError::Bind(listen, e))
}

/// Starts FTPS; it stops when `stop` turns true, giving sessions a grace period.
pub fn start(
    directory: Arc<Directory>,
    config: &Config,
    certs: &CertPaths,
    mut stop: watch::Receiver<bool>,
) -> Result<FtpServer, FtpError> {
    let root = config.ftp.root_dir(&config.data_dir);
    std::fs::create_dir_all(&root).map_err(|e| FtpError::Root(root.display().to_string(), e))?;
    let addr = reserve_address(config.ftp.listen)?;
    let storage_directory = directory.clone();
    let storage_root = root.clone();
    let ports = config.ftp.passive_ports;
    let mut builder = libunftp::ServerBuilder::with_user_detail_provider(
        Box::new(move || QuotaStorage::new(&storage_root, storage_directory.clone())),
        Arc::new(FtpUsers::new(directory.clone())),
    )
    .authenticator(Arc::new(FtpAuthenticator::new(directory)))
    .greeting("gatehouse FTPS: AUTH TLS required")
    .ftps(certs.cert.clone(), certs.key.clone())
    .ftps_required(FtpsRequired::All, FtpsRequired::All)
    .passive_ports(ports.first..=ports.last)
    .shutdown_indicator(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        Shutdown::new().grace_period(SHUTDOWN_GRACE)
    });
    if let Some(host) = &config.ftp.passive_host {
        builder = builder.passive_host(host.as_str());
    }
    let server = builder.build()?;
    let task = tokio::spawn(async move {
        if let Err(error) = server.listen(addr.to_string()).await {
            tracing::error!(%error, "FTPS server stopped with an error");
        }
    });
    tracing::info!(%addr, root = %root.display(), "FTPS listening");
    Ok(FtpServer { addr, task })
}
