//! What the mail sender asks of the directory: fold held notifications into
//! digests when their slot comes, hand out due mails (after making sure they
//! are on disk), record each attempt, and forget old finished entries.

use super::Mail;
use crate::domain::mail::{
    Attempt, MailId, MailKind, MailStatus, OutboxEntry, Queued, RetryPolicy,
};
use crate::service::{ServiceResult, Unit};
use crate::store::OutboxReads;
use std::collections::BTreeMap;

/// Held notifications folded into one digest at most.
const MAX_DIGEST_PARTS: usize = 200;
/// Recipients whose held mail is folded in one unit of work.
const DIGEST_BATCH: usize = 500;
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
    /// recipient, [`DIGEST_BATCH`] recipients per unit of work. Returns how
    /// many digests were made.
    pub fn compose_digests(&self) -> ServiceResult<usize> {
        let now = self.now();
        let mut held = Vec::new();
        each_queued(&*self.snapshot(), |queued| {
            if queued.held && queued.due_at <= now {
                held.push(queued.id);
            }
        })?;
        // Grouped by recipient first, so one recipient's mail is one digest.
        let snapshot = self.snapshot();
        let mut by_recipient: BTreeMap<_, Vec<MailId>> = BTreeMap::new();
        for id in held {
            if let Some(entry) = snapshot.mail(id)? {
                by_recipient
                    .entry((entry.user, entry.to))
                    .or_default()
                    .push(id);
            }
        }
        let recipients: Vec<Vec<MailId>> = by_recipient.into_values().collect();
        let mut made = 0;
        for batch in recipients.chunks(DIGEST_BATCH) {
            made += self.write(None, |unit| {
                let mut made = 0;
                for ids in batch {
                    let mut parts = Vec::with_capacity(ids.len());
                    for id in ids {
                        // Read again: the entry may have been cancelled meanwhile.
                        if let Some(entry) =
                            unit.tx.mail(*id)?.filter(|e| e.is_held_and_due(unit.now))
                        {
                            parts.push(entry);
                        }
                    }
                    for chunk in parts.chunks(MAX_DIGEST_PARTS) {
                        fold_into_digest(unit, chunk)?;
                        made += 1;
                    }
                }
                Ok(made)
            })?;
        }
        Ok(made)
    }

    /// How many mails are queued (held ones included).
    pub fn queued_count(&self) -> ServiceResult<usize> {
        let mut count = 0;
        each_queued(&*self.snapshot(), |_| count += 1)?;
        Ok(count)
    }

    /// Up to `limit` mails due now, oldest first. Flushes the store first,
    /// so nothing leaves for a change that is not yet on disk.
    pub fn due(&self, limit: usize) -> ServiceResult<Vec<Outgoing>> {
        let now = self.now();
        let snapshot = self.snapshot();
        let mut due = Vec::new();
        each_queued(&*snapshot, |queued| {
            if !queued.held && queued.due_at <= now && due.len() < limit {
                due.push(queued.id);
            }
        })?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.flush()?;
        let mut outgoing = Vec::with_capacity(due.len());
        for id in due {
            let Some(entry) = snapshot.mail(id)? else {
                continue;
            };
            let parts = entry
                .parts
                .iter()
                .filter_map(|id| snapshot.mail(*id).transpose())
                .map(|part| self.outgoing(&part?, Vec::new()))
                .collect::<ServiceResult<_>>()?;
            outgoing.push(self.outgoing(&entry, parts)?);
        }
        Ok(outgoing)
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

    /// Forgets finished entries older than `keep`; a digest takes its parts
    /// with it (parts are never forgotten on their own). Returns how many
    /// entries were removed.
    pub fn prune(&self, keep: std::time::Duration) -> ServiceResult<usize> {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let Some(cutoff) = self.now().checked_sub_signed(keep) else {
            return Ok(0);
        };
        let finished = |entry: &OutboxEntry| {
            matches!(
                entry.status,
                MailStatus::Sent | MailStatus::Failed | MailStatus::Cancelled
            ) && entry.created_at < cutoff
        };
        let mut removed = 0;
        let mut after = 0;
        loop {
            let page = self.snapshot().mails_after(after, PRUNE_BATCH)?;
            let Some(last) = page.last() else {
                return Ok(removed);
            };
            after = last.id;
            let old: Vec<MailId> = page.iter().filter(|e| finished(e)).map(|e| e.id).collect();
            if old.is_empty() {
                continue;
            }
            removed += self.write(None, |unit| {
                let mut removed = 0;
                for id in &old {
                    // Read again: an admin may have retried it meanwhile.
                    let Some(entry) = unit.tx.mail(*id)?.filter(|e| finished(e)) else {
                        continue;
                    };
                    for part in entry.parts.iter().chain([&entry.id]) {
                        unit.tx.remove_mail(*part)?;
                        removed += 1;
                    }
                }
                Ok(removed)
            })?;
        }
    }
}

/// Calls `visit` with each queued entry's index record, in id order.
fn each_queued<V: OutboxReads + ?Sized>(
    view: &V,
    mut visit: impl FnMut(Queued),
) -> ServiceResult<()> {
    let mut after = 0;
    loop {
        let page = view.queued_mails(after, 4096)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        page.into_iter().for_each(&mut visit);
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
