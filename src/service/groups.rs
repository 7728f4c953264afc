//! Groups: create, list, delete, and membership changes. Automatic groups belong
//! to a directory sync and cannot be changed here.

use super::core::area_service;
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::group::{Group, validate_group_name};
use crate::domain::roles::{self, Capability};
use std::collections::BTreeSet;

/// A group with how many users are in it.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group: Group,
    pub members: usize,
}

area_service!(
    /// Groups: local ones admins manage, automatic ones only a sync changes.
    Groups {}
);

impl Groups {
    /// Ensures the automatic groups named in `groups` exist (a directory
    /// sync or an SSO sign-in brings them), inside `unit`.
    pub(super) fn ensure_automatic(unit: &Unit, groups: &BTreeSet<String>) -> ServiceResult<()> {
        for name in groups {
            if unit.tx.group(name)?.is_none() {
                let group = Group {
                    name: name.clone(),
                    description: None,
                    automatic: true,
                    created_at: unit.now,
                };
                unit.tx.insert_group(&group)?;
            }
        }
        Ok(())
    }

    /// Resolves group names to the stored local groups (canonical spelling);
    /// unknown names are a bad request, automatic ones a conflict.
    pub(crate) fn local_groups(
        unit: &Unit,
        names: &BTreeSet<String>,
    ) -> ServiceResult<BTreeSet<String>> {
        names
            .iter()
            .map(|name| {
                let group = unit.tx.group(name)?.ok_or_else(|| {
                    ValidationError::new("groups", format!("unknown group `{name}`"))
                })?;
                if group.automatic {
                    return Err(automatic_group(&group.name));
                }
                Ok(group.name)
            })
            .collect()
    }

    pub fn create_group(
        &self,
        principal: &Principal,
        name: String,
        description: Option<String>,
    ) -> ServiceResult<Group> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ManageUsers)?;
        validate_group_name(&name)?;
        let description = description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        self.write_as(actor, |unit| {
            let group = Group {
                name: name.clone(),
                description: description.clone(),
                automatic: false,
                created_at: unit.now,
            };
            unit.tx
                .insert_group(&group)
                .map_err(|error| match ServiceError::from(error) {
                    ServiceError::Duplicate { .. } => ServiceError::Duplicate { field: "name" },
                    other => other,
                })?;
            unit.audit(
                AuditAction::GroupCreate,
                None,
                serde_json::json!({ "group": name }),
            )?;
            Ok(group)
        })
    }

    pub fn list_groups(&self, principal: &Principal) -> ServiceResult<Vec<GroupSummary>> {
        roles::require(principal.unrestricted()?, Capability::ReadDirectory)?;
        let mut members: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let entries = self.index.entries();
        for entry in &entries {
            for group in entry.groups() {
                *members.entry(group).or_default() += 1;
            }
        }
        let groups = self.snapshot().groups()?;
        Ok(groups
            .into_iter()
            .map(|group| {
                let members = members.get(group.name.as_str()).copied().unwrap_or(0);
                GroupSummary { group, members }
            })
            .collect())
    }

    /// Deletes a local group and removes it from every member, in one transaction.
    pub fn delete_group(&self, principal: &Principal, name: &str) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ManageUsers)?;
        self.write_as(actor, |unit| {
            let group = unit
                .tx
                .group(name)?
                .ok_or(ServiceError::NotFound("group"))?;
            if group.automatic {
                return Err(automatic_group(&group.name));
            }
            let members: Vec<u64> = unit
                .index
                .entries()
                .iter()
                .filter(|u| u.in_group(&group.name))
                .map(|u| u.id)
                .collect();
            for id in members {
                let mut user = unit.user(id)?;
                user.groups.remove(&group.name);
                user.updated_at = unit.now;
                unit.save(&user)?;
            }
            unit.tx.remove_group(&group.name)?;
            unit.audit(
                AuditAction::GroupDelete,
                None,
                serde_json::json!({ "group": group.name }),
            )
        })
    }

    /// Adds (`add`) or removes the user `id` to or from the local `groups`.
    pub(crate) fn change_membership(
        &self,
        principal: &Principal,
        id: u64,
        groups: &BTreeSet<String>,
        add: bool,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let mut user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            let groups = Self::local_groups(unit, groups)?;
            let before = user.groups.clone();
            if add {
                user.groups.extend(groups.iter().cloned());
            } else {
                user.groups.retain(|g| !groups.contains(g));
            }
            if user.groups == before {
                return Ok(());
            }
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            let action = if add {
                AuditAction::UserAddToGroups
            } else {
                AuditAction::UserRemoveFromGroups
            };
            unit.audit(action, Some(id), serde_json::json!({ "groups": groups }))
        })
    }
}

fn automatic_group(name: &str) -> ServiceError {
    ServiceError::conflict(
        "automatic_group",
        format!("group `{name}` is managed by directory sync"),
    )
}
