//! Audit records: who did what to whom, when. They hold ids and field names,
//! never personal data, so masking a user leaves the trail intact and clean.

use super::clock::Timestamp;
use super::user::UserId;
use serde::{Deserialize, Serialize};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub at: Timestamp,
    /// The acting user; `None` for the system itself or a public endpoint.
    pub actor: Option<UserId>,
    pub action: String,
    pub target: Option<UserId>,
    /// Extra facts: changed field names, group names, roles. No personal data.
    pub details: serde_json::Value,
}
