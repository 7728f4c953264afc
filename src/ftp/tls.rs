//! TLS for FTPS: TLS 1.2 and 1.3 (rustls, ring), and per FTP session a control
//! and a data configuration sharing one private session cache, so a data
//! connection can resume only the TLS session of its own control connection
//! (what `require_tls_session_reuse` checks). Data connections get no session
//! tickets: a client that never reads there (rclone) would lose its close_notify.

use crate::tls::CertStore;
use rustls::ServerConfig;
use rustls::server::StoresServerSessions;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Sessions one FTP session's cache keeps (each control handshake adds a few).
const SESSIONS_PER_CONTROL: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The server's TLS configuration, from which each session derives its own.
#[derive(Debug, Clone)]
pub struct FtpTls {
    base: Arc<ServerConfig>,
}

/// One FTP session's TLS configurations.
#[derive(Debug, Clone)]
pub struct SessionTls {
    pub control: Arc<ServerConfig>,
    pub data: Arc<ServerConfig>,
}

impl FtpTls {
    /// Serves the pair in `certs` (swapped there on reload).
    pub fn new(certs: Arc<CertStore>) -> Result<Self, TlsSetupError> {
        Ok(Self {
            base: Arc::new(crate::tls::server_config(certs)?),
        })
    }

    /// Fresh configurations for a new FTP session, with their own session cache.
    pub fn for_session(&self) -> SessionTls {
        let cache = Arc::new(SessionCache::default());
        let mut control = (*self.base).clone();
        control.session_storage = cache.clone();
        let mut data = control.clone();
        data.send_tls13_tickets = 0;
        SessionTls {
            control: Arc::new(control),
            data: Arc::new(data),
        }
    }
}

/// The sessions issued on one control connection. Resumption is allowed more
/// than once (each data connection resumes the same session), which is safe
/// here: early data is off, and the cache dies with the FTP session.
#[derive(Debug, Default)]
struct SessionCache {
    entries: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
}

impl SessionCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<(Vec<u8>, Vec<u8>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut entries = self.entries();
        entries.retain(|(k, _)| *k != key);
        if entries.len() == SESSIONS_PER_CONTROL {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entries = self.entries();
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}
