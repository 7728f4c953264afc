//! Records (stations, trails, cameras, ...): created for an organization,
//! optionally in a project, owned, managed and assigned; every access asks
//! `domain::permissions`. Also the CSV import of records and what happens to
//! records when their owner leaves or is masked.

mod entries;
mod import;
mod names;
mod thumbnails;

pub use entries::{ProjectReport, RecordCount};
pub use import::{ImportReport, SkippedRow};
pub use names::Member;
pub use thumbnails::ThumbnailSelection;

use super::core::area_service;
use super::projects::{load_resource, refuse, required, role_in};
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::media::MediaKey;
use crate::domain::permissions::{
    Action, Decision, decide, decide_project, decide_record_in_project, record_source,
};
use crate::domain::projects::{OrganizationId, ProjectId, ProjectRole, Resource, ResourceId};
use crate::domain::roles::{self, Capability};
use crate::domain::user::{DELETED_USER_ID, User, UserId};
use crate::store::ReadView;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;

/// Fields of a record; all optional on update except where noted.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceInput {
    pub kind: Option<String>,
    pub name: Option<String>,
    /// Only at creation.
    pub project: Option<ProjectId>,
    /// Only at creation, and only admins: others create for their own organization.
    pub source_organization: Option<OrganizationId>,
    pub steward_organization: Option<OrganizationId>,
    pub attributes: Option<serde_json::Value>,
}

/// Records that name `user` as owner, creator, last editor, manager or assignee.
pub(crate) fn records_naming(view: &dyn ReadView, user: UserId) -> ServiceResult<Vec<ResourceId>> {
    Ok(view
        .resources()?
        .into_iter()
        .filter(|r| {
            [r.owner, r.created_by, r.updated_by].contains(&user)
                || r.managers.contains(&user)
                || r.assigned.contains(&user)
        })
        .map(|r| r.id)
        .collect())
}

/// Applies `change` to each of `records` that still exists, saving the ones
/// it reports as changed.
fn update_records(
    unit: &Unit,
    records: &[ResourceId],
    mut change: impl FnMut(&mut Resource) -> bool,
) -> ServiceResult<()> {
    for id in records {
        if let Some(mut record) = unit.tx.resource(*id)? {
            if change(&mut record) {
                unit.tx.put_resource(&record)?;
            }
        }
    }
    Ok(())
}

/// A deleted or archived user's records: ownership, creation and last edit
/// pass to `deleted_user`; the user leaves managers and assignments.
pub(crate) fn release_records(
    unit: &Unit,
    records: &[ResourceId],
    user: UserId,
) -> ServiceResult<()> {
    update_records(unit, records, |record| {
        for slot in [
            &mut record.owner,
            &mut record.created_by,
            &mut record.updated_by,
        ] {
            if *slot == user {
                *slot = DELETED_USER_ID;
            }
        }
        record.managers.remove(&user);
        record.assigned.remove(&user);
        true
    })
}

/// Masking reaches records: the configured personal attributes (`keys`) on
/// the user's own records (owned or created) are replaced.
pub(crate) fn mask_record_attributes(
    unit: &Unit,
    keys: &[String],
    records: &[ResourceId],
    user: UserId,
) -> ServiceResult<()> {
    let mut unpictured = Vec::new();
    update_records(unit, records, |record| {
        if record.owner != user && record.created_by != user {
            return false;
        }
        let Some(mut attributes) = record.attributes.as_object().cloned() else {
            return false;
        };
        let mut changed = false;
        for key in keys {
            if let Some(value) = attributes.get_mut(key) {
                *value = json!(format!("masked-{user}"));
                changed = true;
            }
        }
        if changed && record.set_attributes(attributes.into(), user) {
            unpictured.push(record.id);
        }
        changed
    })?;
    for id in unpictured {
        unit.tx.remove_media(MediaKey::Thumbnail(id))?;
    }
    Ok(())
}

/// Removes record `id` with its entries and thumbnail.
pub(crate) fn remove_record(unit: &Unit, id: ResourceId) -> ServiceResult<()> {
    for entry in unit.tx.entries(id)? {
        unit.tx.remove_entry(id, entry.id)?;
    }
    unit.tx.remove_media(MediaKey::Thumbnail(id))?;
    unit.tx.remove_resource(id)?;
    Ok(())
}

area_service!(
    /// Records and their access.
    Records {}
);

