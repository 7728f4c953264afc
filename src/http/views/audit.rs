//! Response shapes for groups and the audit trail.

use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::group::Group;
use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub name: String,
    pub description: Option<String>,
    /// Set by a directory sync; such groups are read-only here.
    pub automatic: bool,
    pub created_at: DateTime<Utc>,
    /// Members (local or automatic); only in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
}

impl GroupView {
    pub fn new(group: &Group, members: Option<usize>) -> Self {
        Self {
            name: group.name.clone(),
            description: group.description.clone(),
            automatic: group.automatic,
            created_at: group.created_at,
            members,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub actor: Option<UserId>,
    pub action: AuditAction,
    pub target: Option<UserId>,
    pub details: serde_json::Value,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(entry: &AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            details: entry.details.clone(),
        }
    }
}
