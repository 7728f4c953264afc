//! Single sign-on: the OpenID Connect providers users may sign in through,
//! how their claims map onto accounts, and which automatic groups follow.

use super::{ConfigError, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[sso]`: OpenID Connect sign-in; off without providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsoConfig {
    /// Time a user has from leaving for the provider to coming back.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// `[[sso.providers]]`, one per identity provider.
    pub providers: Vec<SsoProviderConfig>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            login_timeout: Duration::from_secs(600),
            providers: Vec::new(),
        }
    }
}

/// One `[[sso.providers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    /// The provider's name in URLs (`/sso/<name>/login`): a-z, 0-9 and `-`.
    pub name: String,
    /// Shown on sign-in pages; default: the name.
    pub display_name: Option<String>,
    /// Issuer URL; its `/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    /// Client secret (prefer `client_secret_file`).
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the login of a new account.
    #[serde(default = "default_login_claim")]
    pub login_claim: String,
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_first_name_claim")]
    pub first_name_claim: String,
    #[serde(default = "default_last_name_claim")]
    pub last_name_claim: String,
    /// Claim listing the user's groups at the provider.
    pub groups_claim: Option<String>,
    /// `[[sso.providers.group_map]]`: a value of the groups claim and the
    /// automatic group it gives (created on demand).
    #[serde(default)]
    pub group_map: Vec<ClaimGroupMapping>,
    /// When set, only users with one of these values in the groups claim get in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Create an account at a user's first sign-in.
    #[serde(default = "yes")]
    pub auto_create: bool,
    /// Link a first sign-in to the account with the same email, when the
    /// provider says the email is verified; never to admins.
    #[serde(default)]
    pub link_by_email: bool,
}

/// One `[[sso.providers.group_map]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimGroupMapping {
    /// A value of the groups claim.
    pub claim: String,
    /// Automatic group in gatehouse.
    pub group: String,
}

fn default_scopes() -> Vec<String> {
    ["email", "profile"].map(String::from).to_vec()
}

fn default_login_claim() -> String {
    "preferred_username".into()
}

fn default_email_claim() -> String {
    "email".into()
}

fn default_first_name_claim() -> String {
    "given_name".into()
}

fn default_last_name_claim() -> String {
    "family_name".into()
}

fn yes() -> bool {
    true
}

impl SsoProviderConfig {
    /// The client secret, from `client_secret` or `client_secret_file`.
    pub fn secret(&self) -> Result<Option<Secret>, ConfigError> {
        super::secret_from(&self.client_secret, &self.client_secret_file)
    }
}

impl SsoConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |index: usize, key: &str, message: &str| ConfigError::Value {
            key: format!("sso.providers[{index}].{key}"),
            message: message.into(),
        };
        let mut names = std::collections::BTreeSet::new();
        for (index, provider) in self.providers.iter().enumerate() {
            let valid_name = !provider.name.is_empty()
                && provider.name.len() <= 32
                && provider
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid_name {
                return Err(bad(index, "name", "1 to 32 of a-z, 0-9 and -"));
            }
            if !names.insert(provider.name.as_str()) {
                return Err(bad(index, "name", "another provider has this name"));
            }
            let issuer = url::Url::parse(&provider.issuer)
                .map_err(|e| bad(index, "issuer", &format!("not a URL: {e}")))?;
            let loopback = matches!(issuer.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if !(issuer.scheme() == "https" || (issuer.scheme() == "http" && loopback)) {
                return Err(bad(
                    index,
                    "issuer",
                    "must be an https URL (http only on loopback)",
                ));
            }
            if provider.client_id.is_empty() {
                return Err(bad(index, "client_id", "is required"));
            }
            if !provider.group_map.is_empty() && provider.groups_claim.is_none() {
                return Err(bad(index, "groups_claim", "group_map needs groups_claim"));
            }
            if !provider.allowed_groups.is_empty() && provider.groups_claim.is_none() {
                return Err(bad(
                    index,
                    "groups_claim",
                    "allowed_groups needs groups_claim",
                ));
            }
        }
        Ok(())
    }
}
