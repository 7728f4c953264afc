//! Mail use cases: the admin's view of the outbox (list, retry, cancel), test
//! mails, mail to selected users, and the public password-reset request.
//! Queueing from other use cases lives in [`queue`], what the sender asks for
//! in [`delivery`]; the SMTP side is `crate::mail`.

mod delivery;
mod notices;
mod queue;
mod reset;

pub use delivery::Outgoing;
pub use queue::NotQueued;
pub(crate) use queue::{Letter, Outbox};
pub(crate) use reset::ResetLimiter;

use super::core::area_service;
use super::{Principal, ServiceError, ServiceResult};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::mail::{MailId, MailKind, MailStatus, OutboxEntry};
use crate::domain::roles::{self, Capability};
use crate::domain::user::{User, UserId};
use serde_json::json;

area_service!(
    /// The outbox as admins see it, and the mails they send by hand.
    Mail {
        reset_limiter: ResetLimiter,
    }
);

/// Which outbox entries to list.
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    pub status: Option<MailStatus>,
    pub kind: Option<MailKind>,
    /// The recipient address, case-insensitively.
    pub to: Option<String>,
    pub user: Option<UserId>,
    /// Entries with ids above this.
    pub after: Option<MailId>,
    pub limit: usize,
}

/// One page of the outbox, oldest first.
#[derive(Debug)]
pub struct OutboxPage {
    pub entries: Vec<OutboxEntry>,
    pub next: Option<MailId>,
}

/// The longest subject and body of a mail to selected users.
const MAX_SUBJECT: usize = 200;
const MAX_BODY: usize = 100 * 1024;
/// Subject and body times recipients of one mail to selected users at most.
const MAX_VOLUME: usize = 64 * 1024 * 1024;
/// Recipients of a mail to selected users that share one unit of work.
const MESSAGE_BATCH: usize = 500;

/// What happened for one recipient of a mail to selected users.
#[derive(Debug)]
pub struct MessageOutcome {
    pub id: UserId,
    pub result: ServiceResult<Result<MailId, NotQueued>>,
}

