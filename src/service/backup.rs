//! Backups and consistency checks of the whole directory: a consistent
//! snapshot of the store with the sealing key, and the index check behind
//! `gatehouse verify`. Taking a backup over the API is root's alone (it holds
//! the key that opens every sealed secret).

use super::{Directory, Principal, ServiceError, ServiceResult};
use crate::store::BackupSummary;

impl Directory {
    /// Writes a consistent backup of the store, with the sealing key, to `out`.
    pub fn backup(&self, out: &mut dyn std::io::Write) -> ServiceResult<BackupSummary> {
        let path = self.core.settings.data_dir.join(super::secrets::KEY_FILE);
        let key = std::fs::read(&path).map_err(ServiceError::io("read", &path))?;
        let files = [(super::secrets::KEY_FILE.to_owned(), key)];
        Ok(super::core::offload(|| {
            self.core.store().backup(&files, out)
        })?)
    }

    /// Refuses anyone but root.
    pub fn require_root(&self, principal: &Principal) -> ServiceResult<()> {
        match principal.unrestricted()?.is_root() {
            true => Ok(()),
            false => Err(ServiceError::NotPermitted("only root takes backups")),
        }
    }

    /// Every drift between the store's indexes and its records.
    pub fn verify(&self) -> ServiceResult<Vec<String>> {
        Ok(super::core::offload(|| self.core.store().verify())?)
    }
}
