//! Organizations, projects with their members, and records: every change asks
//! the permission rule in `domain::permissions` first.

use super::{Directory, Principal, ServiceError, ServiceResult, Unit};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::permissions::{Action, Decision, decide, decide_project};
use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, ProjectView, Resource,
    ResourceId, validate_code, validate_name,
};
use crate::domain::roles::{self, Capability, SystemRole};
use crate::domain::user::{DELETED_USER_ID, User, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;

/// Fields of an organization; all optional on update.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
}

/// Fields of a project; all optional on update.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub settings: Option<serde_json::Value>,
}

/// Fields of a record; all optional on update except where noted.
#[derive(Debug, Clone, Default, Deserialize)]
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

/// What deleting an organization removes (or, as a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrganizationDeletion {
    pub dry_run: bool,
    pub deleted_resources: Vec<ResourceId>,
    pub steward_cleared: Vec<ResourceId>,
    pub detached_users: Vec<UserId>,
}

/// What a CSV import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub created: Vec<ResourceId>,
    /// Rows for another organization, by line number (the header is line 1).
    pub skipped: Vec<SkippedRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedRow {
    pub line: u64,
    pub source: String,
}

/// Columns a records CSV must have; every other column becomes an attribute.
const IMPORT_COLUMNS: [&str; 3] = ["kind", "name", "source"];

/// A CSV row ready to become a record.
struct ImportRow {
    kind: String,
    name: String,
    project: Option<ProjectId>,
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// Parses a records CSV for organization `code`: rows of other sources are
/// skipped and reported; any malformed row fails the whole import, naming its line.
fn parse_import(csv_text: &str, code: &str) -> ServiceResult<(Vec<ImportRow>, Vec<SkippedRow>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ValidationError::new("line 1", e.to_string()))?
        .clone();
    for column in IMPORT_COLUMNS {
        if !headers.iter().any(|h| h == column) {
            return Err(
                ValidationError::new("line 1", format!("missing column `{column}`")).into(),
            );
        }
    }
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ValidationError::new(format!("line {line}"), e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
        };
        if !field("source").eq_ignore_ascii_case(code) {
            skipped.push(SkippedRow {
                line,
                source: field("source").to_owned(),
            });
            continue;
        }
        let bad = |message: &str| ValidationError::new(format!("line {line}"), message.to_owned());
        let (kind, name) = (field("kind"), field("name"));
        if kind.is_empty() || name.is_empty() {
            return Err(bad("kind and name are required").into());
        }
        let project = match field("project") {
            "" => None,
            raw => Some(
                raw.parse()
                    .map_err(|_| bad("project must be a project id"))?,
            ),
        };
        let attributes = headers
            .iter()
            .zip(record.iter())
            .filter(|(h, v)| !IMPORT_COLUMNS.contains(h) && *h != "project" && !v.is_empty())
            .map(|(h, v)| (h.to_owned(), json!(v)))
            .collect();
        rows.push(ImportRow {
            kind: kind.to_owned(),
            name: name.to_owned(),
            project,
            attributes,
        });
    }
    Ok((rows, skipped))
}

/// A project as its member sees it in "my projects".
#[derive(Debug, Clone, Serialize)]
pub struct MyProject {
    pub id: ProjectId,
    pub name: String,
    pub kind: String,
    pub role: ProjectRole,
}

fn is_admin(user: &User) -> bool {
    user.has_role(SystemRole::Admin)
}

fn refuse(decision: Decision) -> ServiceResult<()> {
    if decision.allowed {
        Ok(())
    } else {
        Err(ServiceError::NotPermitted(decision.reason))
    }
}

fn required(field: &str, value: &Option<String>) -> ServiceResult<String> {
    let value = value.clone().unwrap_or_default();
    validate_name(field, &value)?;
    Ok(value.trim().to_owned())
}

impl Directory {
    fn load_project(unit: &Unit, id: ProjectId) -> ServiceResult<Project> {
        unit.tx
            .project(id)?
            .ok_or(ServiceError::NotFound("project"))
    }

