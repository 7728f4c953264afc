//! The user record and the rules that depend only on it: display name, system
//! users, GDPR masking.

use super::clock::Timestamp;
use super::external::DirectoryLink;
use super::ftp::FtpAccount;
use super::names::{Email, Login};
use super::roles::SystemRole;
use super::sso::SsoLink;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub type UserId = u64;

/// Where an account comes from; decides how it may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    System,
    Local,
    SelfRegistered,
    Email,
    Ldap,
    Sso,
    Anonymous,
    Collection,
}

/// Whether an account may be used at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Active,
    Deactivated,
}

/// Postal address, visible to admins and the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub supplement: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub postal_code: Option<String>,
    pub town: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

/// One account with everything the source systems keep about it. Stored
/// compactly: unset and default fields are left out and read back as defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_email_confirmation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend_language: Option<String>,
    /// Languages of the data the user works in, e.g. ["de-DE", "en-US"].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database_languages: Vec<String>,
    /// Languages the user searches in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_languages: Vec<String>,
    /// Front-end settings, as the front end stores them (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend_prefs: Option<serde_json::Value>,
    /// Data of plugins and integrations (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<serde_json::Value>,
    /// Profile picture metadata (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<serde_json::Value>,
    /// When notification mails go out (a JSON object; see the mail schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_schedule: Option<serde_json::Value>,
    /// Whether the user should get a mail to confirm their address.
    #[serde(default, skip_serializing_if = "is_false")]
    pub confirm_email: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_email_sent_at: Option<Timestamp>,
    /// Whether the user should get a welcome mail.
    #[serde(default, skip_serializing_if = "is_false")]
    pub welcome_email: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome_email_sent_at: Option<Timestamp>,
    /// Raised by every change of the record (optimistic concurrency, CSV `user._version`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_valid_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_valid_to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_password_change: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_2fa: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub two_factor_enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub automatic_groups: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub system_roles: BTreeSet<SystemRole>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub ftp: FtpAccount,
    /// Set for accounts that follow a directory (LDAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryLink>,
    /// Set for accounts that sign in through an OpenID Connect provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<SsoLink>,
    /// The organization the user belongs to (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<u64>,
    /// Who else may read, change or delete this user record (the owner always may).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessGrant>,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Rights on a user record granted to a user or to the members of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessGrant {
    pub user: Option<UserId>,
    pub group: Option<String>,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub delete: bool,
}

/// A right on a user record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
pub enum Right {
    Read,
    Write,
    Delete,
}

impl AccessGrant {
    fn covers(&self, actor: &User, right: Right) -> bool {
        let holder =
            self.user == Some(actor.id) || self.group.as_deref().is_some_and(|g| actor.in_group(g));
        let granted = match right {
            Right::Read => self.read || self.write || self.delete,
            Right::Write => self.write,
            Right::Delete => self.delete,
        };
        holder && granted
    }
}

/// The built-in accounts every installation has; they can never be removed.
pub const SYSTEM_USERS: [&str; 4] = ["root", "deleted_user", "deep_link", "oai_pmh"];
pub const DELETED_USER_ID: UserId = 2;
/// The system user with full access from the start.
pub const ROOT_LOGIN: &str = "root";

impl User {
    /// A blank record with the given id and type, stamped `now`.
    pub fn new(id: UserId, user_type: UserType, status: Status, now: Timestamp) -> Self {
        Self {
            id,
            user_type,
            status,
            archived_at: None,
            masked_at: None,
            login: None,
            email: None,
            require_email_confirmation: false,
            email_confirmed_at: None,
            first_name: None,
            last_name: None,
            display_name: None,
            company: None,
            department: None,
            phone: None,
            remarks: None,
            reference: None,
            origin: None,
            location: None,
            address: Address::default(),
            frontend_language: None,
            database_languages: Vec::new(),
            search_languages: Vec::new(),
            frontend_prefs: None,
            custom_data: None,
            picture: None,
            mail_schedule: None,
            confirm_email: false,
            confirm_email_sent_at: None,
            welcome_email: false,
            welcome_email_sent_at: None,
            version: 0,
            owner: None,
            updated_by: None,
            created_at: now,
            updated_at: now,
            last_active_at: None,
            login_valid_from: None,
            login_valid_to: None,
            require_password_change: false,
            require_2fa: false,
            two_factor_enabled: false,
            groups: BTreeSet::new(),
            automatic_groups: BTreeSet::new(),
            system_roles: BTreeSet::new(),
            ftp: FtpAccount::default(),
            directory: None,
            sso: None,
            organization: None,
            access: Vec::new(),
        }
    }

    /// Whether `self` and `other` differ in more than activity: the last
    /// sign-in and the FTP usage, which change with use, not by anyone's edit
    /// (they neither raise the version nor make an export stale).
    pub fn differs_beyond_activity(&self, other: &User) -> bool {
        let mut left = self.clone();
        left.take_activity_from(other);
        left.version = other.version;
        left.updated_at = other.updated_at;
        left != *other
    }

    /// Copies the activity fields of `other` (see [`Self::differs_beyond_activity`]).
    pub fn take_activity_from(&mut self, other: &User) {
        self.last_active_at = other.last_active_at;
        self.ftp.used_bytes = other.ftp.used_bytes;
        self.ftp.used_files = other.ftp.used_files;
    }

