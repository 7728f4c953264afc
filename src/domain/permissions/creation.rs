//! The rest of the rule: creating projects and records, who manages which
//! project roles, and what a user may do to an organization.

use super::{Action, Decision, Rules, allow, check_actor, decide_project, deny};
use crate::domain::projects::{OrganizationId, ProjectRole};
use crate::domain::roles::SystemRole;
use crate::domain::user::{Status, User};

/// What a user wants to do to an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationAction {
    /// Name, description, contact details.
    EditDetails,
    ChangeCode,
    /// Import records for it from CSV.
    ImportRecords,
}

fn is_active(user: &User) -> bool {
    user.status == Status::Active && !user.is_archived()
}

fn is_admin(user: &User) -> bool {
    is_active(user) && user.has_role(SystemRole::Admin)
}

/// May `user` do `action` to organization `organization`? Admins may do
/// everything; members edit details and import for their own organization.
pub fn decide_organization(
    user: &User,
    action: OrganizationAction,
    organization: OrganizationId,
) -> Decision {
    if !is_active(user) {
        return deny("the account is not active");
    }
    if is_admin(user) {
        return allow("admins may do everything");
    }
    match action {
        OrganizationAction::ChangeCode => deny("only admins change an organization's code"),
        _ if user.organization == Some(organization) => allow("a member of the organization"),
        OrganizationAction::EditDetails => {
            deny("only admins and the organization's members may edit it")
        }
        OrganizationAction::ImportRecords => {
            deny("only admins import records for another organization")
        }
    }
}

/// May `user` create a project (and so become its owner)?
pub fn decide_project_creation(user: &User, rules: Rules) -> Decision {
    match check_actor(user, Action::Configure, rules) {
        Some(decision) if !decision.allowed && is_active(user) => Decision {
            reason: "users without an organization may not create projects",
            ..decision
        },
        Some(decision) => decision,
        None => allow("an active user"),
    }
}

/// May `user`, holding `role` in a project, create a record in it?
pub fn decide_record_in_project(user: &User, role: Option<ProjectRole>, rules: Rules) -> Decision {
    if let Some(decision) = check_actor(user, Action::Edit, rules) {
        return decision;
    }
    match role {
        Some(_) => allow("a member of the project"),
        None => deny("only project members create records in a project"),
    }
}

/// The organization a new record of `user` belongs to: admins name any (or
/// none); others create for their own (naming another is refused). A user
/// without an organization creates records without one, unless the
/// installation requires an organization for editing.
pub fn record_source(
    user: &User,
    requested: Option<OrganizationId>,
    rules: Rules,
) -> Result<Option<OrganizationId>, Decision> {
    match (is_admin(user), requested, user.organization) {
        (true, requested, own) => Ok(requested.or(own)),
        (false, Some(org), own) if Some(org) != own => {
            Err(deny("records are created for your own organization"))
        }
        (false, _, Some(own)) => Ok(Some(own)),
        (false, _, None) if rules.organization_required => {
            Err(deny("users without an organization may not create records"))
        }
        (false, _, None) => Ok(None),
    }
}