    fn load_resource(unit: &Unit, id: ResourceId) -> ServiceResult<Resource> {
        unit.tx
            .resource(id)?
            .ok_or(ServiceError::NotFound("resource"))
    }

    /// `user`'s role in the record's project (`None` without one).
    fn role_in(
        unit: &Unit,
        resource: &Resource,
        user: UserId,
    ) -> ServiceResult<Option<ProjectRole>> {
        match resource.project {
            Some(project) => Ok(unit.tx.membership(project, user)?),
            None => Ok(None),
        }
    }

    /// Records that name `user` as owner, creator, last editor, manager or assignee.
    pub(crate) fn records_naming(&self, user: UserId) -> ServiceResult<Vec<ResourceId>> {
        Ok(self
            .snapshot()
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

    /// A deleted or archived user's records: ownership, creation and last edit
    /// pass to `deleted_user`; the user leaves managers and assignments.
    pub(crate) fn release_records(
        unit: &Unit,
        records: &[ResourceId],
        user: UserId,
    ) -> ServiceResult<()> {
        for id in records {
            let Some(mut record) = unit.tx.resource(*id)? else {
                continue;
            };
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
            unit.tx.put_resource(&record)?;
        }
        Ok(())
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

    /// Masking reaches records: the configured personal attributes on the
    /// user's own records (owned or created) are replaced.
    pub(crate) fn mask_record_attributes(
        &self,
        unit: &Unit,
        records: &[ResourceId],
        user: UserId,
    ) -> ServiceResult<()> {
        let keys = &self.settings.masked_record_attributes;
        for id in records {
            let Some(mut record) = unit.tx.resource(*id)? else {
                continue;
            };
            if record.owner != user && record.created_by != user {
                continue;
            }
            let Some(attributes) = record.attributes.as_object_mut() else {
                continue;
            };
            let mut changed = false;
            for key in keys {
                if let Some(value) = attributes.get_mut(key) {
                    *value = json!(format!("masked-{user}"));
                    changed = true;
                }
            }
            if changed {
                unit.tx.put_resource(&record)?;
            }
        }
        Ok(())
    }

    // ---- organizations

    pub fn create_organization(
        &self,
        principal: &Principal,
        input: OrganizationInput,
    ) -> ServiceResult<Organization> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::GrantRoles)?;
        let code = input.code.clone().unwrap_or_default();
        validate_code(&code)?;
        let name = required("name", &input.name)?;
        self.write(Some(actor.id), |unit| {
            let organization = Organization {
                id: unit.tx.next_id("organization")?,
                code: code.clone(),
                name: name.clone(),
                description: input.description.clone(),
                contact_email: input.contact_email.clone(),
                contact_phone: input.contact_phone.clone(),
                created_at: unit.now,
            };
            unit.tx.put_organization(&organization)?;
            unit.audit(
                AuditAction::OrganizationCreate,
                None,
                json!({ "organization": organization.id }),
            )?;
            Ok(organization)
        })
    }

    pub fn get_organization(
        &self,
        principal: &Principal,
        id: OrganizationId,
    ) -> ServiceResult<Organization> {
        principal.unrestricted()?;
        self.snapshot()
            .organization(id)?
            .ok_or(ServiceError::NotFound("organization"))
    }

    pub fn list_organizations(&self, principal: &Principal) -> ServiceResult<Vec<Organization>> {
        principal.unrestricted()?;
        Ok(self.snapshot().organizations()?)
    }

    /// Admins, or members of the organization, edit its details; only admins change the code.
    pub fn update_organization(
        &self,
        principal: &Principal,
        id: OrganizationId,
        input: OrganizationInput,
    ) -> ServiceResult<Organization> {
        let actor = principal.unrestricted()?;
        if !is_admin(actor) && (actor.organization != Some(id) || input.code.is_some()) {
            return Err(ServiceError::NotPermitted(
                "only admins and the organization's members may edit it; only admins change its code",
            ));
        }
        self.write(Some(actor.id), |unit| {
            let mut organization = unit
                .tx
                .organization(id)?
                .ok_or(ServiceError::NotFound("organization"))?;
            if let Some(code) = &input.code {
                validate_code(code)?;
                organization.code = code.clone();
            }
            if input.name.is_some() {
                organization.name = required("name", &input.name)?;
            }
            for (slot, value) in [
                (&mut organization.description, &input.description),
                (&mut organization.contact_email, &input.contact_email),
                (&mut organization.contact_phone, &input.contact_phone),
            ] {
                if value.is_some() {
                    *slot = value.clone().filter(|v| !v.trim().is_empty());
                }
            }
            unit.tx.put_organization(&organization)?;
            unit.audit(
                AuditAction::OrganizationUpdate,
                None,
                json!({ "organization": id }),
            )?;
            Ok(organization)
        })
    }

    /// Deletes an organization with its records, except records it only
    /// stewards (kept, steward cleared); members lose their organization.
    pub fn delete_organization(
        &self,
        principal: &Principal,
        id: OrganizationId,
        dry_run: bool,
    ) -> ServiceResult<OrganizationDeletion> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::GrantRoles)?;
        self.snapshot()
            .organization(id)?
            .ok_or(ServiceError::NotFound("organization"))?;
        let resources = self.snapshot().resources()?;
        let plan = OrganizationDeletion {
            dry_run,
            deleted_resources: resources
                .iter()
                .filter(|r| r.source_organization == id)
                .map(|r| r.id)
                .collect(),
            steward_cleared: resources
                .iter()
                .filter(|r| r.source_organization != id && r.steward_organization == Some(id))
                .map(|r| r.id)
                .collect(),
            detached_users: self
                .snapshot()
                .users()?
                .iter()
                .filter(|u| u.organization == Some(id))
                .map(|u| u.id)
                .collect(),
        };
        if dry_run {
            return Ok(plan);
        }
        self.write(Some(actor.id), |unit| {
            let organization = unit
                .tx
                .organization(id)?
                .ok_or(ServiceError::NotFound("organization"))?;
            for resource in &plan.deleted_resources {
                unit.tx.remove_resource(*resource)?;
            }
            for resource in &plan.steward_cleared {
                let mut record = Self::load_resource(unit, *resource)?;
                record.steward_organization = None;
                unit.tx.put_resource(&record)?;
            }
            for user in &plan.detached_users {
                let mut user = unit.user(*user)?;
                user.organization = None;
                unit.save(&user)?;
            }
            unit.tx.remove_organization(&organization)?;
            unit.audit(
                AuditAction::OrganizationDelete,
                None,
                json!({ "organization": id, "deleted_resources": plan.deleted_resources.len() }),
            )
        })?;
        Ok(plan)
    }

    /// Puts user `id` in an organization (or none); admins and user managers.
    pub fn set_user_organization(
        &self,
        principal: &Principal,
        id: UserId,
        organization: Option<OrganizationId>,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write(Some(actor.id), |unit| {
            let mut user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            if let Some(org) = organization {
                unit.tx
                    .organization(org)?
                    .ok_or_else(|| ValidationError::new("organization", "no such organization"))?;
            }
            user.organization = organization;
            user.updated_at = unit.now;
            unit.save(&user)?;
            unit.audit(
                AuditAction::UserSetOrganization,
                Some(id),
                json!({ "organization": organization }),
            )
        })
    }

    // ---- projects

    fn view(&self, project: Project) -> ServiceResult<ProjectView> {
        let members = self.snapshot().members(project.id)?;
        Ok(ProjectView { project, members })
    }

    pub fn create_project(
        &self,
        principal: &Principal,
        input: ProjectInput,
    ) -> ServiceResult<ProjectView> {
        let actor = principal.unrestricted()?;
        if !is_admin(actor) && actor.organization.is_none() {
            return Err(ServiceError::NotPermitted(
                "users without an organization may not create projects",
            ));
        }
        let name = required("name", &input.name)?;
        let project = self.write(Some(actor.id), |unit| {
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

    pub fn get_project(&self, principal: &Principal, id: ProjectId) -> ServiceResult<ProjectView> {
        let actor = principal.unrestricted()?;
        let project = self
            .snapshot()
            .project(id)?
            .ok_or(ServiceError::NotFound("project"))?;
        if actor.system_roles.is_empty() {
            refuse(decide_project(
                actor,
                Action::View,
                self.snapshot().membership(id, actor.id)?,
            ))?;
        }
        self.view(project)
    }

    /// Admins and directory readers see every project; others their own.
    pub fn list_projects(&self, principal: &Principal) -> ServiceResult<Vec<Project>> {
        let actor = principal.unrestricted()?;
        let mine = self.snapshot().projects_of(actor.id)?;
        let all = self.snapshot().projects()?;
        Ok(all
            .into_iter()
            .filter(|p| !actor.system_roles.is_empty() || mine.contains_key(&p.id))
            .collect())
    }

    pub fn my_projects(&self, principal: &Principal) -> ServiceResult<Vec<MyProject>> {
        let mut mine = Vec::new();
        for (id, role) in self.snapshot().projects_of(principal.user.id)? {
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
    ) -> ServiceResult<ProjectView> {
        let actor = principal.unrestricted()?;
        let project = self.write(Some(actor.id), |unit| {
            let mut project = Self::load_project(unit, id)?;
            refuse(decide_project(
                actor,
                Action::Configure,
                unit.tx.membership(id, actor.id)?,
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
        self.write(Some(actor.id), |unit| {
            Self::load_project(unit, id)?;
            refuse(decide_project(
                actor,
                Action::DeleteProject,
                unit.tx.membership(id, actor.id)?,
            ))?;
            for resource in &orphans {
                let mut record = Self::load_resource(unit, *resource)?;
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
        unit: &Unit,
        actor: &User,
        project: &mut Project,
        member: UserId,
        role: Option<ProjectRole>,
    ) -> ServiceResult<()> {
        let actor_role = unit.tx.membership(project.id, actor.id)?;
        refuse(decide_project(actor, Action::ManageMembers, actor_role))?;
        unit.user(member)?;
        let current = unit.tx.membership(project.id, member)?;
        let acting_owner = is_admin(actor) || actor_role == Some(ProjectRole::Owner);
        let touches_top = [current, role]
            .into_iter()
            .flatten()
            .any(|r| r >= ProjectRole::Manager);
        if touches_top && !acting_owner {
            return Err(ServiceError::NotPermitted(
                "only owners grant or take manager and owner",
            ));
        }
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
    ) -> ServiceResult<ProjectView> {
        let actor = principal.unrestricted()?;
        let project = self.write(Some(actor.id), |unit| {
            let mut project = Self::load_project(unit, project)?;
            Self::set_member_in(unit, actor, &mut project, member, role)?;
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
        self.write(Some(actor.id), |unit| {
            for (project, role) in roles_to_set {
                let mut project = Self::load_project(unit, *project)?;
                Self::set_member_in(unit, actor, &mut project, member, Some(*role))?;
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

    // ---- records

    pub fn create_resource(
        &self,
        principal: &Principal,
        input: ResourceInput,
    ) -> ServiceResult<Resource> {
        let actor = principal.unrestricted()?;
        let name = required("name", &input.name)?;
        let kind = required("kind", &input.kind)?;
        let source = match (
            is_admin(actor),
            input.source_organization,
            actor.organization,
        ) {
            (true, Some(org), _) => org,
            (false, Some(org), Some(own)) if org != own => {
                return Err(ServiceError::NotPermitted(
                    "records are created for your own organization",
                ));
            }
            (_, _, Some(own)) => own,
            (_, Some(org), None) => org,
            (_, None, None) => {
                return Err(ServiceError::NotPermitted(
                    "users without an organization may not create records",
                ));
            }
        };
        self.write(Some(actor.id), |unit| {
            unit.tx.organization(source)?.ok_or_else(|| {
                ValidationError::new("source_organization", "no such organization")
            })?;
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
                if !is_admin(actor) && unit.tx.membership(project.id, actor.id)?.is_none() {
                    return Err(ServiceError::NotPermitted(
                        "only project members create records in a project",
                    ));
                }
            }
            let resource = Resource {
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
                attributes: input.attributes.clone().unwrap_or_else(|| json!({})),
                created_at: unit.now,
                updated_at: unit.now,
            };
            unit.tx.put_resource(&resource)?;
            unit.audit(
                AuditAction::ResourceCreate,
                None,
                json!({ "resource": resource.id }),
            )?;
            Ok(resource)
        })
    }

    /// Imports records for organization `org` from CSV, all in one transaction.
    /// Admins import for any organization, others only for their own.
    pub fn import_records(
        &self,
        principal: &Principal,
        org: OrganizationId,
        csv_text: &str,
    ) -> ServiceResult<ImportReport> {
        let actor = principal.unrestricted()?;
        if !is_admin(actor) && actor.organization != Some(org) {
            return Err(ServiceError::NotPermitted(
                "only admins import records for another organization",
            ));
        }
        let organization = self
            .snapshot()
            .organization(org)?
            .ok_or(ServiceError::NotFound("organization"))?;
        let (rows, skipped) = parse_import(csv_text, &organization.code)?;
        let created = self.write(Some(actor.id), |unit| {
            let mut created = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(project) = row.project {
                    let project = unit.tx.project(project)?.ok_or_else(|| {
                        ValidationError::new("project", format!("no project {project}"))
                    })?;
                    if !is_admin(actor) && unit.tx.membership(project.id, actor.id)?.is_none() {
                        return Err(ServiceError::NotPermitted(
                            "only project members create records in a project",
                        ));
                    }
                }
                let resource = Resource {
                    id: unit.tx.next_id("resource")?,
                    kind: row.kind.clone(),
                    name: row.name.clone(),
                    project: row.project,
                    source_organization: org,
                    steward_organization: None,
                    owner: actor.id,
                    managers: BTreeSet::new(),
                    assigned: BTreeSet::new(),
                    created_by: actor.id,
                    updated_by: actor.id,
                    attributes: serde_json::Value::Object(row.attributes.clone()),
                    created_at: unit.now,
                    updated_at: unit.now,
                };
                unit.tx.put_resource(&resource)?;
                created.push(resource.id);
            }
            unit.audit(
                AuditAction::ResourceImport,
                None,
                json!({ "organization": org, "created": created.len() }),
            )?;
            Ok(created)
        })?;
        Ok(ImportReport { created, skipped })
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
        refuse(decide(actor, action, &resource, role))?;
        Ok(resource)
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
        self.write(Some(actor.id), |unit| {
            let mut resource = Self::load_resource(unit, id)?;
            refuse(decide(
                actor,
                Action::Edit,
                &resource,
                Self::role_in(unit, &resource, actor.id)?,
            ))?;
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
                resource.attributes = attributes.clone();
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
        self.write(Some(actor.id), |unit| {
            let resource = Self::load_resource(unit, id)?;
            refuse(decide(
                actor,
                Action::Delete,
                &resource,
                Self::role_in(unit, &resource, actor.id)?,
            ))?;
            unit.tx.remove_resource(id)?;
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
        self.write(Some(actor.id), |unit| {
            let mut resource = Self::load_resource(unit, id)?;
            Self::may_manage_record(unit, actor, &resource)?;
            for user in users {
                unit.user(*user)?;
                if assign {
                    resource.assigned.insert(*user);
                    continue;
                }
                if let Some(role) = Self::role_in(unit, &resource, *user)?.filter(|r| *r >= ProjectRole::Editor) {
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
        self.write(Some(actor.id), |unit| {
            let mut resource = Self::load_resource(unit, id)?;
            Self::may_manage_record(unit, actor, &resource)?;
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
    fn may_manage_record(unit: &Unit, actor: &User, resource: &Resource) -> ServiceResult<()> {
        match resource.project {
            Some(project) => refuse(decide_project(
                actor,
                Action::ManageMembers,
                unit.tx.membership(project, actor.id)?,
            )),
            None => refuse(decide(actor, Action::Delete, resource, None)),
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
        Ok(decide(&subject, action, &resource, role))
    }
}
