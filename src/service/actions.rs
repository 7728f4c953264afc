//! Bulk actions over selected users, like an admin changelist: each id is its
//! own transaction and gets its own result.

use super::{Directory, Principal, ServiceError, ServiceResult};
use crate::domain::projects::{ProjectId, ProjectRole};
use crate::domain::roles::SystemRole;
use crate::domain::user::{User, UserId};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How many ids of a bulk action share one flush.
const BULK_BATCH: usize = 500;

/// An action applied to each selected user.
#[derive(Debug, Clone)]
pub enum BulkAction {
    /// Approve pending users or reactivate deactivated ones.
    Activate,
    Deactivate,
    /// Archive or delete, per `accounts.on_delete`.
    Delete,
    Mask,
    SetSystemRoles(BTreeSet<SystemRole>),
    AddToGroups(BTreeSet<String>),
    RemoveFromGroups(BTreeSet<String>),
    /// Create FTP accounts with optional quotas (MiB, files), optionally activating the users.
    CreateFtpAccounts {
        quota_mb: Option<u64>,
        quota_files: Option<u64>,
        activate: bool,
    },
    DeleteFtpAccounts,
    /// Recompute FTP usage from disk.
    RescanFtp,
    /// Give roles in projects, optionally activating the users.
    SetRoles {
        projects: Vec<(ProjectId, ProjectRole)>,
        activate: bool,
    },
}

/// What happened to one selected user. `user` is the record afterwards, when it still exists.
#[derive(Debug)]
pub struct ActionOutcome {
    pub id: UserId,
    pub result: ServiceResult<Option<Arc<User>>>,
}

impl Directory {
    /// Applies `action` to each of `ids` in turn; one failure does not stop the
    /// rest. Each id is its own unit of work, so readers and other writers get
    /// in between; every [`BULK_BATCH`] ids wait for one shared flush, so all
    /// results are on disk before any is reported.
    pub fn bulk(
        &self,
        principal: &Principal,
        action: &BulkAction,
        ids: &[UserId],
    ) -> ServiceResult<Vec<ActionOutcome>> {
        let mut outcomes = Vec::with_capacity(ids.len());
        for batch in ids.chunks(BULK_BATCH) {
            self.core.durably(|| {
                outcomes.extend(batch.iter().map(|&id| ActionOutcome {
                    id,
                    result: self.apply_one(principal, action, id),
                }));
            })?;
        }
        Ok(outcomes)
    }

    fn apply_one(
        &self,
        principal: &Principal,
        action: &BulkAction,
        id: UserId,
    ) -> ServiceResult<Option<Arc<User>>> {
        let user = match action {
            BulkAction::Activate => self.accounts.activate(principal, id)?,
            BulkAction::Deactivate => self.accounts.deactivate(principal, id)?,
            BulkAction::Delete => return self.accounts.delete_user(principal, id),
            BulkAction::Mask => self.accounts.mask(principal, id)?,
            BulkAction::SetSystemRoles(roles) => {
                self.accounts.set_system_roles(principal, id, roles)?
            }
            BulkAction::AddToGroups(groups) => self.membership(principal, id, groups, true)?,
            BulkAction::RemoveFromGroups(groups) => {
                self.membership(principal, id, groups, false)?
            }
            BulkAction::CreateFtpAccounts {
                quota_mb,
                quota_files,
                activate,
            } => self
                .ftp
                .create_ftp_account(principal, id, *quota_mb, *quota_files, *activate)?,
            BulkAction::DeleteFtpAccounts => self.ftp.delete_ftp_account(principal, id)?,
            BulkAction::RescanFtp => self.ftp.rescan_ftp(principal, id)?,
            BulkAction::SetRoles { projects, activate } => {
                self.projects
                    .set_roles(principal, id, projects, *activate)?;
                self.core.current_user(id)?
            }
        };
        Ok(Some(user))
    }

    fn membership(
        &self,
        principal: &Principal,
        id: UserId,
        groups: &BTreeSet<String>,
        add: bool,
    ) -> ServiceResult<Arc<User>> {
        if groups.is_empty() {
            return Err(
                crate::domain::ValidationError::new("groups", "name at least one group").into(),
            );
        }
        self.groups.change_membership(principal, id, groups, add)?;
        self.core
            .current_user(id)
            .map_err(|_: ServiceError| ServiceError::NotFound("user"))
    }
}
