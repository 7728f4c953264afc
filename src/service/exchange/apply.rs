//! Applying a planned import: passwords hashed first, on every hashing
//! thread at once, then every row in one unit of work, so the import lands
//! whole or not at all. A row whose user changed after the plan was made
//! stops the whole import with a conflict naming its line.

use super::UserExchange;
use super::import::Planned;
use crate::domain::audit::AuditAction;
use crate::domain::user::User;
use crate::service::{ServiceError, ServiceResult};
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
                    Planned::Add { user, .. } => {
                        let mut user = (**user).clone();
                        user.id = unit.tx.next_id("user")?;
                        user.created_at = unit.now;
                        user.updated_at = unit.now;
                        unit.save(&user)?;
                        let credentials = crate::domain::credentials::Credentials {
                            password_hash: hash.clone(),
                            ..Default::default()
                        };
                        unit.tx.put_credentials(user.id, &credentials)?;
                        unit.audit(
                            AuditAction::UserCreate,
                            Some(user.id),
                            json!({ "via": "csv import" }),
                        )?;
                    }
                    Planned::Update {
                        line,
                        before,
                        after,
                        ..
                    } => {
                        let current = unit.user(before.id)?;
                        if current.version != before.version {
                            return Err(ServiceError::conflict(
                                "version_conflict",
                                format!(
                                    "line {line}: the user changed while the import was prepared"
                                ),
                            ));
                        }
                        let mut user = (**after).clone();
                        user.updated_at = unit.now;
                        crate::service::accounts::Accounts::guard_admin_rules(
                            unit,
                            &current,
                            Some(&user),
                        )?;
                        unit.save(&user)?;
                        if let Some(hash) = hash {
                            let mut credentials = unit.tx.credentials(user.id)?;
                            credentials.password_hash = Some(hash.clone());
                            unit.tx.put_credentials(user.id, &credentials)?;
                        }
                        unit.audit(
                            AuditAction::UserUpdate,
                            Some(user.id),
                            json!({ "via": "csv import", "line": line }),
                        )?;
                    }
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

    /// Hashes every row's new password, all hashing threads at once; `None`
    /// for rows without one.
    async fn hash_passwords(&self, planned: &[Planned]) -> ServiceResult<Vec<Option<String>>> {
        let jobs = planned.iter().map(|step| {
            let password = match step {
                Planned::Add { password, .. } | Planned::Update { password, .. } => {
                    password.clone()
                }
                Planned::Delete { .. } => None,
            };
            let hasher = self.hasher.clone();
            async move {
                match password {
                    Some(password) => hasher.hash(password).await.map(Some),
                    None => Ok(None),
                }
            }
        });
        futures_util::future::try_join_all(jobs).await
    }
}
