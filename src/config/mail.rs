//! Outgoing mail: the SMTP server, the sender, how the outbox retries, where
//! templates are overridden, and the password-reset request limits.

use super::{ConfigError, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Outgoing mail; off while `smtp_url` is unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=starttls` (STARTTLS
    /// required) or `smtps://host:port` (TLS from the first byte).
    pub smtp_url: Option<String>,
    /// SMTP user name, when the server wants one.
    pub username: Option<String>,
    /// SMTP password (prefer `password_file`).
    pub password: Option<Secret>,
    /// File holding the SMTP password.
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust for the SMTP server's TLS
    /// (an internal relay); default: the public web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// Sender address, `Name <address>` or a bare address.
    pub from: String,
    /// Address replies go to, when not `from`.
    pub reply_to: Option<String>,
    /// Time allowed for one SMTP conversation.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Mails handed to the SMTP server at once.
    pub concurrency: usize,
    /// Wait before the first retry of a mail the server did not take; each
    /// further retry waits twice as long, up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Attempts before a mail is marked failed.
    pub max_attempts: u32,
    /// How often the outbox looks for due mail besides being woken by new mail
    /// (held digests fall due by the clock alone).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long sent, cancelled and failed mails stay listed in the outbox.
    #[serde(with = "humantime_serde")]
    pub keep: Duration,
    /// Folder whose templates override the built-in ones.
    pub templates_dir: PathBuf,
    /// Password-reset mails per user per hour at most.
    pub reset_per_user_per_hour: u32,
    /// Password-reset requests per client address per hour at most.
    pub reset_per_address_per_hour: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            from: "gatehouse <gatehouse@localhost>".into(),
            reply_to: None,
            timeout: Duration::from_secs(30),
            concurrency: 4,
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            max_attempts: 20,
            poll_interval: Duration::from_secs(1),
            keep: Duration::from_secs(30 * 24 * 3600),
            templates_dir: PathBuf::from("config/templates"),
            reset_per_user_per_hour: 3,
            reset_per_address_per_hour: 20,
        }
    }
}

impl MailConfig {
    pub fn enabled(&self) -> bool {
        self.smtp_url.is_some()
    }

    /// The SMTP password, from `password` or `password_file`.
    pub fn smtp_password(&self) -> Result<Option<Secret>, ConfigError> {
        super::secret_from(&self.password, &self.password_file)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| ConfigError::Value {
            key: format!("mail.{key}"),
            message: message.into(),
        };
        if let Some(url) = &self.smtp_url {
            let known = ["smtp://", "smtps://"];
            if !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(bad("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        if let (Some(url), Some(_)) = (&self.smtp_url, &self.username) {
            let plain = url.starts_with("smtp://") && !url.contains("tls=");
            let loopback = url::Url::parse(url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .is_some_and(|host| matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]"));
            if plain && !loopback {
                return Err(bad(
                    "username",
                    "a password would cross the network in clear: use smtps:// or ?tls=starttls",
                ));
            }
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad("from", "must be an address or `Name <address>`"));
        }
        if let Some(reply_to) = &self.reply_to {
            if reply_to.parse::<lettre::message::Mailbox>().is_err() {
                return Err(bad("reply_to", "must be an address or `Name <address>`"));
            }
        }
        if self.concurrency == 0 || self.max_attempts == 0 {
            return Err(bad(
                "concurrency",
                "concurrency and max_attempts must be at least 1",
            ));
        }
        if self.retry_initial.is_zero() || self.retry_initial > self.retry_max {
            return Err(bad(
                "retry_initial",
                "must be above zero and at most retry_max",
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(bad("poll_interval", "must be above zero"));
        }
        Ok(())
    }
}
