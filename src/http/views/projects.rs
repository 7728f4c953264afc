//! Response shapes for organizations, projects and records.

use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    pub id: OrganizationId,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Organization> for OrganizationView {
    fn from(organization: &Organization) -> Self {
        Self {
            id: organization.id,
            code: organization.code.clone(),
            name: organization.name.clone(),
            description: organization.description.clone(),
            contact_email: organization.contact_email.clone(),
            contact_phone: organization.contact_phone.clone(),
            created_at: organization.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub id: ProjectId,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub settings: serde_json::Value,
    pub owners: BTreeSet<UserId>,
    pub created_at: DateTime<Utc>,
    /// Every member with their role; left out of listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<BTreeMap<UserId, ProjectRole>>,
}

impl ProjectView {
    pub fn new(project: &Project, members: Option<&BTreeMap<UserId, ProjectRole>>) -> Self {
        Self {
            id: project.id,
            name: project.name.clone(),
            kind: project.kind.clone(),
            description: project.description.clone(),
            settings: project.settings.clone(),
            owners: project.owners.clone(),
            created_at: project.created_at,
            members: members.cloned(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResourceView {
    pub id: ResourceId,
    pub kind: String,
    pub name: String,
    pub project: Option<ProjectId>,
    pub source_organization: Option<OrganizationId>,
    pub steward_organization: Option<OrganizationId>,
    pub owner: UserId,
    pub managers: BTreeSet<UserId>,
    pub assigned: BTreeSet<UserId>,
    pub created_by: UserId,
    pub updated_by: UserId,
    pub attributes: serde_json::Value,
    /// The thumbnail of the `media` file (`GET .../thumbnail`), once made.
    pub thumbnail: Option<crate::domain::media::ImageInfo>,
    /// "N member(s) assigned".
    pub assigned_summary: String,
    /// Who is assigned, by name: shown to those who manage the project's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_members: Option<Vec<PersonView>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user as a project page names them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonView {
    pub id: UserId,
    pub login: Option<String>,
    pub display_name: String,
}

impl From<&crate::domain::user::User> for PersonView {
    fn from(user: &crate::domain::user::User) -> Self {
        Self {
            id: user.id,
            login: user.login.as_ref().map(|login| login.as_str().to_owned()),
            display_name: user.effective_display_name(),
        }
    }
}

impl ResourceView {
    /// The view with the assigned members' names.
    pub fn with_names(resource: &Resource, names: Option<&[crate::domain::user::User]>) -> Self {
        Self {
            assigned_members: names.map(|users| users.iter().map(PersonView::from).collect()),
            ..Self::from(resource)
        }
    }
}

impl From<&Resource> for ResourceView {
    fn from(resource: &Resource) -> Self {
        Self {
            id: resource.id,
            kind: resource.kind.clone(),
            name: resource.name.clone(),
            project: resource.project,
            source_organization: resource.source_organization,
            steward_organization: resource.steward_organization,
            owner: resource.owner,
            managers: resource.managers.clone(),
            assigned: resource.assigned.clone(),
            created_by: resource.created_by,
            updated_by: resource.updated_by,
            attributes: resource.attributes.clone(),
            thumbnail: resource.thumbnail.clone(),
            assigned_summary: format!("{} member(s) assigned", resource.assigned.len()),
            assigned_members: None,
            created_at: resource.created_at,
            updated_at: resource.updated_at,
        }
    }
}