impl Records {
    pub fn create_resource(
        &self,
        principal: &Principal,
        input: ResourceInput,
    ) -> ServiceResult<Resource> {
        let actor = principal.unrestricted()?;
        let name = required("name", &input.name)?;
        let kind = required("kind", &input.kind)?;
        let rules = self.settings.rules;
        let source = record_source(actor, input.source_organization, rules)
            .map_err(|d| ServiceError::NotPermitted(d.reason))?;
        self.write_as(actor, |unit| {
            if let Some(source) = source {
                unit.tx.organization(source)?.ok_or_else(|| {
                    ValidationError::new("source_organization", "no such organization")
                })?;
            }
            if let Some(steward) = input.steward_organization {
                unit.tx.organization(steward)?.ok_or_else(|| {
                    ValidationError::new("steward_organization", "no such organization")
                })?;
            }
            if let Some(project) = input.project {
                let project = unit
                    .tx
                    .project(project)?
                    .ok_or_else(|| ValidationError::new("project", "no such project"))?;
                let role = unit.tx.membership(project.id, actor.id)?;
                refuse(decide_record_in_project(actor, role, rules))?;
            }
            let mut resource = Resource {
                id: unit.tx.next_id("resource")?,
                kind: kind.clone(),
                name: name.clone(),
                project: input.project,
                source_organization: source,
                steward_organization: input.steward_organization,
                owner: actor.id,
                managers: BTreeSet::new(),
                assigned: BTreeSet::new(),
                created_by: actor.id,
                updated_by: actor.id,
                attributes: json!({}),
                thumbnail: None,
                media_by: None,
                created_at: unit.now,
                updated_at: unit.now,
            };
            let attributes = input.attributes.clone().unwrap_or_else(|| json!({}));
            resource.set_attributes(attributes, actor.id);
            unit.tx.put_resource(&resource)?;
            unit.audit(
                AuditAction::ResourceCreate,
                None,
                json!({ "resource": resource.id }),
            )?;
            Ok(resource)
        })
    }

    /// Loads a record after checking `action` on it for the caller.
    fn checked_resource(
        &self,
        actor: &User,
        id: ResourceId,
        action: Action,
    ) -> ServiceResult<Resource> {
        let resource = self
            .snapshot()
            .resource(id)?
            .ok_or(ServiceError::NotFound("resource"))?;
        let role = match resource.project {
            Some(project) => self.snapshot().membership(project, actor.id)?,
            None => None,
        };
        refuse(decide(actor, action, &resource, role, self.settings.rules))?;
        Ok(resource)
    }

    /// Inside a unit: loads record `id` after checking `action` on it.
    fn checked_in(
        &self,
        unit: &Unit,
        actor: &User,
        id: ResourceId,
        action: Action,
    ) -> ServiceResult<Resource> {
        let resource = load_resource(unit, id)?;
        let role = role_in(unit, &resource, actor.id)?;
        refuse(decide(actor, action, &resource, role, self.settings.rules))?;
        Ok(resource)
    }

    /// Checks `action` on project `project` for `actor` in `view`.
    fn checked_project(
        &self,
        view: &dyn ReadView,
        actor: &User,
        project: ProjectId,
        action: Action,
    ) -> ServiceResult<()> {
        view.project(project)?
            .ok_or(ServiceError::NotFound("project"))?;
        let role = view.membership(project, actor.id)?;
        refuse(decide_project(actor, action, role, self.settings.rules))
    }

    pub fn get_resource(&self, principal: &Principal, id: ResourceId) -> ServiceResult<Resource> {
        self.checked_resource(principal.unrestricted()?, id, Action::View)
    }

    /// The records the caller may view, optionally of one project.
    pub fn list_resources(
        &self,
        principal: &Principal,
        project: Option<ProjectId>,
    ) -> ServiceResult<Vec<Resource>> {
        let actor = principal.unrestricted()?;
        let roles = self.snapshot().projects_of(actor.id)?;
        Ok(self
            .snapshot()
            .resources()?
            .into_iter()
            .filter(|r| project.is_none_or(|p| r.project == Some(p)))
            .filter(|r| {
                decide(
                    actor,
                    Action::View,
                    r,
                    r.project.and_then(|p| roles.get(&p).copied()),
                    self.settings.rules,
                )
                .allowed
            })
            .collect())
    }

    pub fn update_resource(
        &self,
        principal: &Principal,
        id: ResourceId,
        input: ResourceInput,
    ) -> ServiceResult<Resource> {
        let actor = principal.unrestricted()?;
        if input.project.is_some() || input.source_organization.is_some() {
            return Err(ValidationError::new(
                "project",
                "project and source_organization are fixed at creation",
            )
            .into());
        }
        self.write_as(actor, |unit| {
            let mut resource = self.checked_in(unit, actor, id, Action::Edit)?;
            if input.name.is_some() {
                resource.name = required("name", &input.name)?;
            }
            if input.kind.is_some() {
                resource.kind = required("kind", &input.kind)?;
            }
            if let Some(steward) = input.steward_organization {
                unit.tx.organization(steward)?.ok_or_else(|| {
                    ValidationError::new("steward_organization", "no such organization")
                })?;
                resource.steward_organization = Some(steward);
            }
            if let Some(attributes) = &input.attributes {
                if resource.set_attributes(attributes.clone(), actor.id) {
                    unit.tx.remove_media(MediaKey::Thumbnail(id))?;
                }
            }
            resource.updated_by = actor.id;
            resource.updated_at = unit.now;
            unit.tx.put_resource(&resource)?;
            unit.audit(AuditAction::ResourceUpdate, None, json!({ "resource": id }))?;
            Ok(resource)
        })
    }

