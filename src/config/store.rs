//! Where accounts are kept: the embedded sled store (the default) or a
//! PostgreSQL database shared by several daemons.

use super::{ConfigError, Secret, secret_from};
use serde::Deserialize;
use std::path::PathBuf;

/// Which store holds the directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded, under `data_dir`; one daemon.
    #[default]
    Sled,
    /// A PostgreSQL database (`[postgres]`); any number of daemons.
    Postgres,
}

/// Store selection and tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// Cache of the embedded store's pages, in MiB. Readers are served from the
    /// in-memory snapshot, so this only speeds up writes.
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            cache_mb: 8,
        }
    }
}

/// The PostgreSQL database of `backend = "postgres"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database?sslmode=require`; the
    /// password is better kept in `url_file`.
    pub url: Option<Secret>,
    /// A file (mode 0600) holding the URL.
    pub url_file: Option<PathBuf>,
    /// Connections each daemon keeps open at most (at least 2; one more is
    /// held by the change follower and one by the leader election).
    pub pool_size: u32,
    /// How long a daemon waits for a connection before a request fails.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: std::time::Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            pool_size: 8,
            acquire_timeout: std::time::Duration::from_secs(10),
        }
    }
}

impl PostgresConfig {
    /// The database URL, from `url` or `url_file`.
    pub fn database_url(&self) -> Result<Option<Secret>, ConfigError> {
        secret_from(&self.url, &self.url_file)
    }
}
