//! Queueing mail inside a unit of work: the entry commits with the change
//! that causes it, or not at all. A user's schedule decides whether a
//! notification goes now, waits for a digest slot, or not at all; a link
//! carrying a token is sealed before it is stored.

use crate::domain::clock::Timestamp;
use crate::domain::mail::{MailId, MailKind, MailStatus, OutboxEntry};
use crate::domain::schedule::{Delivery, MailSchedule};
use crate::domain::user::{User, UserId};
use crate::service::secrets::SecretSealer;
use crate::service::{ServiceError, ServiceResult, Unit};
use rand::RngCore;
use serde::Serialize;
use std::collections::BTreeMap;

/// What units of work need to queue mail; part of the shared core.
pub(crate) struct Outbox {
    enabled: bool,
    /// The domain Message-IDs end in (the public URL's host).
    host: String,
    /// Woken after a commit that queued mail.
    pub(crate) wake: tokio::sync::Notify,
}

/// Why a mail for a user was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotQueued {
    MailOff,
    NoAddress,
    Masked,
    Deleted,
    /// The user's mail schedule says never.
    ScheduleNever,
}

impl NotQueued {
    /// The reason's name in API answers.
    pub fn code(self) -> &'static str {
        match self {
            Self::MailOff => "mail_off",
            Self::NoAddress => "no_address",
            Self::Masked => "masked",
            Self::Deleted => "deleted",
            Self::ScheduleNever => "schedule_never",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::MailOff => "mail is not configured ([mail] smtp_url)",
            Self::NoAddress => "the user has no email address",
            Self::Masked => "the user is masked",
            Self::Deleted => "the user is deleted",
            Self::ScheduleNever => "the user's mail schedule is `never`",
        }
    }
}

/// A mail to queue: its kind, template values and, for account mails, the link.
pub(crate) struct Letter {
    pub kind: MailKind,
    pub params: BTreeMap<String, String>,
    pub link: Option<String>,
}

