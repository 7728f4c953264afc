//! Applying a planned import: passwords hashed first, on every hashing
//! thread, then every row in one unit of work, so the import lands whole or
//! not at all. A row whose user changed after the plan was made stops the
//! whole import with a conflict naming its line. Rows do what the API's own
//! routes do: a new password or a deactivation ends the user's sessions and
//! tokens, groups are checked again inside the unit, and the audit names the
//! changed columns.

use super::UserExchange;
use super::columns::differences;
use super::import::Planned;
use crate::domain::audit::AuditAction;
use crate::domain::user::{Status, User};
use crate::service::accounts::Accounts;
use crate::service::groups::Groups;
use crate::service::{ServiceError, ServiceResult, Unit};
use serde_json::json;

impl UserExchange {
    pub(super) async fn apply(&self, actor: &User, planned: Vec<Planned>) -> ServiceResult<()> {
        let hashes = self.hash_passwords(&planned).await?;
        let mut leaving = Vec::new();
        for step in &planned {
            if let Planned::Delete { id, .. } = step {
                leaving.push(self.accounts.leaving(*id)?);
            }
        }
        let count = planned.len();
        self.write_as(actor, |unit| {
            let mut leaving = leaving.iter();
            for (step, hash) in planned.iter().zip(&hashes) {
                match step {
                    Planned::Add { user, .. } => add(unit, user, hash)?,
                    Planned::Update {
                        line,
                        before,
                        after,
                        ..
                    } => update(unit, *line, before, after, hash)?,
                    Planned::Delete { id, .. } => {
                        let Some(leaving) = leaving.next() else {
                            return Err(ServiceError::conflict(
                                "import",
                                "delete plan out of step",
                            ));
                        };
                        self.accounts.delete_in(unit, actor, *id, leaving)?;
                    }
                }
            }
            Ok(())
        })?;
        tracing::info!(rows = count, "CSV import applied");
        Ok(())
    }

    /// Hashes every row's new password on every hashing thread, a few jobs
    /// per thread at a time (so sign-ins meanwhile wait behind a handful of
    /// hashes, not all of them); `None` for rows without one.
    async fn hash_passwords(&self, planned: &[Planned]) -> ServiceResult<Vec<Option<String>>> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let passwords: Vec<Option<String>> = planned
            .iter()
            .map(|step| match step {
                Planned::Add { password, .. } | Planned::Update { password, .. } => {
                    password.clone()
                }
                Planned::Delete { .. } => None,
            })
            .collect();
        let hasher = self.hasher.clone();
        let jobs = passwords.into_iter().map(move |password| {
            let hasher = hasher.clone();
            async move {
                match password {
                    Some(password) => hasher.hash(password).await.map(Some),
                    None => Ok(None),
                }
            }
        });
        let in_flight = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
        stream::iter(jobs).buffered(in_flight).try_collect().await
    }
}

/// Stores a new user under a fresh id, with its password; its groups are
/// read again inside the unit (one deleted or made automatic while passwords
/// were hashed is refused).
fn add(unit: &Unit, user: &User, hash: &Option<String>) -> ServiceResult<()> {
    let details = json!({ "via": "csv import", "password": hash.is_some() });
    let id = Accounts::insert_in(
        unit,
        user,
        hash.clone(),
        &user.groups,
        AuditAction::UserCreate,
        details,
    )?;
    // The same account mails as a user created through the API.
    unit.account_mails(&unit.user(id)?, None, hash.is_some())
}

/// Applies a planned update to the user as stored now.
fn update(
    unit: &Unit,
    line: u64,
    before: &User,
    after: &User,
    hash: &Option<String>,
) -> ServiceResult<()> {
    let current = unit.user(before.id)?;
    if current.version != before.version {
        return Err(ServiceError::conflict(
            "version_conflict",
            format!("line {line}: the user changed while the import was prepared"),
        ));
    }
    let mut user = after.clone();
    // Sign-ins and FTP usage since the plan stay as they are.
    user.take_activity_from(&current);
    user.updated_at = unit.now;
    user.groups = Groups::local_groups(unit, &user.groups)?;
    Accounts::guard_admin_rules(unit, &current, Some(&user))?;
    let deactivated = user.status == Status::Deactivated && current.status != Status::Deactivated;
    if hash.is_some() || deactivated {
        Accounts::revoke_all_tokens(unit, user.id)?;
    }
    unit.save(&user)?;
    unit.account_mails(&user, Some(&current), true)?;
    if let Some(hash) = hash {
        let mut credentials = unit.tx.credentials(user.id)?;
        credentials.password_hash = Some(hash.clone());
        unit.tx.put_credentials(user.id, &credentials)?;
    }
    let fields: Vec<&str> = differences(&current, &user)
        .into_iter()
        .map(|(name, ..)| name)
        .collect();
    unit.audit(
        AuditAction::UserUpdate,
        Some(user.id),
        json!({ "via": "csv import", "line": line, "fields": fields, "password": hash.is_some() }),
    )
}
