//! System roles and the rule "may actor A do X (to user B)".

use super::user::User;
use serde::{Deserialize, Serialize};

/// A directory-wide role.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SystemRole {
    /// Everything.
    Admin,
    /// Users and groups, but not admins and not role grants.
    UserManager,
    /// Read only.
    Auditor,
}

/// What an actor wants to do on the admin surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// List and read users, groups and the audit trail.
    ReadDirectory,
    /// Create, change, deactivate and delete users; manage groups.
    ManageUsers,
    /// Grant or revoke system roles.
    GrantRoles,
    /// Run directory syncs and read their reports.
    RunSync,
    /// Read and steer the mail outbox, send test mails and mail to users.
    ManageMail,
    /// Run media jobs (record thumbnails).
    ManageMedia,
}

/// Why an actor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("your roles do not allow this")]
    MissingRole,
    #[error("only admins may change an admin account")]
    TargetIsAdmin,
    #[error("only root may change the root account")]
    TargetIsRoot,
}

/// Whether `actor` holds a role granting `capability`.
pub fn has_capability(actor: &User, capability: Capability) -> bool {
    let roles = &actor.system_roles;
    match capability {
        Capability::ReadDirectory => !roles.is_empty(),
        Capability::ManageUsers => {
            roles.contains(&SystemRole::Admin) || roles.contains(&SystemRole::UserManager)
        }
        Capability::GrantRoles
        | Capability::RunSync
        | Capability::ManageMail
        | Capability::ManageMedia => roles.contains(&SystemRole::Admin),
    }
}

/// Requires `capability`, as a `Result` for `?`.
pub fn require(actor: &User, capability: Capability) -> Result<(), Denial> {
    if has_capability(actor, capability) {
        Ok(())
    } else {
        Err(Denial::MissingRole)
    }
}

/// The protections no grant, ownership or role below overrides: nobody below
/// admin changes an admin, nobody but root changes root.
fn protected(actor: &User, target: &User) -> Result<(), Denial> {
    if target.is_root() && actor.id != target.id {
        return Err(Denial::TargetIsRoot);
    }
    if target.has_role(SystemRole::Admin) && !actor.has_role(SystemRole::Admin) {
        return Err(Denial::TargetIsAdmin);
    }
    Ok(())
}

/// Whether `actor` may change the account `target` (profile, status, password,
/// tokens, 2FA, roles, groups). User managers may not touch admins; only root
/// touches root.
pub fn may_manage_user(actor: &User, target: &User) -> Result<(), Denial> {
    require(actor, Capability::ManageUsers)?;
    protected(actor, target)
}

/// Like [`may_manage_user`], but a grant of `right` on the record (or owning
/// it) also suffices: the user record's own access list. Never past the
/// protections of admins and root.
pub fn may_touch_record(
    actor: &User,
    target: &User,
    right: super::user::Right,
) -> Result<(), Denial> {
    protected(actor, target)?;
    if has_capability(actor, Capability::ManageUsers) || target.grants(actor, right) {
        Ok(())
    } else {
        Err(Denial::MissingRole)
    }
}

/// What root keeps whatever anyone does: the admin role, an active status,
/// and a sign-in no validity window or confirmation can take away.
pub fn root_keeps_its_powers(after: &User) -> Result<(), &'static str> {
    if !after.is_root() {
        return Ok(());
    }
    if !after.has_role(SystemRole::Admin) {
        return Err("root always keeps the admin role");
    }
    if after.status != super::user::Status::Active || after.is_archived() {
        return Err("root always stays active");
    }
    if after.login_valid_from.is_some()
        || after.login_valid_to.is_some()
        || after.require_email_confirmation
    {
        return Err("root always may sign in: no validity window or email confirmation");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::{Status, UserType};
    use chrono::Utc;

    fn with_roles(id: u64, roles: &[SystemRole]) -> User {
        let mut user = User::new(id, UserType::Local, Status::Active, Utc::now());
        user.system_roles = roles.iter().copied().collect();
        user
    }

    #[test]
    fn capabilities_by_role() {
        use Capability::*;
        use SystemRole::*;
        let table: [(&[SystemRole], Capability, bool); 15] = [
            (&[Admin], RunSync, true),
            (&[UserManager], RunSync, false),
            (&[Auditor], RunSync, false),
            (&[Admin], ReadDirectory, true),
            (&[Admin], ManageUsers, true),
            (&[Admin], GrantRoles, true),
            (&[UserManager], ReadDirectory, true),
            (&[UserManager], ManageUsers, true),
            (&[UserManager], GrantRoles, false),
            (&[Auditor], ReadDirectory, true),
            (&[Auditor], ManageUsers, false),
            (&[Auditor], GrantRoles, false),
            (&[], ReadDirectory, false),
            (&[], ManageUsers, false),
            (&[], GrantRoles, false),
        ];
        for (roles, capability, expected) in table {
            let actor = with_roles(1, roles);
            assert_eq!(
                has_capability(&actor, capability),
                expected,
                "{roles:?} {capability:?}"
            );
        }
    }

    #[test]
    fn user_managers_cannot_touch_admins() {
        use SystemRole::*;
        let admin = with_roles(1, &[Admin]);
        let manager = with_roles(2, &[UserManager]);
        let plain = with_roles(3, &[]);
        let auditor = with_roles(4, &[Auditor]);
        assert_eq!(may_manage_user(&admin, &admin), Ok(()));
        assert_eq!(may_manage_user(&admin, &manager), Ok(()));
        assert_eq!(may_manage_user(&manager, &plain), Ok(()));
        assert_eq!(
            may_manage_user(&manager, &admin),
            Err(Denial::TargetIsAdmin)
        );
        assert_eq!(may_manage_user(&auditor, &plain), Err(Denial::MissingRole));
        assert_eq!(may_manage_user(&plain, &plain), Err(Denial::MissingRole));
    }

    #[test]
    fn grants_never_reach_past_admin_and_root() {
        use crate::domain::names::Login;
        use crate::domain::user::{AccessGrant, Right};
        use SystemRole::*;
        let manager = with_roles(2, &[UserManager]);
        let mut admin = with_roles(5, &[Admin]);
        admin.owner = Some(manager.id);
        admin.access.push(AccessGrant {
            user: Some(manager.id),
            group: None,
            read: true,
            write: true,
            delete: true,
        });
        assert_eq!(
            may_touch_record(&manager, &admin, Right::Write),
            Err(Denial::TargetIsAdmin),
            "creating an admin gives a user manager no hold on it"
        );
        let mut root = with_roles(1, &[Admin]);
        root.user_type = UserType::System;
        root.login = Login::parse("root").ok();
        let other_admin = with_roles(6, &[Admin]);
        assert_eq!(
            may_manage_user(&other_admin, &root),
            Err(Denial::TargetIsRoot)
        );
        assert_eq!(may_manage_user(&root, &root), Ok(()));
        assert_eq!(may_touch_record(&other_admin, &admin, Right::Write), Ok(()));
        let mut plain = with_roles(7, &[]);
        plain.owner = Some(3);
        let owner = with_roles(3, &[]);
        assert_eq!(may_touch_record(&owner, &plain, Right::Write), Ok(()));
        assert!(root_keeps_its_powers(&root).is_ok());
        root.login_valid_to = Some(chrono::Utc::now());
        assert!(root_keeps_its_powers(&root).is_err());
        root.login_valid_to = None;
        root.system_roles.clear();
        assert!(root_keeps_its_powers(&root).is_err());
        assert!(root_keeps_its_powers(&plain).is_ok());
    }
}
