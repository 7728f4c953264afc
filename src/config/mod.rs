//! Typed configuration, layered: embedded defaults < TOML file < `GATEHOUSE_*`
//! environment variables (`GATEHOUSE_<SECTION>__<KEY>`, and `GATEHOUSE_DATA_DIR`).
//! Unknown keys and bad values stop start-up with a message naming them.
//! Other `GATEHOUSE_*` names without `__` (`GATEHOUSE_TOKEN`, `GATEHOUSE_URL`
//! for the CLI, or a wrapper script's own) are no config keys and are left alone.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod ftp;
mod ldap;
mod mail;
mod records;
mod sso;
mod store;

pub use ftp::{FtpConfig, PortRange, TlsConfig};
pub use ldap::{GroupMapping, LdapAttributes, LdapConfig, MissingUserAction};
pub use mail::MailConfig;
pub use records::{OrganizationsConfig, PictureConfig, ThumbnailConfig};
pub use sso::{ClaimGroupMapping, SsoConfig, SsoProviderConfig};
pub use store::{PostgresConfig, StoreBackend, StoreConfig};

const ENV_PREFIX: &str = "GATEHOUSE_";
/// The CLI's own variables (not config keys).
const CLI_ENV_NAMES: [&str; 2] = ["TOKEN", "URL"];
/// Top-level keys that may be set from the environment without a section.
const TOP_LEVEL_ENV_KEYS: [&str; 1] = ["data_dir"];

/// Everything gatehouse can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the store and the root token file.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub registration: RegistrationConfig,
    pub passwords: PasswordConfig,
    pub accounts: AccountsConfig,
    pub tokens: TokenConfig,
    pub signin: SignInConfig,
    pub store: StoreConfig,
    pub postgres: PostgresConfig,
    pub ftp: FtpConfig,
    pub tls: TlsConfig,
    pub ldap: LdapConfig,
    pub masking: MaskingConfig,
    pub mail: MailConfig,
    pub sso: SsoConfig,
    pub organizations: OrganizationsConfig,
    pub thumbnails: ThumbnailConfig,
    pub pictures: PictureConfig,
}

/// GDPR masking.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskingConfig {
    /// Record attributes holding personal data, replaced on the records a
    /// masked user owns or created.
    pub record_attributes: Vec<String>,
}

/// The admin API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port the admin API listens on.
    pub listen: SocketAddr,
    /// Base URL users reach the API at; used to build activation and reset links.
    pub public_url: String,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest CSV file `POST /api/v1/users/import` accepts, in bytes. Imports
    /// are not cut off by `request_timeout` (hashing 100,000 passwords takes minutes).
    pub max_import_bytes: usize,
    /// Time a client has to send a request's headers, and how long an idle
    /// keep-alive connection is kept.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time a request (body included) may take before it is answered 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Open connections at most, in total; more are closed at once.
    pub max_connections: usize,
    /// Open connections at most from one client address.
    pub max_connections_per_address: usize,
    /// Reverse proxies (CIDRs) whose `Forwarded` / `X-Forwarded-For` headers
    /// name the client; anyone else's are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header the trusted proxies write: `x-forwarded-for` (nginx,
    /// HAProxy, Traefik) or `forwarded` (RFC 7239). The other is ignored.
    pub forwarded_header: ForwardedHeader,
    /// Serve the admin API over TLS, with the `[tls]` certificate.
    pub tls: bool,
}

/// The forwarding header trusted proxies write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

/// Self-registration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Whether `POST /api/v1/register` accepts new (pending) users.
    pub enabled: bool,
}

/// Password policy and hashing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// Shortest password accepted unless an admin overrides the policy.
    pub min_length: usize,
    /// Longest password accepted, always.
    pub max_length: usize,
    /// Argon2id hashes computed at once; 0 means one per CPU core.
    pub hash_concurrency: usize,
}

/// What deleting an account means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Keep the record, hidden from default lists; the login stays reserved.
    Archive,
    /// Remove the record and free its login and email.
    Delete,
}

/// Account lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// `archive` or `delete`.
    pub on_delete: OnDelete,
}

/// Token lifetimes (humantime strings such as "7d", "1h", "30m").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    #[serde(with = "humantime_serde")]
    pub activation_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub password_reset_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub email_confirmation_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

/// Sign-in throttling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Failed attempts of one login from one client address before a lockout.
    pub max_failures: u32,
    /// Failed attempts from one client address, over all logins, before it is locked.
    pub address_failures: u32,
    /// How long failures are remembered.
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// The first lockout; each further failure doubles it.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// The longest lockout.
    #[serde(with = "humantime_serde")]
    pub max_lockout: Duration,
    /// Failure counters kept (fixed memory, 24 bytes each); the stalest makes room.
    pub tracked_entries: usize,
    /// How long a verified local password is remembered (as a keyed hash);
    /// zero turns the cache off.
    #[serde(with = "humantime_serde")]
    pub password_cache: Duration,
}