/// May `actor` (holding `actor_role`) change a member's role from `current`
/// to `new` (`None`: not a member)? Managers handle the roles below manager;
/// only owners (and admins) grant or take manager and owner.
pub fn decide_member_change(
    actor: &User,
    actor_role: Option<ProjectRole>,
    change: (Option<ProjectRole>, Option<ProjectRole>),
    rules: Rules,
) -> Decision {
    let (current, new) = change;
    let decision = decide_project(actor, Action::ManageMembers, actor_role, rules);
    if !decision.allowed {
        return decision;
    }
    let acting_owner = is_admin(actor) || actor_role == Some(ProjectRole::Owner);
    let touches_top = [current, new]
        .into_iter()
        .flatten()
        .any(|role| role >= ProjectRole::Manager);
    if touches_top && !acting_owner {
        return deny("only owners grant or take manager and owner");
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::UserType;
    use OrganizationAction::*;
    use ProjectRole::*;
    use chrono::Utc;

    fn user(roles: &[SystemRole], organization: Option<u64>) -> User {
        let mut user = User::new(10, UserType::Local, Status::Active, Utc::now());
        user.system_roles = roles.iter().copied().collect();
        user.organization = organization;
        user
    }

    #[test]
    fn organizations() {
        let admin = user(&[SystemRole::Admin], None);
        let member = user(&[], Some(1));
        let outsider = user(&[], Some(2));
        let manager = user(&[SystemRole::UserManager], None);
        let mut inactive = user(&[SystemRole::Admin], Some(1));
        inactive.status = Status::Deactivated;
        let cases = [
            (&admin, ChangeCode, true),
            (&admin, EditDetails, true),
            (&admin, ImportRecords, true),
            (&member, EditDetails, true),
            (&member, ImportRecords, true),
            (&member, ChangeCode, false),
            (&outsider, EditDetails, false),
            (&outsider, ImportRecords, false),
            (&manager, EditDetails, false),
            (&inactive, EditDetails, false),
        ];
        for (who, action, allowed) in cases {
            let decision = decide_organization(who, action, 1);
            assert_eq!(decision.allowed, allowed, "{action:?}: {}", decision.reason);
        }
    }

    #[test]
    fn creating_projects_and_records() {
        let open = Rules::default();
        let required = Rules {
            organization_required: true,
        };
        let admin = user(&[SystemRole::Admin], None);
        let member = user(&[], Some(1));
        let homeless = user(&[], None);
        assert!(decide_project_creation(&admin, required).allowed);
        assert!(decide_project_creation(&member, required).allowed);
        assert!(!decide_project_creation(&homeless, required).allowed);
        assert!(decide_project_creation(&homeless, open).allowed);
        type SourceCase<'a> = (&'a User, Option<u64>, Rules, Result<Option<u64>, ()>);
        let sources: [SourceCase; 9] = [
            (&admin, Some(5), required, Ok(Some(5))),
            (&admin, None, required, Ok(None)),
            (&member, None, required, Ok(Some(1))),
            (&member, Some(1), required, Ok(Some(1))),
            (&member, Some(5), open, Err(())),
            (&homeless, Some(5), open, Err(())),
            (&homeless, None, required, Err(())),
            (&homeless, None, open, Ok(None)),
            (&member, None, open, Ok(Some(1))),
        ];
        for (who, requested, rules, expected) in sources {
            let source = record_source(who, requested, rules).map_err(|_| ());
            assert_eq!(source, expected, "{requested:?} {rules:?}");
        }
        for (who, role, rules, allowed) in [
            (&admin, None, required, true),
            (&member, Some(Member), required, true),
            (&member, None, open, false),
            (&homeless, Some(Owner), required, false),
            (&homeless, Some(Member), open, true),
        ] {
            assert_eq!(
                decide_record_in_project(who, role, rules).allowed,
                allowed,
                "{role:?} {rules:?}"
            );
        }
    }

    #[test]
    fn member_changes_follow_the_ladder() {
        let me = user(&[], Some(1));
        let admin = user(&[SystemRole::Admin], None);
        let cases = [
            (&me, Some(Manager), None, Some(Editor), true),
            (&me, Some(Manager), Some(Editor), None, true),
            (&me, Some(Manager), None, Some(Manager), false),
            (&me, Some(Manager), Some(Owner), Some(Editor), false),
            (&me, Some(Owner), None, Some(Owner), true),
            (&me, Some(Editor), None, Some(Member), false),
            (&me, None, None, Some(Member), false),
            (&admin, None, Some(Owner), None, true),
        ];
        for (actor, actor_role, current, new, allowed) in cases {
            let decision =
                decide_member_change(actor, actor_role, (current, new), Rules::default());
            assert_eq!(
                decision.allowed, allowed,
                "{actor_role:?} {current:?} -> {new:?}: {}",
                decision.reason
            );
        }
    }
}
