//! Organizations: admins create and delete them (deleting takes their
//! records, except records they only steward), members edit their details,
//! and users belong to at most one.

use super::core::area_service;
use super::projects::{load_resource, refuse, required};
use super::{Principal, ServiceError, ServiceResult};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::permissions::{OrganizationAction, decide_organization};
use crate::domain::projects::{Organization, OrganizationId, ResourceId, validate_code};
use crate::domain::roles::{self, Capability};
use crate::domain::user::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Fields of an organization; all optional on update.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
}

/// What deleting an organization removes (or, as a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct OrganizationDeletion {
    pub dry_run: bool,
    pub deleted_resources: Vec<ResourceId>,
    pub steward_cleared: Vec<ResourceId>,
    pub detached_users: Vec<UserId>,
}

area_service!(
    /// Organizations and their members.
    Organizations {}
);

impl Organizations {
    pub fn create_organization(
        &self,
        principal: &Principal,
        input: OrganizationInput,
    ) -> ServiceResult<Organization> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::GrantRoles)?;
        let code = input.code.clone().unwrap_or_default();
        validate_code(&code)?;
        // Only the code is required; the name defaults to it.
        let name = match &input.name {
            Some(_) => required("name", &input.name)?,
            None => code.clone(),
        };
        self.write_as(actor, |unit| {
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
        refuse(decide_organization(
            actor,
            OrganizationAction::EditDetails,
            id,
        ))?;
        if input.code.is_some() {
            refuse(decide_organization(
                actor,
                OrganizationAction::ChangeCode,
                id,
            ))?;
        }
        self.write_as(actor, |unit| {
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
                .filter(|r| r.source_organization == Some(id))
                .map(|r| r.id)
                .collect(),
            steward_cleared: resources
                .iter()
                .filter(|r| r.source_organization != Some(id) && r.steward_organization == Some(id))
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
        self.write_as(actor, |unit| {
            let organization = unit
                .tx
                .organization(id)?
                .ok_or(ServiceError::NotFound("organization"))?;
            for resource in &plan.deleted_resources {
                super::records::remove_record(unit, *resource)?;
            }
            for resource in &plan.steward_cleared {
                let mut record = load_resource(unit, *resource)?;
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
        self.write_as(actor, |unit| {
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
}
