//! The FTPS endpoint's settings: listener, passive ports, homes, and the TLS
//! certificate it serves.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The FTPS endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FtpConfig {
    /// Whether `serve` also serves FTPS.
    pub enabled: bool,
    /// Address and port of the FTPS control connection (explicit TLS, AUTH TLS).
    pub listen: SocketAddr,
    /// Passive data ports, "first-last".
    pub passive_ports: PortRange,
    /// IPv4 address or DNS name announced in PASV replies (for NAT); default: the
    /// address the client connected to.
    pub passive_host: Option<String>,
    /// Directory holding one home per FTP account; default `<data_dir>/ftp`.
    pub root: Option<PathBuf>,
    /// Sub-folders created in every new home, e.g. ["incoming", "done"].
    pub layout: Vec<String>,
    /// Members of these groups may use FTP without a per-user account action.
    pub allowed_groups: Vec<String>,
    /// Quota in MiB for accounts created through `allowed_groups`; unset means none.
    pub default_quota_mb: Option<u64>,
    /// File-count quota for accounts created through `allowed_groups`; unset means none.
    pub default_quota_files: Option<u64>,
    /// Whether PORT and EPRT (active mode) are allowed; only ever to the
    /// control connection's own address.
    pub active_mode: bool,
    /// Refuse data connections that do not resume the control connection's
    /// TLS session (vsftpd's `require_ssl_reuse`). Stock Python ftplib never
    /// resumes, so it is off by default.
    pub require_tls_session_reuse: bool,
    /// Sessions closed after this long without a command.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time from connecting to a completed sign-in.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// Time for a data connection to arrive and for each read or write on it.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    /// Sessions at once, in total.
    pub max_sessions: usize,
    /// Sessions at once from one client address.
    pub max_sessions_per_address: usize,
}

/// An inclusive range of TCP ports, written "first-last".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// TLS material for FTPS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; default `certs/gatehouse.crt` (generated when neither file exists).
    pub cert: Option<PathBuf>,
    /// PEM private key; default `certs/gatehouse.key`.
    pub key: Option<PathBuf>,
}

impl Default for FtpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 2121)),
            passive_ports: PortRange {
                first: 50000,
                last: 50999,
            },
            passive_host: None,
            root: None,
            layout: Vec::new(),
            allowed_groups: Vec::new(),
            default_quota_mb: None,
            default_quota_files: None,
            active_mode: false,
            require_tls_session_reuse: false,
            idle_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(60),
            data_timeout: Duration::from_secs(60),
            max_sessions: 1000,
            max_sessions_per_address: 100,
        }
    }
}

impl FtpConfig {
    /// The homes directory as an absolute path: `root`, or `<data_dir>/ftp`.
    pub fn root_dir(&self, data_dir: &Path) -> PathBuf {
        let root = self.root.clone().unwrap_or_else(|| data_dir.join("ftp"));
        std::path::absolute(&root).unwrap_or(root)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{raw}` is not a port range like \"50000-50100\"");
        let (first, last) = raw.split_once('-').ok_or_else(bad)?;
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok(Self { first, last })
    }
}
