//! Backups and consistency checks of the whole directory: a consistent
//! snapshot of the store with the sealing key, and the index check behind
//! `gatehouse verify`. Taking a backup over the API is root's alone (it holds
//! the key that opens every sealed secret).

use super::{Directory, Principal, ServiceError, ServiceResult};
use crate::store::BackupSummary;

impl Directory {
    /// Writes a consistent backup of the store, with the sealing key, to
    /// `out`; audited first (as `actor`'s, or the system's on the host).
    pub fn backup(
        &self,
        actor: Option<crate::domain::user::UserId>,
        out: &mut dyn std::io::Write,
    ) -> ServiceResult<BackupSummary> {
        self.core.write(actor, |unit| {
            unit.audit(
                crate::domain::audit::AuditAction::StoreBackup,
                None,
                serde_json::json!({}),
            )
        })?;
        let path = self.core.settings.data_dir.join(super::secrets::KEY_FILE);
        let key = std::fs::read(&path).map_err(ServiceError::io("read", &path))?;
        let files = [(super::secrets::KEY_FILE.to_owned(), key)];
        Ok(super::core::offload(|| {
            self.core.store().backup(&files, out)
        })?)
    }

    /// Refuses anyone but root with an API token (never a session cookie).
    pub fn require_root(&self, principal: &Principal) -> ServiceResult<()> {
        let root = principal.unrestricted()?.is_root();
        match root && principal.via == crate::domain::credentials::TokenKind::Api {
            true => Ok(()),
            false => Err(ServiceError::NotPermitted(
                "only root, with its API token, takes backups",
            )),
        }
    }

    /// Every drift between the store's indexes and its records.
    pub fn verify(&self) -> ServiceResult<Vec<String>> {
        Ok(super::core::offload(|| self.core.store().verify())?)
    }
}
