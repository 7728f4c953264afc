//! The admin API's connection handling: HTTP/1.1 through hyper with a header
//! read timeout (which also ends idle keep-alive connections), a timeout per
//! request, and caps on open connections in total and per client address, so
//! slow or idle clients cannot hold the API (or the process's descriptors)
//! hostage. In-flight requests finish on shutdown.

use crate::domain::signin::client_bucket;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Limits on the connections the server keeps.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
    /// Trusted reverse proxies: many clients share their address, so only
    /// the total counts for them.
    pub proxies: Vec<ipnet::IpNet>,
}

/// Open connections, in total and per address.
#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; leaving lets the next one in.
struct Admission {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

fn admit(
    open: &Arc<Mutex<Open>>,
    address: IpAddr,
    proxy: bool,
    limits: &ConnectionLimits,
) -> Option<Admission> {
    let mut state = open.lock().unwrap_or_else(|p| p.into_inner());
    let from_address = state.by_address.get(&address).copied().unwrap_or(0);
    if state.total >= limits.max_connections || (from_address >= limits.max_per_address && !proxy) {
        return None;
    }
    state.total += 1;
    *state.by_address.entry(address).or_default() += 1;
    Some(Admission {
        open: open.clone(),
        address,
    })
}

/// Serves `router` on `listener` until `stopped` turns true, then waits for
/// the requests in flight. With `tls`, each connection is a TLS one (the
/// handshake within the header timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open::default()));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a reset before accept: keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = stopped.wait_for(|stop| *stop).await; } => break,
        };
        let proxy = limits.proxies.iter().any(|net| net.contains(&peer.ip()));
        let Some(admission) = admit(&open, client_bucket(peer.ip()), proxy, &limits) else {
            tracing::debug!(%peer, "connection refused: too many open");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let (watcher, builder) = (graceful.watcher(), builder.clone());
        let tls = tls.clone();
        let handshake_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let _admission = admission;
            let served = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let connection =
                                builder.serve_connection(TokioIo::new(stream), service);
                            watcher.watch(connection).await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
