//! Enterprise LDAP settings: the directory, its service account, how entries
//! map to users and groups, and the sync's schedule and safety limits.

use super::{ConfigError, Secret};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Enterprise LDAP sign-in and sync; off unless `url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: Option<String>,
    /// Upgrade an ldap:// connection with StartTLS.
    pub starttls: bool,
    /// PEM file of CA certificates to trust; default: the system store.
    pub ca_file: Option<PathBuf>,
    /// Service account used to find users and groups.
    pub bind_dn: Option<String>,
    /// Its password (prefer `bind_password_file`).
    pub bind_password: Option<Secret>,
    /// File holding the service account password.
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched.
    pub user_base: String,
    pub user_filter: String,
    /// Attribute holding the login.
    pub login_attribute: String,
    /// Directory attribute for each profile field.
    pub attributes: LdapAttributes,
    /// Where groups are searched.
    pub group_base: String,
    pub group_filter: String,
    /// Attribute of a group listing its members' DNs.
    pub group_member_attribute: String,
    /// Directory group (DN or cn) -> gatehouse automatic group.
    pub group_map: Vec<GroupMapping>,
    /// How often the scheduled sync runs.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Entries per page of a search (RFC 2696).
    pub page_size: u32,
    /// What a sync does with accounts gone from the directory.
    pub missing_user_action: MissingUserAction,
    /// A sync that would deactivate more than this share of directory accounts changes nothing.
    pub max_missing_ratio: f64,
}

/// Directory attribute names for the mapped profile fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapAttributes {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub phone: String,
    pub company: String,
    pub department: String,
}

/// One `[[ldap.group_map]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// Group DN or cn in the directory.
    pub ldap_group: String,
    /// Automatic group in gatehouse.
    pub group: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingUserAction {
    Deactivate,
    Keep,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            url: None,
            starttls: false,
            ca_file: None,
            bind_dn: None,
            bind_password: None,
            bind_password_file: None,
            user_base: String::new(),
            user_filter: "(objectClass=inetOrgPerson)".into(),
            login_attribute: "uid".into(),
            attributes: LdapAttributes::default(),
            group_base: String::new(),
            group_filter: "(objectClass=groupOfNames)".into(),
            group_member_attribute: "member".into(),
            group_map: Vec::new(),
            sync_interval: Duration::from_secs(15 * 60),
            page_size: 500,
            missing_user_action: MissingUserAction::Deactivate,
            max_missing_ratio: 0.1,
        }
    }
}

impl Default for LdapAttributes {
    fn default() -> Self {
        Self {
            email: "mail".into(),
            first_name: "givenName".into(),
            last_name: "sn".into(),
            display_name: "displayName".into(),
            phone: "telephoneNumber".into(),
            company: "o".into(),
            department: "ou".into(),
        }
    }
}

impl LdapConfig {
    /// The service account password, from `bind_password` or `bind_password_file`.
    pub fn service_password(&self) -> Result<Option<Secret>, ConfigError> {
        super::secret_from(&self.bind_password, &self.bind_password_file)
    }
}
