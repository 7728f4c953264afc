//! The one permission rule: may user U do action A to a record, a project or
//! an organization. Every service asks here, and so does
//! `GET /api/v1/authz/check`; no service decides a permission inline.

mod creation;

pub use creation::{
    OrganizationAction, decide_member_change, decide_organization, decide_project_creation,
    decide_record_in_project, record_source,
};

use super::projects::{ProjectRole, Resource};
use super::roles::SystemRole;
use super::user::{Status, User};
use serde::{Deserialize, Serialize};

/// What a user wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    View,
    Edit,
    Delete,
    AddEntry,
    EditEntry,
    DeleteEntry,
    Report,
    ManageMembers,
    Configure,
    DeleteProject,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Self::View,
        Self::Edit,
        Self::Delete,
        Self::AddEntry,
        Self::EditEntry,
        Self::DeleteEntry,
        Self::Report,
        Self::ManageMembers,
        Self::Configure,
        Self::DeleteProject,
    ];

    /// Actions that change something (refused to users without an
    /// organization where the installation requires one).
    fn writes(self) -> bool {
        !matches!(self, Self::View | Self::Report)
    }

    /// What a member of a record's organization may do to it: view and
    /// update its data, not delete it.
    fn organization_may(self) -> bool {
        matches!(
            self,
            Self::View | Self::Edit | Self::AddEntry | Self::EditEntry | Self::DeleteEntry
        )
    }
}

/// The installation's settings the rule depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Users without an organization may only view
    /// (`[organizations] required_for_editing`).
    pub organization_required: bool,
}

/// The answer, with the reason it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: &'static str,
}

pub(crate) const fn allow(reason: &'static str) -> Decision {
    Decision {
        allowed: true,
        reason,
    }
}

pub(crate) const fn deny(reason: &'static str) -> Decision {
    Decision {
        allowed: false,
        reason,
    }
}

/// The least role that allows `action` on any record of the project.
fn role_for_any_record(action: Action) -> ProjectRole {
    match action {
        Action::View => ProjectRole::Readonly,
        Action::AddEntry => ProjectRole::Annotator,
        Action::Edit
        | Action::Delete
        | Action::EditEntry
        | Action::DeleteEntry
        | Action::Report => ProjectRole::Editor,
        Action::ManageMembers | Action::Configure => ProjectRole::Manager,
        Action::DeleteProject => ProjectRole::Owner,
    }
}

/// Checks the user themselves before any record: active, admin, organization.
pub(crate) fn check_actor(user: &User, action: Action, rules: Rules) -> Option<Decision> {
    if user.status != Status::Active || user.is_archived() {
        return Some(deny("the account is not active"));
    }
    if user.has_role(SystemRole::Admin) {
        return Some(allow("admins may do everything"));
    }
    if rules.organization_required && action.writes() && user.organization.is_none() {
        return Some(deny(
            "users without an organization may not create or change records",
        ));
    }
    None
}

/// May `user`, holding `role` in a project, do `action` to the project itself
/// (members, settings, deletion)?
pub fn decide_project(
    user: &User,
    action: Action,
    role: Option<ProjectRole>,
    rules: Rules,
) -> Decision {
    if let Some(decision) = check_actor(user, action, rules) {
        return decision;
    }
    if action == Action::View && !user.system_roles.is_empty() {
        return allow("directory roles see every project");
    }
    let Some(role) = role else {
        return deny("not a member of the project");
    };
    if role >= role_for_any_record(action) {
        allow("the project role allows it")
    } else {
        deny("the project role is too low")
    }
}