impl Letter {
    pub fn new(kind: MailKind) -> Self {
        Self {
            kind,
            params: BTreeMap::new(),
            link: None,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.params.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_link(mut self, link: String) -> Self {
        self.link = Some(link);
        self
    }
}

impl Outbox {
    pub(crate) fn new(enabled: bool, public_url: &str) -> Self {
        let host = url::Url::parse(public_url)
            .ok()
            .and_then(|url| {
                url.host_str()
                    .map(|host| host.trim_matches(['[', ']']).to_owned())
            })
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "gatehouse.invalid".to_owned());
        Self {
            enabled,
            host,
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Fails with a 409 naming the setting when mail is off.
    pub fn require(&self) -> ServiceResult<()> {
        match self.enabled {
            true => Ok(()),
            false => Err(ServiceError::conflict(
                "mail_disabled",
                NotQueued::MailOff.message(),
            )),
        }
    }

    fn message_id(&self, id: MailId, now: Timestamp) -> String {
        let nonce = rand::rngs::OsRng.next_u64();
        format!("<{id}.{}.{nonce:016x}@{}>", now.timestamp(), self.host)
    }
}

impl Unit<'_> {
    /// Queues `letter` for `user` (template values `name` and `login` added),
    /// held for the user's schedule when its kind may wait.
    pub(crate) fn mail_user(
        &self,
        user: &User,
        letter: Letter,
    ) -> ServiceResult<Result<MailId, NotQueued>> {
        match (self.undeliverable(user), &user.email) {
            (None, Some(email)) => self.mail_address_of(user, email.as_str(), letter),
            (Some(reason), _) => Ok(Err(reason)),
            (None, None) => Ok(Err(NotQueued::NoAddress)),
        }
    }

    /// Why `user` can get no mail at all, if so.
    pub(crate) fn undeliverable(&self, user: &User) -> Option<NotQueued> {
        if !self.core.outbox.enabled() {
            return Some(NotQueued::MailOff);
        }
        if user.masked_at.is_some() {
            return Some(NotQueued::Masked);
        }
        if user.is_archived() {
            return Some(NotQueued::Deleted);
        }
        user.email.is_none().then_some(NotQueued::NoAddress)
    }

    /// As [`Unit::mail_user`], to `address` instead of the user's current one
    /// (a notice of a changed address goes to the old one).
    pub(crate) fn mail_address_of(
        &self,
        user: &User,
        address: &str,
        mut letter: Letter,
    ) -> ServiceResult<Result<MailId, NotQueued>> {
        if !self.core.outbox.enabled() {
            return Ok(Err(NotQueued::MailOff));
        }
        let hold_until = match letter.kind.may_be_held() {
            true => match MailSchedule::of_stored(user.mail_schedule.as_ref())
                .map_or(Delivery::Now, |schedule| schedule.delivery(self.now))
            {
                Delivery::Now => None,
                Delivery::At(slot) => Some(slot),
                Delivery::Never => return Ok(Err(NotQueued::ScheduleNever)),
            },
            false => None,
        };
        letter
            .params
            .insert("name".into(), user.effective_display_name());
        if let Some(login) = &user.login {
            letter.params.insert("login".into(), login.to_string());
        }
        let entry = self.new_entry(address, letter, &self.core.sealer)?;
        let entry = OutboxEntry {
            user: Some(user.id),
            language: user.frontend_language.clone(),
            hold_until,
            ..entry
        };
        self.put_mail(&entry)?;
        Ok(Ok(entry.id))
    }

    /// Queues `letter` to a bare address (a test mail).
    pub(crate) fn mail_address(&self, address: &str, letter: Letter) -> ServiceResult<MailId> {
        self.core.outbox.require()?;
        let entry = self.new_entry(address, letter, &self.core.sealer)?;
        self.put_mail(&entry)?;
        Ok(entry.id)
    }

    fn new_entry(
        &self,
        address: &str,
        letter: Letter,
        sealer: &SecretSealer,
    ) -> ServiceResult<OutboxEntry> {
        let id = self.tx.next_id("mail")?;
        let sealed_link = letter.link.map(|link| sealer.seal(&link)).transpose()?;
        Ok(OutboxEntry {
            id,
            kind: letter.kind,
            to: address.to_owned(),
            user: None,
            language: None,
            params: letter.params,
            sealed_link,
            parts: Vec::new(),
            status: MailStatus::Queued,
            attempts: 0,
            created_at: self.now,
            next_attempt_at: self.now,
            hold_until: None,
            last_error: None,
            sent_at: None,
            digest: None,
            message_id: self.core.outbox.message_id(id, self.now),
        })
    }

    /// Cancels the queued mail of user `id` and, with `scrub` (masking,
    /// removal), blanks the address, template values and link of all their
    /// entries, so nothing in the outbox names them any more.
    pub(crate) fn forget_mail_of(&self, id: UserId, scrub: bool) -> ServiceResult<()> {
        let mut after = 0;
        loop {
            let page = self.tx.mails_after(after, 1000)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id;
            for mut entry in page.into_iter().filter(|e| e.user == Some(id)) {
                let queued = entry.status == MailStatus::Queued;
                if !queued && !scrub {
                    continue;
                }
                if queued {
                    entry.status = MailStatus::Cancelled;
                }
                if scrub {
                    entry.to = format!("masked-{id}@invalid");
                    entry.params.clear();
                    entry.sealed_link = None;
                }
                self.tx.put_mail(&entry)?;
            }
        }
    }

    /// Writes an entry and marks the unit as one that queued mail.
    pub(crate) fn put_mail(&self, entry: &OutboxEntry) -> ServiceResult<()> {
        self.tx.put_mail(entry)?;
        if entry.status == MailStatus::Queued {
            self.mailed.set(true);
        }
        Ok(())
    }
}