/// A secret from the config: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A secret given inline or, preferably, in a file (read now, trailing
/// newline dropped).
fn secret_from(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(secret), _) => Ok(Some(secret.clone())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| Some(Secret(text.trim_end_matches(['\r', '\n']).to_owned())))
            .map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            }),
        (None, None) => Ok(None),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            registration: RegistrationConfig::default(),
            passwords: PasswordConfig::default(),
            accounts: AccountsConfig::default(),
            tokens: TokenConfig::default(),
            signin: SignInConfig::default(),
            store: StoreConfig::default(),
            postgres: PostgresConfig::default(),
            ftp: FtpConfig::default(),
            tls: TlsConfig::default(),
            ldap: LdapConfig::default(),
            masking: MaskingConfig::default(),
            organizations: OrganizationsConfig::default(),
            thumbnails: ThumbnailConfig::default(),
            pictures: PictureConfig::default(),
            mail: MailConfig::default(),
            sso: SsoConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 256 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_address: 256,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            tls: false,
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_length: 12,
            max_length: 256,
            hash_concurrency: 0,
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            on_delete: OnDelete::Archive,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            activation_ttl: Duration::from_secs(7 * 24 * 3600),
            password_reset_ttl: Duration::from_secs(3600),
            email_confirmation_ttl: Duration::from_secs(7 * 24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            address_failures: 50,
            failure_window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(5 * 60),
            max_lockout: Duration::from_secs(60 * 60),
            tracked_entries: 131_072,
            password_cache: Duration::from_secs(120),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Syntax {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("config key `{key}`: {message}")]
    Value { key: String, message: String },
}

impl Config {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given explicitly.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let top_level = TOP_LEVEL_ENV_KEYS.contains(&rest.to_lowercase().as_str());
            if rest.contains("__") || top_level {
                overlay_env(&mut table, &name, rest, &raw)?;
            } else if !CLI_ENV_NAMES.contains(&rest) {
                // Maybe a config key with one `_` too few (GATEHOUSE_HTTP_TLS).
                tracing::warn!(
                    name,
                    "not a config key (those are GATEHOUSE_<SECTION>__<KEY>); ignored"
                );
            }
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
                ConfigError::Value {
                    key: error.path().to_string(),
                    message: error.inner().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Value {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.passwords.min_length == 0 || self.passwords.min_length > self.passwords.max_length {
            return bad(
                "passwords.min_length",
                "must be between 1 and passwords.max_length",
            );
        }
        if self.signin.max_failures == 0 {
            return bad("signin.max_failures", "must be at least 1");
        }
        for entry in &self.ftp.layout {
            crate::domain::ftp::validate_layout_entry(entry).map_err(|e| ConfigError::Value {
                key: "ftp.layout".into(),
                message: e.message,
            })?;
        }
        if let Some(url) = &self.ldap.url {
            if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
                return bad("ldap.url", "must start with ldap:// or ldaps://");
            }
            if self.ldap.user_base.is_empty() {
                return bad("ldap.user_base", "is required when ldap.url is set");
            }
        }
        if !(0.0..=1.0).contains(&self.ldap.max_missing_ratio) {
            return bad("ldap.max_missing_ratio", "must be between 0 and 1");
        }
        if self.ldap.page_size == 0 {
            return bad("ldap.page_size", "must be at least 1");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return bad("tls.cert", "set tls.cert and tls.key together");
        }
        if !(self.http.public_url.starts_with("http://")
            || self.http.public_url.starts_with("https://"))
        {
            return bad("http.public_url", "must start with http:// or https://");
        }
        self.mail.validate()?;
        self.sso.validate()
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

/// Puts `GATEHOUSE_SECTION__KEY=value` into the table as `section.key`. The value is
/// read as a TOML literal when it is one (numbers, booleans, arrays), else as a string.
fn overlay_env(
    table: &mut toml::Table,
    name: &str,
    rest: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    if path.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            name: name.into(),
            message: "malformed key".into(),
        });
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut parsed| parsed.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (last, sections) = path.split_last().ok_or_else(|| ConfigError::Env {
        name: name.into(),
        message: "malformed key".into(),
    })?;
    let mut node = table;
    for section in sections {
        let entry = node
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            name: name.into(),
            message: format!("`{section}` is not a section"),
        })?;
    }
    node.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
