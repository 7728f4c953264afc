//! Organizations, projects with their role ladder, and records ("resources")
//! owned by users and organizations.

use super::ValidationError;
use super::clock::Timestamp;
use super::user::UserId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub type OrganizationId = u64;
pub type ProjectId = u64;
pub type ResourceId = u64;

/// A member's role in a project; each step includes everything below it.
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
pub enum ProjectRole {
    /// Creates records; views and changes their own and those assigned to them.
    Member,
    /// Also views every record of the project.
    Readonly,
    /// Also adds entries (classifications, annotations) to any record.
    Annotator,
    /// Also changes or deletes any record and entry; runs reports.
    Editor,
    /// Also manages members (roles up to manager) and the project's settings.
    Manager,
    /// Also grants manager and owner, and deletes the project.
    Owner,
}

/// An organization users and records belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrganizationId,
    /// Unique, case-insensitive short code (used by CSV imports as `source`).
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub created_at: Timestamp,
}

/// A project. Its members and their roles live beside it in the store (one
/// entry per membership), so a project with thousands of members stays small;
/// only its owners are kept here, for the "always an owner" rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// `research`, `classification`, or any other kind.
    pub kind: String,
    pub description: Option<String>,
    pub settings: serde_json::Value,
    pub owners: BTreeSet<UserId>,
    pub created_at: Timestamp,
}

/// A project with its members.
#[derive(Debug, Clone)]
pub struct ProjectWithMembers {
    pub project: Project,
    pub members: BTreeMap<UserId, ProjectRole>,
}

/// A record: a station, collection, trail, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub kind: String,
    pub name: String,
    pub project: Option<ProjectId>,
    /// The organization the record belongs to; none in project-only installs.
    #[serde(default)]
    pub source_organization: Option<OrganizationId>,
    pub steward_organization: Option<OrganizationId>,
    pub owner: UserId,
    pub managers: BTreeSet<UserId>,
    pub assigned: BTreeSet<UserId>,
    pub created_by: UserId,
    pub updated_by: UserId,
    pub attributes: serde_json::Value,
    /// The thumbnail made from the record's `media` attribute, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<super::media::ImageInfo>,
    /// Who last set the `media` attribute: a file is read from the owner's
    /// home only when the owner (or an admin) named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Resource {
    /// The `media` attribute: a file path relative to the owner's FTP home.
    pub fn media(&self) -> Option<&str> {
        self.attributes
            .get("media")
            .and_then(|media| media.as_str())
            .filter(|path| !path.trim().is_empty())
    }

    /// Replaces the attributes as `editor`. When `media` changes, the
    /// thumbnail no longer belongs to the record and `editor` becomes the one
    /// who named the file; returns whether a thumbnail was dropped.
    pub fn set_attributes(&mut self, attributes: serde_json::Value, editor: UserId) -> bool {
        let before = self.media().map(str::to_owned);
        self.attributes = attributes;
        if self.media() == before.as_deref() {
            return false;
        }
        self.media_by = self.media().map(|_| editor);
        self.thumbnail.take().is_some()
    }

    /// Owner, creator or manager of the record.
    /// Whether `user` holds the record: its owner or one of its managers.
    /// Having created it gives no right once ownership has moved on.
    pub fn is_own(&self, user: UserId) -> bool {
        self.owner == user || self.managers.contains(&user)
    }
}

/// Checks an organization code: 1 to 32 letters, digits, `-` or `_`.
pub fn validate_code(code: &str) -> Result<(), ValidationError> {
    let ok = !code.is_empty()
        && code.chars().count() <= 32
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "code",
            "must be 1 to 32 letters, digits, - or _",
        ))
    }
}

/// Checks a required name-like field.
pub fn validate_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let length = name.trim().chars().count();
    if (1..=200).contains(&length) {
        Ok(())
    } else {
        Err(ValidationError::new(field, "must be 1 to 200 characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_orders_roles_and_codes_validate() {
        use ProjectRole::*;
        assert!(
            Member < Readonly
                && Readonly < Annotator
                && Annotator < Editor
                && Editor < Manager
                && Manager < Owner
        );
        for (code, ok) in [
            ("NZ-DOC", true),
            ("a_1", true),
            ("", false),
            ("has space", false),
            (&"x".repeat(33), false),
        ] {
            assert_eq!(validate_code(code).is_ok(), ok, "{code}");
        }
    }
}
