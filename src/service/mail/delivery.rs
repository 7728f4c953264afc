//! What the mail sender asks of the directory: fold held notifications into
//! digests when their slot comes, hand out due mails (after making sure they
//! are on disk), record each attempt, and forget old finished entries.

use super::Mail;
use crate::domain::mail::{Attempt, MailId, MailKind, MailStatus, OutboxEntry, RetryPolicy};
use crate::service::{ServiceResult, Unit};
use crate::store::OutboxReads;
use std::collections::BTreeMap;

/// Held notifications folded into one digest at most.
const MAX_DIGEST_PARTS: usize = 200;
/// Finished entries forgotten per unit of work.
const PRUNE_BATCH: usize = 1000;

/// A mail ready to render and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: MailId,
    pub kind: MailKind,
    pub to: String,
    pub language: Option<String>,
    pub params: BTreeMap<String, String>,
    /// The unsealed link, for account mails.
    pub link: Option<String>,
    pub message_id: String,
    /// For a digest: the notifications it carries.
    pub parts: Vec<Outgoing>,
}

impl Mail {
    fn outgoing(&self, entry: &OutboxEntry, parts: Vec<Outgoing>) -> ServiceResult<Outgoing> {
        let link = entry
            .sealed_link
            .as_deref()
            .map(|sealed| self.sealer.open(sealed))
            .transpose()?;
        Ok(Outgoing {
            id: entry.id,
            kind: entry.kind,
            to: entry.to.clone(),
            language: entry.language.clone(),
            params: entry.params.clone(),
            link,
            message_id: entry.message_id.clone(),
            parts,
        })
    }

    /// Folds every held notification whose slot has come into one digest per
    /// user, in one unit of work. Returns how many digests were made.
    pub fn compose_digests(&self) -> ServiceResult<usize> {
        let now = self.now();
        let mut any = false;
        each_queued(&*self.snapshot(), |entry| {
            any = entry.is_held_and_due(now);
            !any
        })?;
        if !any {
            return Ok(0);
        }
        self.write(None, |unit| {
            let mut by_user: BTreeMap<_, Vec<OutboxEntry>> = BTreeMap::new();
            each_queued(unit.tx, |entry| {
                if entry.is_held_and_due(unit.now) {
                    by_user
                        .entry((entry.user, entry.to.clone()))
                        .or_default()
                        .push(entry);
                }
                true
            })?;
            let mut made = 0;
            for parts in by_user.into_values() {
                for chunk in parts.chunks(MAX_DIGEST_PARTS) {
                    fold_into_digest(unit, chunk)?;
                    made += 1;
                }
            }
            Ok(made)
        })
    }

    /// Up to `limit` mails due now, oldest first. Flushes the store first,
    /// so nothing leaves for a change that is not yet on disk.
    pub fn due(&self, limit: usize) -> ServiceResult<Vec<Outgoing>> {
        let now = self.now();
        let snapshot = self.snapshot();
        let mut due = Vec::new();
        each_queued(&*snapshot, |entry| {
            if entry.is_due(now) && entry.hold_until.is_none() {
                due.push(entry);
            }
            due.len() < limit
        })?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.flush()?;
        due.iter()
            .map(|entry| {
                let parts = entry
                    .parts
                    .iter()
                    .filter_map(|id| snapshot.mail(*id).transpose())
                    .map(|part| self.outgoing(&part?, Vec::new()))
                    .collect::<ServiceResult<_>>()?;
                self.outgoing(entry, parts)
            })
            .collect()
    }

    /// Records how each attempt ended, in one unit of work. A sent welcome or
    /// confirmation mail (alone or in a digest) stamps its user.
    pub fn record(
        &self,
        attempts: Vec<(MailId, Attempt)>,
        policy: &RetryPolicy,
    ) -> ServiceResult<()> {
        self.write(None, |unit| {
            for (id, attempt) in &attempts {
                let Some(mut entry) = unit.tx.mail(*id)? else {
                    continue;
                };
                // A mail cancelled while it was being sent is still recorded
                // as sent when it went out; a failure no longer matters.
                if entry.status != MailStatus::Queued && *attempt != Attempt::Sent {
                    continue;
                }
                entry.record(attempt.clone(), unit.now, policy);
                unit.put_mail(&entry)?;
                if entry.status == MailStatus::Sent {
                    stamp_user(unit, &entry)?;
                    for part in &entry.parts {
                        if let Some(mut part) = unit.tx.mail(*part)? {
                            part.sent_at = Some(unit.now);
                            unit.put_mail(&part)?;
                            stamp_user(unit, &part)?;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Forgets finished entries older than `keep` (digest parts go with their
    /// digest). Returns how many were removed.
    pub fn prune(&self, keep: std::time::Duration) -> ServiceResult<usize> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = self.now().checked_sub_signed(keep) else {
            return Ok(0);
        };
        let mut removed = 0;
        let mut after = 0;
        loop {
            let page = self.snapshot().mails_after(after, PRUNE_BATCH)?;
            let Some(last) = page.last() else {
                return Ok(removed);
            };
            after = last.id;
            let old: Vec<MailId> = page
                .iter()
                .filter(|entry| entry.status != MailStatus::Queued && entry.created_at < cutoff)
                .map(|entry| entry.id)
                .collect();
            if !old.is_empty() {
                self.write(None, |unit| {
                    for id in &old {
                        unit.tx.remove_mail(*id)?;
                    }
                    Ok(())
                })?;
                removed += old.len();
            }
        }
    }
}

/// Calls `visit` with each queued entry in id order until it returns false.
fn each_queued<V: OutboxReads + ?Sized>(
    view: &V,
    mut visit: impl FnMut(OutboxEntry) -> bool,
) -> ServiceResult<()> {
    let mut after = 0;
    loop {
        let page = view.queued_mails(after, 1000)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        for entry in page {
            if !visit(entry) {
                return Ok(());
            }
        }
    }
}

/// Makes one digest of `parts` (held mails of one recipient) and marks them.
fn fold_into_digest(unit: &Unit, parts: &[OutboxEntry]) -> ServiceResult<()> {
    let Some(first) = parts.first() else {
        return Ok(());
    };
    let mut letter = super::Letter::new(MailKind::Digest).with("count", parts.len().to_string());
    if let Some(name) = first.params.get("name") {
        letter = letter.with("name", name.clone());
    }
    let id = unit.mail_address(&first.to, letter)?;
    let mut digest = unit
        .tx
        .mail(id)?
        .ok_or(crate::service::ServiceError::NotFound("mail"))?;
    digest.user = first.user;
    digest.language = first.language.clone();
    digest.parts = parts.iter().map(|part| part.id).collect();
    unit.put_mail(&digest)?;
    for part in parts {
        let mut part = part.clone();
        part.status = MailStatus::Digested;
        part.digest = Some(id);
        unit.put_mail(&part)?;
    }
    Ok(())
}

/// Records on the user that their welcome or confirmation mail went out.
fn stamp_user(unit: &Unit, entry: &OutboxEntry) -> ServiceResult<()> {
    let Some(id) = entry.user else { return Ok(()) };
    let Some(mut user) = unit.tx.user(id)? else {
        return Ok(());
    };
    match entry.kind {
        MailKind::Welcome => user.welcome_email_sent_at = entry.sent_at,
        MailKind::EmailConfirmation => user.confirm_email_sent_at = entry.sent_at,
        _ => return Ok(()),
    }
    unit.save(&user)
}
