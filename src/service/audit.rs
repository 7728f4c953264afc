//! Reading the audit trail.

use super::{Directory, Principal, ServiceResult};
use crate::domain::audit::AuditEntry;
use crate::domain::roles::{self, Capability};

impl Directory {
    /// Audit entries newest first; `before` continues from an earlier page.
    pub fn audit_trail(
        &self,
        principal: &Principal,
        before: Option<u64>,
        limit: usize,
    ) -> ServiceResult<Vec<AuditEntry>> {
        roles::require(principal.unrestricted()?, Capability::ReadDirectory)?;
        Ok(self.store.audit_page(before, limit)?)
    }
}