    pub fn delete_resource(&self, principal: &Principal, id: ResourceId) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            self.checked_in(unit, actor, id, Action::Delete)?;
            remove_record(unit, id)?;
            unit.audit(AuditAction::ResourceDelete, None, json!({ "resource": id }))
        })
    }

    /// Assigns (or unassigns) `users` to record `id`. Needs the right to manage
    /// the project's members (or to own a project-less record). Unassigning
    /// someone whose role already gives access to every record is refused.
    pub fn assign(
        &self,
        principal: &Principal,
        id: ResourceId,
        users: &[UserId],
        assign: bool,
    ) -> ServiceResult<Resource> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let mut resource = load_resource(unit, id)?;
            self.may_manage_record(unit, actor, &resource)?;
            for user in users {
                unit.user(*user)?;
                if assign {
                    if resource.project.is_some() && role_in(unit, &resource, *user)?.is_none() {
                        let message = format!("user {user} is not a member of the record's project; add them as a member first");
                        return Err(ServiceError::conflict("not_a_member", message));
                    }
                    resource.assigned.insert(*user);
                    continue;
                }
                if let Some(role) = role_in(unit, &resource, *user)?.filter(|r| *r >= ProjectRole::Editor) {
                    let message = format!("user {user} is {role:?} in the project, which gives access to every record; unassigning changes nothing");
                    return Err(ServiceError::conflict("role_grants_access", message.to_lowercase()));
                }
                resource.assigned.remove(user);
            }
            resource.updated_by = actor.id;
            resource.updated_at = unit.now;
            unit.tx.put_resource(&resource)?;
            unit.audit(if assign { AuditAction::ResourceAssign } else { AuditAction::ResourceUnassign }, None, json!({ "resource": id, "users": users }))?;
            Ok(resource)
        })
    }

    /// Gives record `id` a new owner and managers; collaborators not named leave.
    pub fn set_owner(
        &self,
        principal: &Principal,
        id: ResourceId,
        owner: UserId,
        managers: &BTreeSet<UserId>,
    ) -> ServiceResult<Resource> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let mut resource = load_resource(unit, id)?;
            self.may_manage_record(unit, actor, &resource)?;
            for user in managers.iter().chain([&owner]) {
                unit.user(*user)?;
            }
            resource.owner = owner;
            resource.managers = managers.clone();
            resource.updated_by = actor.id;
            resource.updated_at = unit.now;
            unit.tx.put_resource(&resource)?;
            unit.audit(
                AuditAction::ResourceSetOwner,
                Some(owner),
                json!({ "resource": id }),
            )?;
            Ok(resource)
        })
    }

    /// Assigning and ownership changes need the right to manage the project's
    /// members, or for a project-less record the right to delete it.
    fn may_manage_record(
        &self,
        unit: &Unit,
        actor: &User,
        resource: &Resource,
    ) -> ServiceResult<()> {
        let rules = self.settings.rules;
        match resource.project {
            Some(project) => refuse(decide_project(
                actor,
                Action::ManageMembers,
                unit.tx.membership(project, actor.id)?,
                rules,
            )),
            None => refuse(decide(actor, Action::Delete, resource, None, rules)),
        }
    }

    /// `GET /api/v1/authz/check`: may `user` do `action` to record `resource`?
    /// Directory readers may ask about anyone; others about themselves.
    pub fn check_permission(
        &self,
        principal: &Principal,
        user: UserId,
        action: Action,
        resource: ResourceId,
    ) -> ServiceResult<Decision> {
        let actor = principal.unrestricted()?;
        if actor.id != user {
            roles::require(actor, Capability::ReadDirectory)?;
        }
        let subject = self.current_user(user)?;
        let resource = self
            .snapshot()
            .resource(resource)?
            .ok_or(ServiceError::NotFound("resource"))?;
        let role = match resource.project {
            Some(project) => self.snapshot().membership(project, user)?,
            None => None,
        };
        Ok(decide(
            &subject,
            action,
            &resource,
            role,
            self.settings.rules,
        ))
    }
}
