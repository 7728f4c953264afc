//! Response shapes for users. Every field is always present (`null` when
//! unset), as clients expect.

use crate::domain::roles::SystemRole;
use crate::domain::user::{Status, User, UserId, UserType};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Serialize, utoipa::ToSchema)]
pub struct AddressView {
    pub supplement: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub postal_code: Option<String>,
    pub town: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FtpAccountView {
    pub enabled: bool,
    pub quota_mb: Option<u64>,
    pub quota_files: Option<u64>,
    pub used_bytes: u64,
    pub used_files: u64,
    pub home: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DirectoryLinkView {
    pub dn: String,
    pub missing_since: Option<DateTime<Utc>>,
}

/// The provider and subject an SSO account signs in as.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SsoLinkView {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessGrantView {
    pub user: Option<UserId>,
    pub group: Option<String>,
    pub read: bool,
    pub write: bool,
    pub delete: bool,
}

/// A user as the API shows it: the record plus the generated display name.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: UserId,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub status: Status,
    pub archived_at: Option<DateTime<Utc>>,
    pub masked_at: Option<DateTime<Utc>>,
    pub login: Option<String>,
    pub email: Option<String>,
    pub require_email_confirmation: bool,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub effective_display_name: String,
    pub company: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub remarks: Option<String>,
    pub reference: Option<String>,
    pub origin: Option<String>,
    pub location: Option<String>,
    pub address: AddressView,
    pub frontend_language: Option<String>,
    pub database_languages: Vec<String>,
    pub search_languages: Vec<String>,
    pub frontend_prefs: Option<serde_json::Value>,
    pub custom_data: Option<serde_json::Value>,
    pub picture: Option<serde_json::Value>,
    pub mail_schedule: Option<serde_json::Value>,
    pub confirm_email: bool,
    pub confirm_email_sent_at: Option<DateTime<Utc>>,
    pub welcome_email: bool,
    pub welcome_email_sent_at: Option<DateTime<Utc>>,
    /// Raised by every change; what `user._version` in CSV files carries.
    pub version: u64,
    pub owner: Option<UserId>,
    pub updated_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub login_valid_from: Option<DateTime<Utc>>,
    pub login_valid_to: Option<DateTime<Utc>>,
    pub require_password_change: bool,
    pub require_2fa: bool,
    pub two_factor_enabled: bool,
    pub groups: BTreeSet<String>,
    pub automatic_groups: BTreeSet<String>,
    pub system_roles: BTreeSet<SystemRole>,
    pub ftp: FtpAccountView,
    pub directory: Option<DirectoryLinkView>,
    pub sso: Option<SsoLinkView>,
    pub organization: Option<u64>,
    pub access: Vec<AccessGrantView>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        let address = &user.address;
        Self {
            id: user.id,
            user_type: user.user_type,
            status: user.status,
            archived_at: user.archived_at,
            masked_at: user.masked_at,
            login: user.login.as_ref().map(|l| l.to_string()),
            email: user.email.as_ref().map(|e| e.to_string()),
            require_email_confirmation: user.require_email_confirmation,
            email_confirmed_at: user.email_confirmed_at,
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            display_name: user.display_name.clone(),
            effective_display_name: user.effective_display_name(),
            company: user.company.clone(),
            department: user.department.clone(),
            phone: user.phone.clone(),
            remarks: user.remarks.clone(),
            reference: user.reference.clone(),
            origin: user.origin.clone(),
            location: user.location.clone(),
            address: AddressView {
                supplement: address.supplement.clone(),
                street: address.street.clone(),
                house_number: address.house_number.clone(),
                postal_code: address.postal_code.clone(),
                town: address.town.clone(),
                state: address.state.clone(),
                country: address.country.clone(),
            },
            frontend_language: user.frontend_language.clone(),
            database_languages: user.database_languages.clone(),
            search_languages: user.search_languages.clone(),
            frontend_prefs: user.frontend_prefs.clone(),
            custom_data: user.custom_data.clone(),
            picture: user.picture.clone(),
            mail_schedule: user.mail_schedule.clone(),
            confirm_email: user.confirm_email,
            confirm_email_sent_at: user.confirm_email_sent_at,
            welcome_email: user.welcome_email,
            welcome_email_sent_at: user.welcome_email_sent_at,
            version: user.version,
            owner: user.owner,
            updated_by: user.updated_by,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_active_at: user.last_active_at,
            login_valid_from: user.login_valid_from,
            login_valid_to: user.login_valid_to,
            require_password_change: user.require_password_change,
            require_2fa: user.require_2fa,
            two_factor_enabled: user.two_factor_enabled,
            groups: user.groups.clone(),
            automatic_groups: user.automatic_groups.clone(),
            system_roles: user.system_roles.clone(),
            ftp: FtpAccountView {
                enabled: user.ftp.enabled,
                quota_mb: user.ftp.quota_mb,
                quota_files: user.ftp.quota_files,
                used_bytes: user.ftp.used_bytes,
                used_files: user.ftp.used_files,
                home: user.ftp.home.clone(),
            },
            directory: user.directory.as_ref().map(|link| DirectoryLinkView {
                dn: link.dn.clone(),
                missing_since: link.missing_since,
            }),
            sso: user.sso.as_ref().map(|link| SsoLinkView {
                provider: link.provider.clone(),
                issuer: link.issuer.clone(),
                subject: link.subject.clone(),
            }),
            organization: user.organization,
            access: user
                .access
                .iter()
                .map(|grant| AccessGrantView {
                    user: grant.user,
                    group: grant.group.clone(),
                    read: grant.read,
                    write: grant.write,
                    delete: grant.delete,
                })
                .collect(),
        }
    }
}
