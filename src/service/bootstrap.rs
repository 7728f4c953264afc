//! First start: the system users every installation has, and the root token.

use super::ServiceResult;
use super::accounts::Accounts;
use super::credentials::Credentials;
use crate::domain::audit::AuditAction;
use crate::domain::credentials::TokenKind;
use crate::domain::names::Login;
use crate::domain::roles::SystemRole;
use crate::domain::user::{ROOT_LOGIN, SYSTEM_USERS, Status, User, UserType};
use serde_json::json;

impl Accounts {
    /// Creates any missing system users. Returns a new root API token when root
    /// itself was created, i.e. on the first start.
    pub(super) fn bootstrap(&self) -> ServiceResult<Option<String>> {
        let snapshot = self.snapshot();
        let mut missing = Vec::new();
        for name in SYSTEM_USERS {
            let existing = match snapshot.user_id_by_login(name)? {
                Some(id) => snapshot.user(id)?,
                None => None,
            };
            if !existing.is_some_and(|u| u.is_system()) {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            return Ok(None);
        }
        self.write(None, |unit| {
            let mut root_token = None;
            // Checked again in the unit: another daemon starting on the same
            // database may have created them meanwhile.
            for name in &missing {
                let holder = match unit.tx.user_id_by_login(name)? {
                    Some(id) => unit.tx.user(id)?,
                    None => None,
                };
                if holder.is_some_and(|u| u.is_system()) {
                    continue;
                }
                let mut user = User::new(
                    unit.tx.next_id("user")?,
                    UserType::System,
                    Status::Active,
                    unit.now,
                );
                user.login = Some(Login::parse(name)?);
                if *name == ROOT_LOGIN {
                    user.system_roles.insert(SystemRole::Admin);
                }
                unit.save(&user)?;
                if *name == ROOT_LOGIN {
                    root_token =
                        Some(Credentials::issue_token(unit, user.id, TokenKind::Api, None)?.0);
                }
                unit.audit(
                    AuditAction::SystemCreateUser,
                    Some(user.id),
                    json!({ "login": name }),
                )?;
            }
            Ok(root_token)
        })
    }
}