/// May `user` do `action` to `resource`, holding `role` in the record's project
/// (`None`: not a member, or the record has no project)?
pub fn decide(
    user: &User,
    action: Action,
    resource: &Resource,
    role: Option<ProjectRole>,
    rules: Rules,
) -> Decision {
    if let Some(decision) = check_actor(user, action, rules) {
        return decision;
    }
    let own = resource.is_own(user.id);
    let assigned = resource.assigned.contains(&user.id);
    if let Some(role) = role {
        if role >= role_for_any_record(action) {
            return allow("the project role allows it on every record");
        }
    }
    if matches!(
        action,
        Action::ManageMembers | Action::Configure | Action::DeleteProject | Action::Report
    ) {
        return deny("the project role is too low");
    }
    let organizations = [resource.source_organization, resource.steward_organization];
    if action.organization_may()
        && user.organization.is_some()
        && organizations.contains(&user.organization)
    {
        return allow("a member of the record's organization");
    }
    let in_project = resource.project.is_none() || role.is_some();
    match (own, assigned, in_project) {
        (true, _, true) => allow("own record"),
        (false, true, true) if action != Action::Delete => allow("assigned to the record"),
        (false, true, true) => deny("assigned members may not delete the record"),
        (_, _, false) => deny("not a member of the record's project"),
        (false, false, true) => deny("neither own nor assigned, and the project role is too low"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::UserType;
    use Action::*;
    use ProjectRole::*;
    use chrono::Utc;
    use std::collections::BTreeSet;

    const ME: u64 = 10;
    const OTHER: u64 = 20;

    fn user(roles: &[SystemRole], organization: Option<u64>) -> User {
        let mut user = User::new(ME, UserType::Local, Status::Active, Utc::now());
        user.system_roles = roles.iter().copied().collect();
        user.organization = organization;
        user
    }

    #[derive(Clone, Copy, Debug)]
    enum Relation {
        Own,
        Assigned,
        Other,
    }

    fn resource(relation: Relation) -> Resource {
        let now = Utc::now();
        let owner = if matches!(relation, Relation::Own) {
            ME
        } else {
            OTHER
        };
        let assigned: BTreeSet<u64> = if matches!(relation, Relation::Assigned) {
            [ME].into()
        } else {
            BTreeSet::new()
        };
        Resource {
            id: 1,
            kind: "station".into(),
            name: "s".into(),
            project: Some(1),
            source_organization: Some(1),
            steward_organization: None,
            owner,
            managers: BTreeSet::new(),
            assigned,
            created_by: owner,
            updated_by: owner,
            attributes: serde_json::Value::Null,
            thumbnail: None,
            media_by: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// What each role may do by relation to the record: the ladder as a table.
    fn expected(role: ProjectRole, relation: Relation, action: Action) -> bool {
        let personal = match relation {
            Relation::Own => matches!(
                action,
                View | Edit | Delete | AddEntry | EditEntry | DeleteEntry
            ),
            Relation::Assigned => {
                matches!(action, View | Edit | AddEntry | EditEntry | DeleteEntry)
            }
            Relation::Other => false,
        };
        let by_role = match action {
            View => role >= Readonly,
            AddEntry => role >= Annotator,
            Edit | Delete | EditEntry | DeleteEntry | Report => role >= Editor,
            ManageMembers | Configure => role >= Manager,
            DeleteProject => role == Owner,
        };
        personal || by_role
    }

    const RULES: Rules = Rules {
        organization_required: false,
    };
    const REQUIRED: Rules = Rules {
        organization_required: true,
    };

    #[test]
    fn every_role_action_and_relation() {
        // In organization 7: the record's organization (1) grants nothing here.
        let me = user(&[], Some(7));
        for role in [Member, Readonly, Annotator, Editor, Manager, Owner] {
            let project = Some(role);
            for relation in [Relation::Own, Relation::Assigned, Relation::Other] {
                let record = resource(relation);
                for action in Action::ALL {
                    let decision = decide(&me, action, &record, project, RULES);
                    assert_eq!(
                        decision.allowed,
                        expected(role, relation, action),
                        "{role:?} {relation:?} {action:?}: {}",
                        decision.reason
                    );
                }
            }
        }
    }

    #[test]
    fn other_project_admins_organizationless_and_inactive() {
        let me = user(&[], Some(7));
        let elsewhere: Option<ProjectRole> = None;
        for relation in [Relation::Own, Relation::Assigned, Relation::Other] {
            for action in Action::ALL {
                assert!(
                    !decide(&me, action, &resource(relation), elsewhere, RULES).allowed,
                    "{relation:?} {action:?}"
                );
            }
        }
        let admin = user(&[SystemRole::Admin], None);
        assert!(Action::ALL.iter().all(|a| {
            decide(&admin, *a, &resource(Relation::Other), elsewhere, REQUIRED).allowed
        }));
        let homeless = user(&[], None);
        let mine = Some(Owner);
        // Where organizations are required, one without may only look.
        assert!(decide(&homeless, View, &resource(Relation::Own), mine, REQUIRED).allowed);
        assert!(decide(&homeless, Report, &resource(Relation::Own), mine, REQUIRED).allowed);
        for action in Action::ALL {
            let writes = !matches!(action, View | Report);
            assert_eq!(
                decide(&homeless, action, &resource(Relation::Own), mine, REQUIRED).allowed,
                !writes,
                "{action:?}"
            );
            // Where they are not, the project role decides alone.
            assert!(
                decide(&homeless, action, &resource(Relation::Own), mine, RULES).allowed,
                "{action:?}"
            );
        }
        let mut inactive = user(&[SystemRole::Admin], Some(1));
        inactive.status = Status::Deactivated;
        assert!(
            Action::ALL.iter().all(|a| !decide(
                &inactive,
                *a,
                &resource(Relation::Own),
                mine,
                RULES
            )
            .allowed)
        );
    }

    #[test]
    fn members_of_the_records_organization_update_its_data() {
        let colleague = user(&[], Some(1));
        let other = resource(Relation::Other);
        for action in Action::ALL {
            let allowed = matches!(action, View | Edit | AddEntry | EditEntry | DeleteEntry);
            for role in [None, Some(Member)] {
                assert_eq!(
                    decide(&colleague, action, &other, role, REQUIRED).allowed,
                    allowed,
                    "{action:?} {role:?}"
                );
            }
        }
        // A steward organization's members too; others not.
        let mut stewarded = resource(Relation::Other);
        stewarded.source_organization = Some(3);
        stewarded.steward_organization = Some(1);
        assert!(decide(&colleague, Edit, &stewarded, None, RULES).allowed);
        stewarded.steward_organization = None;
        assert!(!decide(&colleague, Edit, &stewarded, None, RULES).allowed);
        // A record without an organization is nobody's by organization.
        stewarded.source_organization = None;
        let homeless = user(&[], None);
        assert!(!decide(&homeless, View, &stewarded, None, RULES).allowed);
    }

    #[test]
    fn project_actions_follow_the_ladder() {
        let me = user(&[], Some(7));
        let cases = [
            (Manager, ManageMembers, true),
            (Editor, ManageMembers, false),
            (Manager, Configure, true),
            (Manager, DeleteProject, false),
            (Owner, DeleteProject, true),
            (Member, View, false),
            (Readonly, View, true),
        ];
        for (role, action, allowed) in cases {
            assert_eq!(
                decide_project(&me, action, Some(role), RULES).allowed,
                allowed,
                "{role:?} {action:?}"
            );
        }
        assert!(!decide_project(&me, View, None, RULES).allowed);
        for role in [SystemRole::Auditor, SystemRole::UserManager] {
            let reader = user(&[role], None);
            assert!(
                decide_project(&reader, View, None, RULES).allowed,
                "{role:?}"
            );
            assert!(
                !decide_project(&reader, Configure, None, RULES).allowed,
                "{role:?}"
            );
        }
    }
}
