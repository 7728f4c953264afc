//! Projects with their members on the role ladder: every change asks the
//! permission rule in `domain::permissions` first. Shared helpers for the
//! record and organization services live here too.

use super::core::area_service;
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::audit::AuditAction;
use crate::domain::permissions::{
    Action, Decision, decide_member_change, decide_project, decide_project_creation,
};
use crate::domain::projects::{
    Project, ProjectId, ProjectRole, ProjectWithMembers, Resource, ResourceId, validate_name,
};
use crate::domain::roles::{self};
use crate::domain::user::{User, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Fields of a project; all optional on update.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub settings: Option<serde_json::Value>,
}

/// A project as its member sees it in "my projects".
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyProject {
    pub id: ProjectId,
    pub name: String,
    pub kind: String,
    pub role: ProjectRole,
}

pub(super) fn refuse(decision: Decision) -> ServiceResult<()> {
    if decision.allowed {
        Ok(())
    } else {
        Err(ServiceError::NotPermitted(decision.reason))
    }
}

pub(super) fn required(field: &str, value: &Option<String>) -> ServiceResult<String> {
    let value = value.clone().unwrap_or_default();
    validate_name(field, &value)?;
    Ok(value.trim().to_owned())
}

pub(super) fn load_project(unit: &Unit, id: ProjectId) -> ServiceResult<Project> {
    unit.tx
        .project(id)?
        .ok_or(ServiceError::NotFound("project"))
}

pub(super) fn load_resource(unit: &Unit, id: ResourceId) -> ServiceResult<Resource> {
    unit.tx
        .resource(id)?
        .ok_or(ServiceError::NotFound("resource"))
}

/// `user`'s role in the record's project (`None` without one).
pub(super) fn role_in(
    unit: &Unit,
    resource: &Resource,
    user: UserId,
) -> ServiceResult<Option<ProjectRole>> {
    match resource.project {
        Some(project) => Ok(unit.tx.membership(project, user)?),
        None => Ok(None),
    }
}

/// A user leaving (archived or deleted) may not be a project's last owner;
/// a deleted user's memberships are removed.
pub(crate) fn leave_projects(
    unit: &Unit,
    memberships: &std::collections::BTreeMap<ProjectId, ProjectRole>,
    user: UserId,
    remove: bool,
) -> ServiceResult<()> {
    for (project_id, role) in memberships {
        let Some(mut project) = unit.tx.project(*project_id)? else {
            continue;
        };
        if *role == ProjectRole::Owner
            && project.owners.len() == 1
            && project.owners.contains(&user)
        {
            let message = format!(
                "the user is the last owner of project {} ({}); name another owner first",
                project.id, project.name
            );
            return Err(ServiceError::conflict("last_owner", message));
        }
        if remove {
            if project.owners.remove(&user) {
                unit.tx.put_project(&project)?;
            }
            unit.tx.set_membership(*project_id, user, None)?;
        }
    }
    Ok(())
}

area_service!(
    /// Projects and their memberships.
    Projects {}
);

impl Projects {
    fn view(&self, project: Project) -> ServiceResult<ProjectWithMembers> {
        let members = self.snapshot().members(project.id)?;
        Ok(ProjectWithMembers { project, members })
    }

    pub fn create_project(
        &self,
        principal: &Principal,
        input: ProjectInput,
    ) -> ServiceResult<ProjectWithMembers> {
        let actor = principal.unrestricted()?;
        refuse(decide_project_creation(actor, self.settings.rules))?;
        let name = required("name", &input.name)?;
        let project = self.write_as(actor, |unit| {
            let project = Project {
                id: unit.tx.next_id("project")?,
                name: name.clone(),
                kind: input.kind.clone().unwrap_or_else(|| "research".into()),
                description: input.description.clone(),
                settings: input.settings.clone().unwrap_or_else(|| json!({})),
                owners: [actor.id].into(),
                created_at: unit.now,
            };
            unit.tx.put_project(&project)?;
            unit.tx
                .set_membership(project.id, actor.id, Some(ProjectRole::Owner))?;
            unit.audit(
                AuditAction::ProjectCreate,
                None,
                json!({ "project": project.id }),
            )?;
            Ok(project)
        })?;
        self.view(project)
    }

    pub fn get_project(
        &self,
        principal: &Principal,
        id: ProjectId,
    ) -> ServiceResult<ProjectWithMembers> {
        let actor = principal.unrestricted()?;
        let project = self
            .snapshot()
            .project(id)?
            .ok_or(ServiceError::NotFound("project"))?;
        refuse(decide_project(
            actor,
            Action::View,
            self.snapshot().membership(id, actor.id)?,
            self.settings.rules,
        ))?;
        self.view(project)
    }

    /// Admins and directory readers see every project; others their own.
    pub fn list_projects(&self, principal: &Principal) -> ServiceResult<Vec<Project>> {
        let actor = principal.unrestricted()?;
        let snapshot = self.snapshot();
        let mine = snapshot.projects_of(actor.id)?;
        Ok(snapshot
            .projects()?
            .into_iter()
            .filter(|p| {
                decide_project(
                    actor,
                    Action::View,
                    mine.get(&p.id).copied(),
                    self.settings.rules,
                )
                .allowed
            })
            .collect())
    }

