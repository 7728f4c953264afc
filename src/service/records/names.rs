//! People by name on project pages: a project's members and a record's
//! assigned members, named (login and display name) only to those who may
//! manage the project's members or read the directory; others get ids.

use super::Records;
use crate::domain::permissions::{Action, decide, decide_project};
use crate::domain::projects::{ProjectId, ProjectRole, Resource};
use crate::domain::roles::{Capability, has_capability};
use crate::domain::user::{User, UserId};
use crate::service::{Principal, ServiceResult};
use crate::store::ReadView;

/// A project member with their role, and their account when it may be named.
pub struct Member {
    pub id: UserId,
    pub role: ProjectRole,
    pub user: Option<User>,
}

impl Records {
    /// Whether `actor` may see who is who in `project` (`None`: a record
    /// without a project, whose owner may).
    fn may_name(
        &self,
        view: &dyn ReadView,
        actor: &User,
        project: Option<ProjectId>,
        record: Option<&Resource>,
    ) -> ServiceResult<bool> {
        if has_capability(actor, Capability::ReadDirectory) {
            return Ok(true);
        }
        let rules = self.settings.rules;
        Ok(match (project, record) {
            (Some(project), _) => {
                let role = view.membership(project, actor.id)?;
                decide_project(actor, Action::ManageMembers, role, rules).allowed
            }
            (None, Some(record)) => decide(actor, Action::Delete, record, None, rules).allowed,
            (None, None) => false,
        })
    }

    /// The users assigned to `record`, when the caller may name them.
    pub fn assigned_names(
        &self,
        principal: &Principal,
        record: &Resource,
    ) -> ServiceResult<Option<Vec<User>>> {
        let actor = principal.unrestricted()?;
        let view = self.snapshot();
        if !self.may_name(&*view, actor, record.project, Some(record))? {
            return Ok(None);
        }
        let mut users = Vec::with_capacity(record.assigned.len());
        for id in &record.assigned {
            if let Some(user) = view.user(*id)? {
                users.push(user);
            }
        }
        Ok(Some(users))
    }

    /// A project's members with their roles; named for those who manage
    /// members (or read the directory). Viewing needs the project's view right.
    pub fn project_members(
        &self,
        principal: &Principal,
        project: ProjectId,
    ) -> ServiceResult<Vec<Member>> {
        let actor = principal.unrestricted()?;
        let view = self.snapshot();
        self.checked_project(&*view, actor, project, Action::View)?;
        let named = self.may_name(&*view, actor, Some(project), None)?;
        view.members(project)?
            .into_iter()
            .map(|(id, role)| {
                let user = match named {
                    true => view.user(id)?,
                    false => None,
                };
                Ok(Member { id, role, user })
            })
            .collect()
    }
}