impl Mail {
    fn admin<'p>(&self, principal: &'p Principal) -> ServiceResult<&'p User> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ManageMail)?;
        Ok(actor)
    }

    /// Returns when a unit of work has queued mail.
    pub async fn woken(&self) {
        self.outbox.wake.notified().await;
    }

    /// Lists outbox entries matching `query`, oldest first.
    pub fn list(&self, principal: &Principal, query: &OutboxQuery) -> ServiceResult<OutboxPage> {
        self.admin(principal)?;
        let snapshot = self.snapshot();
        let to = query.to.as_deref().map(str::to_lowercase);
        let limit = query.limit.clamp(1, 1000);
        let mut after = query.after.unwrap_or(0);
        let mut entries = Vec::new();
        loop {
            let page = snapshot.mails_after(after, 1000)?;
            let Some(last) = page.last() else {
                return Ok(OutboxPage {
                    entries,
                    next: None,
                });
            };
            after = last.id;
            for entry in page {
                let wanted = query.status.is_none_or(|s| s == entry.status)
                    && query.kind.is_none_or(|k| k == entry.kind)
                    && query.user.is_none_or(|u| Some(u) == entry.user)
                    && to.as_ref().is_none_or(|to| entry.to.to_lowercase() == *to);
                if wanted {
                    entries.push(entry);
                    if entries.len() == limit {
                        let next = entries.last().map(|e| e.id);
                        return Ok(OutboxPage { entries, next });
                    }
                }
            }
        }
    }

    /// One outbox entry.
    pub fn entry(&self, principal: &Principal, id: MailId) -> ServiceResult<OutboxEntry> {
        self.admin(principal)?;
        self.snapshot()
            .mail(id)?
            .ok_or(ServiceError::NotFound("mail"))
    }

    /// Changes one entry with `change`, audited as `action`.
    fn steer(
        &self,
        principal: &Principal,
        id: MailId,
        action: AuditAction,
        change: impl Fn(&mut OutboxEntry, crate::domain::clock::Timestamp) -> ServiceResult<()>,
    ) -> ServiceResult<OutboxEntry> {
        let actor = self.admin(principal)?;
        self.write_as(actor, |unit| {
            let mut entry = unit.tx.mail(id)?.ok_or(ServiceError::NotFound("mail"))?;
            change(&mut entry, unit.now)?;
            unit.put_mail(&entry)?;
            unit.audit(
                action,
                entry.user,
                json!({ "mail": id, "kind": entry.kind }),
            )?;
            Ok(entry)
        })
    }

    /// Queues a failed (or waiting) mail again, now, with a fresh count.
    pub fn retry(&self, principal: &Principal, id: MailId) -> ServiceResult<OutboxEntry> {
        self.admin(principal)?;
        self.outbox.require()?;
        self.steer(
            principal,
            id,
            AuditAction::MailRetry,
            |entry, now| match entry.requeue(now) {
                true => Ok(()),
                false => Err(ServiceError::conflict(
                    "not_retryable",
                    "only queued or failed mail can be retried",
                )),
            },
        )
    }

    /// Cancels a queued mail; one already sent, failed or cancelled cannot be.
    pub fn cancel(&self, principal: &Principal, id: MailId) -> ServiceResult<OutboxEntry> {
        self.steer(principal, id, AuditAction::MailCancel, |entry, _| {
            if entry.status != MailStatus::Queued {
                return Err(ServiceError::conflict(
                    "not_queued",
                    "only queued mail can be cancelled",
                ));
            }
            entry.status = MailStatus::Cancelled;
            Ok(())
        })
    }

    /// Queues a test mail to `to`.
    pub fn send_test(&self, principal: &Principal, to: &str) -> ServiceResult<OutboxEntry> {
        let actor = self.admin(principal)?;
        self.outbox.require()?;
        let to = crate::domain::names::Email::parse(to)
            .map_err(|e| ValidationError::new("to", e.message))?;
        let id = self.write_as(actor, |unit| {
            let id = unit.mail_address(to.as_str(), Letter::new(MailKind::Test))?;
            unit.audit(AuditAction::MailTest, None, json!({ "mail": id }))?;
            Ok(id)
        })?;
        self.snapshot()
            .mail(id)?
            .ok_or(ServiceError::NotFound("mail"))
    }

    /// Queues `subject` and `body` for each of `ids` (an admin's message to
    /// selected users); one result per id. Recipients' schedules apply.
    pub fn send_message(
        &self,
        principal: &Principal,
        ids: &[UserId],
        subject: &str,
        body: &str,
    ) -> ServiceResult<Vec<MessageOutcome>> {
        let actor = self.admin(principal)?;
        self.outbox.require()?;
        let subject = subject.trim();
        if subject.is_empty()
            || subject.chars().count() > MAX_SUBJECT
            || subject.contains(['\r', '\n'])
        {
            return Err(ValidationError::new("subject", "one line of 1 to 200 characters").into());
        }
        if body.trim().is_empty() || body.len() > MAX_BODY {
            return Err(ValidationError::new("body", "1 byte to 100 KiB of text").into());
        }
        // Each recipient's entry holds its own copy until it is sent.
        if (subject.len() + body.len()).saturating_mul(ids.len()) > MAX_VOLUME {
            return Err(ValidationError::new(
                "body",
                "the body times the recipients is over 64 MiB; send a shorter text or fewer at once",
            )
            .into());
        }
        let mut outcomes = Vec::with_capacity(ids.len());
        for batch in ids.chunks(MESSAGE_BATCH) {
            let results = self.write_as(actor, |unit| {
                let mut results = Vec::with_capacity(batch.len());
                for &id in batch {
                    let queued = match unit.tx.user(id)? {
                        Some(user) => {
                            let letter = Letter::new(MailKind::Message)
                                .with("subject", subject)
                                .with("body", body);
                            Ok(unit.mail_user(&user, letter)?)
                        }
                        None => Err(ServiceError::NotFound("user")),
                    };
                    results.push(queued);
                }
                let queued = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
                unit.audit(
                    AuditAction::MailSend,
                    None,
                    json!({ "recipients": batch.len(), "queued": queued }),
                )?;
                Ok(results)
            })?;
            outcomes.extend(
                batch
                    .iter()
                    .zip(results)
                    .map(|(&id, result)| MessageOutcome { id, result }),
            );
        }
        Ok(outcomes)
    }
}
