//! Response shape of an outbox entry: its state and history, never its
//! template values or the link it carries.

use crate::domain::mail::{MailId, MailKind, MailStatus, OutboxEntry};
use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct OutboxEntryView {
    pub id: MailId,
    pub kind: MailKind,
    pub to: String,
    pub user: Option<UserId>,
    pub status: MailStatus,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub hold_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The digest this mail went out in.
    pub digest: Option<MailId>,
    /// For a digest: the mails it carries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<MailId>,
    pub message_id: String,
}

impl From<&OutboxEntry> for OutboxEntryView {
    fn from(entry: &OutboxEntry) -> Self {
        Self {
            id: entry.id,
            kind: entry.kind,
            to: entry.to.clone(),
            user: entry.user,
            status: entry.status,
            attempts: entry.attempts,
            created_at: entry.created_at,
            next_attempt_at: entry.next_attempt_at,
            hold_until: entry.hold_until,
            last_error: entry.last_error.clone(),
            sent_at: entry.sent_at,
            digest: entry.digest,
            parts: entry.parts.clone(),
            message_id: entry.message_id.clone(),
        }
    }
}
