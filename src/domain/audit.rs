//! Audit records: who did what to whom, when. They hold ids and field names,
//! never personal data, so masking a user leaves the trail intact and clean.

use super::clock::Timestamp;
use super::user::UserId;
use serde::{Deserialize, Serialize};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: Timestamp,
    /// The acting user; `None` for the system itself or a public endpoint.
    pub actor: Option<UserId>,
    pub action: AuditAction,
    pub target: Option<UserId>,
    /// Extra facts: changed field names, group names, roles. No personal data.
    pub details: serde_json::Value,
}

/// Every kind of recorded change, written as `area.verb` on the wire and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuditAction {
    #[serde(rename = "entry.create")]
    EntryCreate,
    #[serde(rename = "entry.delete")]
    EntryDelete,
    #[serde(rename = "entry.update")]
    EntryUpdate,
    #[serde(rename = "ftp.create_account")]
    FtpCreateAccount,
    #[serde(rename = "ftp.delete_account")]
    FtpDeleteAccount,
    #[serde(rename = "ftp.rescan")]
    FtpRescan,
    #[serde(rename = "group.create")]
    GroupCreate,
    #[serde(rename = "group.delete")]
    GroupDelete,
    #[serde(rename = "ldap.create_user")]
    LdapCreateUser,
    #[serde(rename = "ldap.deactivate_missing")]
    LdapDeactivateMissing,
    #[serde(rename = "ldap.reactivate_user")]
    LdapReactivateUser,
    #[serde(rename = "ldap.sync")]
    LdapSync,
    #[serde(rename = "mail.cancel")]
    MailCancel,
    #[serde(rename = "mail.retry")]
    MailRetry,
    #[serde(rename = "mail.send")]
    MailSend,
    #[serde(rename = "mail.test")]
    MailTest,
    #[serde(rename = "organization.create")]
    OrganizationCreate,
    #[serde(rename = "organization.delete")]
    OrganizationDelete,
    #[serde(rename = "organization.update")]
    OrganizationUpdate,
    #[serde(rename = "project.create")]
    ProjectCreate,
    #[serde(rename = "project.delete")]
    ProjectDelete,
    #[serde(rename = "project.set_member")]
    ProjectSetMember,
    #[serde(rename = "project.update")]
    ProjectUpdate,
    #[serde(rename = "resource.assign")]
    ResourceAssign,
    #[serde(rename = "resource.create")]
    ResourceCreate,
    #[serde(rename = "resource.delete")]
    ResourceDelete,
    #[serde(rename = "resource.import")]
    ResourceImport,
    #[serde(rename = "resource.set_owner")]
    ResourceSetOwner,
    #[serde(rename = "resource.unassign")]
    ResourceUnassign,
    #[serde(rename = "resource.thumbnail")]
    ResourceThumbnail,
    #[serde(rename = "resource.update")]
    ResourceUpdate,
    #[serde(rename = "sso.create_user")]
    SsoCreateUser,
    #[serde(rename = "sso.link_user")]
    SsoLinkUser,
    #[serde(rename = "store.backup")]
    StoreBackup,
    #[serde(rename = "system.create_user")]
    SystemCreateUser,
    #[serde(rename = "token.issue")]
    TokenIssue,
    #[serde(rename = "token.revoke")]
    TokenRevoke,
    #[serde(rename = "user.activate")]
    UserActivate,
    #[serde(rename = "user.activate_with_token")]
    UserActivateWithToken,
    #[serde(rename = "user.add_to_groups")]
    UserAddToGroups,
    #[serde(rename = "user.archive")]
    UserArchive,
    #[serde(rename = "user.change_own_password")]
    UserChangeOwnPassword,
    #[serde(rename = "user.confirm_email")]
    UserConfirmEmail,
    #[serde(rename = "user.copy")]
    UserCopy,
    #[serde(rename = "user.create")]
    UserCreate,
    #[serde(rename = "user.deactivate")]
    UserDeactivate,
    #[serde(rename = "user.delete")]
    UserDelete,
    #[serde(rename = "user.set_picture")]
    UserSetPicture,
    #[serde(rename = "user.disable_2fa")]
    UserDisable2fa,
    #[serde(rename = "user.enable_2fa")]
    UserEnable2fa,
    #[serde(rename = "user.mask")]
    UserMask,
    #[serde(rename = "user.register")]
    UserRegister,
    #[serde(rename = "user.remove_from_groups")]
    UserRemoveFromGroups,
    #[serde(rename = "user.reset_2fa")]
    UserReset2fa,
    #[serde(rename = "user.request_password_reset")]
    UserRequestPasswordReset,
    #[serde(rename = "user.reset_password")]
    UserResetPassword,
    #[serde(rename = "user.set_access")]
    UserSetAccess,
    #[serde(rename = "user.set_organization")]
    UserSetOrganization,
    #[serde(rename = "user.set_owner")]
    UserSetOwner,
    #[serde(rename = "user.set_password")]
    UserSetPassword,
    #[serde(rename = "user.set_system_roles")]
    UserSetSystemRoles,
    #[serde(rename = "user.sign_in")]
    UserSignIn,
    #[serde(rename = "user.update")]
    UserUpdate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_dotted_names() {
        let cases = [
            (AuditAction::UserSetSystemRoles, "\"user.set_system_roles\""),
            (AuditAction::LdapSync, "\"ldap.sync\""),
            (AuditAction::FtpRescan, "\"ftp.rescan\""),
        ];
        for (action, json) in cases {
            assert_eq!(serde_json::to_string(&action).ok().as_deref(), Some(json));
            assert_eq!(serde_json::from_str::<AuditAction>(json).ok(), Some(action));
        }
    }
}