    /// The name shown for this user: the set display name, else first + last name,
    /// else the login, else the email.
    pub fn effective_display_name(&self) -> String {
        if let Some(name) = self
            .display_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
        {
            return name.to_owned();
        }
        let full: Vec<&str> = [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if !full.is_empty() {
            return full.join(" ");
        }
        self.login
            .as_ref()
            .map(|l| l.to_string())
            .or_else(|| self.email.as_ref().map(|e| e.to_string()))
            .unwrap_or_default()
    }

    /// The built-in `root` account.
    pub fn is_root(&self) -> bool {
        self.is_system()
            && self
                .login
                .as_ref()
                .is_some_and(|l| l.as_str() == ROOT_LOGIN)
    }

    pub fn is_system(&self) -> bool {
        self.user_type == UserType::System
    }

    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    pub fn has_role(&self, role: SystemRole) -> bool {
        self.system_roles.contains(&role)
    }

    /// Counts toward "at least one admin remains".
    pub fn is_active_admin(&self) -> bool {
        self.status == Status::Active && !self.is_archived() && self.has_role(SystemRole::Admin)
    }

    /// Whether `actor` holds `right` on this record: as its owner, or by a grant.
    pub fn grants(&self, actor: &User, right: Right) -> bool {
        self.owner == Some(actor.id) || self.access.iter().any(|grant| grant.covers(actor, right))
    }

    /// Whether the user is in `group`, locally or through a directory sync.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group) || self.automatic_groups.contains(group)
    }

    /// A new pending account with this one's type, groups, roles and settings,
    /// but none of its identity, personal data or history.
    pub fn copy_settings(&self, now: Timestamp) -> User {
        let mut copy = User::new(0, self.user_type, Status::Pending, now);
        copy.groups = self.groups.clone();
        copy.system_roles = self.system_roles.clone();
        copy.origin = self.origin.clone();
        copy.location = self.location.clone();
        copy.company = self.company.clone();
        copy.department = self.department.clone();
        copy.frontend_language = self.frontend_language.clone();
        copy.login_valid_from = self.login_valid_from;
        copy.login_valid_to = self.login_valid_to;
        copy.require_password_change = self.require_password_change;
        copy.require_email_confirmation = self.require_email_confirmation;
        copy.require_2fa = self.require_2fa;
        copy
    }

    /// GDPR masking: personal fields become placeholders, the account is
    /// deactivated; id, ownership, groups and roles stay. Irreversible.
    pub fn mask(&mut self, now: Timestamp) {
        let placeholder = format!("masked-{}", self.id);
        self.login = Login::parse(&placeholder).ok();
        self.email = Email::parse(&format!("{placeholder}@invalid")).ok();
        for field in [
            &mut self.first_name,
            &mut self.last_name,
            &mut self.display_name,
            &mut self.company,
            &mut self.department,
            &mut self.phone,
            &mut self.remarks,
            &mut self.reference,
            &mut self.location,
        ] {
            *field = None;
        }
        self.address = Address::default();
        // A picture and plugin data may identify the person as well.
        self.picture = None;
        self.custom_data = None;
        // The provider's subject identifies the person too.
        self.sso = None;
        self.email_confirmed_at = None;
        self.two_factor_enabled = false;
        self.status = Status::Deactivated;
        self.masked_at = Some(now);
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn user() -> User {
        User::new(7, UserType::Local, Status::Active, Utc::now())
    }

    #[test]
    fn display_name_falls_back_in_order() {
        let mut u = user();
        assert_eq!(u.effective_display_name(), "");
        u.email = Email::parse("e@x.org").ok();
        assert_eq!(u.effective_display_name(), "e@x.org");
        u.login = Login::parse("lg").ok();
        assert_eq!(u.effective_display_name(), "lg");
        u.last_name = Some("Doe".into());
        assert_eq!(u.effective_display_name(), "Doe");
        u.first_name = Some("Jane".into());
        assert_eq!(u.effective_display_name(), "Jane Doe");
        u.display_name = Some("JD".into());
        assert_eq!(u.effective_display_name(), "JD");
    }

    #[test]
    fn record_access_by_owner_user_and_group() {
        let mut target = user();
        let mut actor = User::new(8, UserType::Local, Status::Active, Utc::now());
        assert!(!target.grants(&actor, Right::Read));
        target.access.push(AccessGrant {
            user: Some(8),
            group: None,
            read: true,
            write: false,
            delete: false,
        });
        assert!(target.grants(&actor, Right::Read) && !target.grants(&actor, Right::Write));
        target.access.push(AccessGrant {
            user: None,
            group: Some("hr".into()),
            read: false,
            write: true,
            delete: true,
        });
        assert!(!target.grants(&actor, Right::Delete));
        actor.groups.insert("hr".into());
        assert!(target.grants(&actor, Right::Write) && target.grants(&actor, Right::Delete));
        target.access.clear();
        target.owner = Some(8);
        assert!(
            target.grants(&actor, Right::Delete),
            "the owner holds every right"
        );
    }

    #[test]
    fn masking_keeps_identity_and_membership() {
        let mut u = user();
        u.login = Login::parse("jane").ok();
        u.first_name = Some("Jane".into());
        u.phone = Some("123".into());
        u.address.street = Some("Main".into());
        u.groups.insert("staff".into());
        u.owner = Some(1);
        u.mask(Utc::now());
        assert_eq!(u.login.as_ref().map(|l| l.as_str()), Some("masked-7"));
        assert_eq!(
            u.email.as_ref().map(|e| e.as_str()),
            Some("masked-7@invalid")
        );
        assert_eq!(
            (u.first_name, u.phone, u.address),
            (None, None, Address::default())
        );
        assert_eq!(u.status, Status::Deactivated);
        assert!(u.masked_at.is_some());
        assert!(u.groups.contains("staff"));
        assert_eq!(u.owner, Some(1));
    }
}