    pub fn my_projects(&self, principal: &Principal) -> ServiceResult<Vec<MyProject>> {
        let mut mine = Vec::new();
        for (id, role) in self.snapshot().projects_of(principal.unrestricted()?.id)? {
            if let Some(project) = self.snapshot().project(id)? {
                mine.push(MyProject {
                    id,
                    name: project.name,
                    kind: project.kind,
                    role,
                });
            }
        }
        Ok(mine)
    }

    pub fn update_project(
        &self,
        principal: &Principal,
        id: ProjectId,
        input: ProjectInput,
    ) -> ServiceResult<ProjectWithMembers> {
        let actor = principal.unrestricted()?;
        let project = self.write_as(actor, |unit| {
            let mut project = load_project(unit, id)?;
            refuse(decide_project(
                actor,
                Action::Configure,
                unit.tx.membership(id, actor.id)?,
                self.settings.rules,
            ))?;
            if input.name.is_some() {
                project.name = required("name", &input.name)?;
            }
            if let Some(kind) = &input.kind {
                project.kind = kind.clone();
            }
            if input.description.is_some() {
                project.description = input.description.clone();
            }
            if let Some(settings) = &input.settings {
                project.settings = settings.clone();
            }
            unit.tx.put_project(&project)?;
            unit.audit(AuditAction::ProjectUpdate, None, json!({ "project": id }))?;
            Ok(project)
        })?;
        self.view(project)
    }

    /// Deletes a project and its memberships; its records stay, without a project.
    pub fn delete_project(&self, principal: &Principal, id: ProjectId) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        let orphans: Vec<ResourceId> = self
            .snapshot()
            .resources()?
            .into_iter()
            .filter(|r| r.project == Some(id))
            .map(|r| r.id)
            .collect();
        let members: Vec<UserId> = self.snapshot().members(id)?.into_keys().collect();
        self.write_as(actor, |unit| {
            load_project(unit, id)?;
            refuse(decide_project(
                actor,
                Action::DeleteProject,
                unit.tx.membership(id, actor.id)?,
                self.settings.rules,
            ))?;
            for resource in &orphans {
                let mut record = load_resource(unit, *resource)?;
                record.project = None;
                unit.tx.put_resource(&record)?;
            }
            for member in &members {
                unit.tx.set_membership(id, *member, None)?;
            }
            unit.tx.remove_project(id)?;
            unit.audit(AuditAction::ProjectDelete, None, json!({ "project": id }))
        })
    }

    /// Sets (or with `None` removes) a member's role inside `unit`. Managers
    /// handle roles below manager; owners (and admins) any role. A project
    /// always keeps an owner.
    fn set_member_in(
        rules: crate::domain::permissions::Rules,
        unit: &Unit,
        actor: &User,
        project: &mut Project,
        member: UserId,
        role: Option<ProjectRole>,
    ) -> ServiceResult<()> {
        let actor_role = unit.tx.membership(project.id, actor.id)?;
        unit.user(member)?;
        let current = unit.tx.membership(project.id, member)?;
        refuse(decide_member_change(
            actor,
            actor_role,
            (current, role),
            rules,
        ))?;
        let owners_before = project.owners.clone();
        if role == Some(ProjectRole::Owner) {
            project.owners.insert(member);
        } else {
            project.owners.remove(&member);
        }
        if project.owners.is_empty() {
            return Err(ServiceError::conflict(
                "last_owner",
                "a project always keeps at least one owner",
            ));
        }
        if project.owners != owners_before {
            unit.tx.put_project(project)?;
        }
        unit.tx.set_membership(project.id, member, role)?;
        unit.audit(
            AuditAction::ProjectSetMember,
            Some(member),
            json!({ "project": project.id, "role": role }),
        )
    }

    pub fn set_member(
        &self,
        principal: &Principal,
        project: ProjectId,
        member: UserId,
        role: Option<ProjectRole>,
    ) -> ServiceResult<ProjectWithMembers> {
        let actor = principal.unrestricted()?;
        let project = self.write_as(actor, |unit| {
            let mut project = load_project(unit, project)?;
            Self::set_member_in(self.settings.rules, unit, actor, &mut project, member, role)?;
            Ok(project)
        })?;
        self.view(project)
    }

    /// The `set-roles` bulk action for one user: roles in several projects and
    /// optionally activation, in one transaction.
    pub fn set_roles(
        &self,
        principal: &Principal,
        member: UserId,
        roles_to_set: &[(ProjectId, ProjectRole)],
        activate: bool,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            for (project, role) in roles_to_set {
                let mut project = load_project(unit, *project)?;
                Self::set_member_in(
                    self.settings.rules,
                    unit,
                    actor,
                    &mut project,
                    member,
                    Some(*role),
                )?;
            }
            if activate {
                let mut user = unit.user(member)?;
                roles::may_manage_user(actor, &user)?;
                if user.status != crate::domain::user::Status::Active
                    && user.masked_at.is_none()
                    && !user.is_archived()
                {
                    user.status = crate::domain::user::Status::Active;
                    user.updated_at = unit.now;
                    unit.save(&user)?;
                    unit.audit(
                        AuditAction::UserActivate,
                        Some(member),
                        json!({ "via": "set-roles" }),
                    )?;
                }
            }
            Ok(())
        })
    }
}
