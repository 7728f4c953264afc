//! The FTPS endpoint, our own protocol engine on tokio and rustls: explicit
//! TLS required for sign-in and every data connection, users signed in
//! through the directory and rooted in their home, held to their quota.
//!
//! Reading order: `command.rs` (parser), `reply.rs` (reply codes),
//! `session.rs` (state machine) and `files.rs` (its file commands),
//! `data.rs` (data channel), `storage.rs` and `upload.rs` (homes and quota).

mod command;
mod control;
mod data;
mod files;
mod listing;
mod path;
mod reply;
mod session;
mod storage;
mod tls;
mod upload;

pub use tls::TlsSetupError;

use crate::config::Config;
use crate::service::Directory;
use crate::tls::CertStore;
use session::{SessionRules, Shared};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long sessions get to finish their transfer at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    #[error("cannot prepare the FTP root {0}: {1}")]
    Root(String, std::io::Error),
    #[error("cannot listen on ftp.listen = {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("ftp.passive_host = {0}: {1}")]
    PassiveHost(String, String),
    #[error("FTPS TLS setup failed: {0}")]
    Tls(#[from] TlsSetupError),
}

/// A running FTPS server.
pub struct FtpServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Starts FTPS; it stops when `stop` turns true, giving transfers a grace period.
pub async fn start(
    directory: Arc<Directory>,
    config: &Config,
    certs: Arc<CertStore>,
    stop: watch::Receiver<bool>,
) -> Result<FtpServer, FtpError> {
    let ftp = &config.ftp;
    let root = ftp.root_dir(&config.data_dir);
    let root_error = |e| FtpError::Root(root.display().to_string(), e);
    std::fs::create_dir_all(&root).map_err(root_error)?;
    let daemon = storage::daemon_name(&config.data_dir).map_err(root_error)?;
    let homes = storage::Homes::open(directory, &root, &daemon).map_err(root_error)?;
    let passive_ip = match &ftp.passive_host {
        Some(host) => Some(resolve_ipv4(host).await?),
        None => None,
    };
    let shared = Arc::new(Shared {
        homes: Arc::new(homes),
        tls: tls::FtpTls::new(certs)?,
        rules: SessionRules {
            passive_ports: ftp.passive_ports,
            passive_ip,
            active_mode: ftp.active_mode,
            require_session_reuse: ftp.require_tls_session_reuse,
            idle_timeout: ftp.idle_timeout,
            login_timeout: ftp.login_timeout,
            data_timeout: ftp.data_timeout,
        },
    });
    let listener = TcpListener::bind(ftp.listen)
        .await
        .map_err(|e| FtpError::Bind(ftp.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| FtpError::Bind(ftp.listen, e))?;
    let caps = Arc::new(SessionCaps::new(
        ftp.max_sessions,
        ftp.max_sessions_per_address,
    ));
    let task = tokio::spawn(accept_loop(listener, shared, caps, stop));
    tracing::info!(%addr, root = %root.display(), "FTPS listening");
    Ok(FtpServer { addr, task })
}

async fn resolve_ipv4(host: &str) -> Result<std::net::Ipv4Addr, FtpError> {
    let error = |why: String| FtpError::PassiveHost(host.to_owned(), why);
    let addresses = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| error(e.to_string()))?;
    addresses
        .filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| error("no IPv4 address (PASV announces IPv4)".into()))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    caps: Arc<SessionCaps>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "FTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = session::stopped(&mut stop) => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        // Counted per client (an IPv6 /64 is one client, as in the throttle).
        let client = crate::domain::signin::client_bucket(peer.ip());
        let Some(slot) = caps.admit(client) else {
            tracing::warn!(%peer, "FTP session refused: too many sessions");
            tokio::spawn(refuse(stream));
            continue;
        };
        let (shared, stop) = (shared.clone(), stop.clone());
        sessions.spawn(async move {
            crate::telemetry::ftp_session(true);
            session::serve(shared, stream, stop).await;
            crate::telemetry::ftp_session(false);
            drop(slot);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
}

async fn refuse(mut stream: TcpStream) {
    let reply = reply::closing("Too many sessions; try again later");
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&reply.encode())).await;
}

/// Session counts, in total and per client address.
struct SessionCaps {
    total: usize,
    per_address: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted session; gives its place back when dropped.
struct Slot {
    caps: Arc<SessionCaps>,
    ip: IpAddr,
}

impl SessionCaps {
    fn new(total: usize, per_address: usize) -> Self {
        Self {
            total,
            per_address,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_address) = &mut *open;
        let here = by_address.entry(ip).or_insert(0);
        if *total >= self.total || *here >= self.per_address {
            if *here == 0 {
                by_address.remove(&ip);
            }
            return None;
        }
        *here += 1;
        *total += 1;
        Some(Slot {
            caps: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_address) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(here) = by_address.get_mut(&self.ip) {
            *here -= 1;
            if *here == 0 {
                by_address.remove(&self.ip);
            }
        }
    }
}
