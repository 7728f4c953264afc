//! System roles and the rule "may actor A do X (to user B)".

use super::user::User;
use serde::{Deserialize, Serialize};

/// A directory-wide role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
}

/// Why an actor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("your roles do not allow this")]
    MissingRole,
    #[error("only admins may change an admin account")]
    TargetIsAdmin,
}

/// Whether `actor` holds a role granting `capability`.
pub fn has_capability(actor: &User, capability: Capability) -> bool {
    let roles = &actor.system_roles;
    match capability {
        Capability::ReadDirectory => !roles.is_empty(),
        Capability::ManageUsers => {
            roles.contains(&SystemRole::Admin) || roles.contains(&SystemRole::UserManager)
        }
        Capability::GrantRoles => roles.contains(&SystemRole::Admin),
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

/// Whether `actor` may change the account `target` (profile, status, password,
/// tokens, groups). User managers may not touch admins.
pub fn may_manage_user(actor: &User, target: &User) -> Result<(), Denial> {
    require(actor, Capability::ManageUsers)?;
    if target.has_role(SystemRole::Admin) && !actor.has_role(SystemRole::Admin) {
        return Err(Denial::TargetIsAdmin);
    }
    Ok(())
}

/// Like [`may_manage_user`], but a grant of `right` on the record (or owning
/// it) also suffices: the user record's own access list.
pub fn may_touch_record(
    actor: &User,
    target: &User,
    right: super::user::Right,
) -> Result<(), Denial> {
    may_manage_user(actor, target).or_else(|denial| {
        if target.grants(actor, right) {
            Ok(())
        } else {
            Err(denial)
        }
    })
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
        let table: [(&[SystemRole], Capability, bool); 12] = [
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
}
