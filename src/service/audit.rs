//! Reading the audit trail.

use super::core::area_service;
use super::{Principal, ServiceResult};
use crate::domain::audit::AuditEntry;
use crate::domain::roles::{self, Capability};

area_service!(
    /// The audit trail, read page by page.
    AuditTrail {}
);

impl AuditTrail {
    /// Audit entries newest first; `before` continues from an earlier page.
    pub fn audit_trail(
        &self,
        principal: &Principal,
        before: Option<u64>,
        limit: usize,
    ) -> ServiceResult<Vec<AuditEntry>> {
        roles::require(principal.unrestricted()?, Capability::ReadDirectory)?;
        self.audit_page(before, limit)
    }
}
