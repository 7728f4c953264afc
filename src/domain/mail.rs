//! The outbox: mails written in the same unit of work as the change that
//! causes them, and the rules for what happens after each delivery attempt
//! (sent, retried with exponential backoff, or failed for good).

use super::clock::Timestamp;
use super::user::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub type MailId = u64;

/// What a mail is about; each kind has its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    Activation,
    Welcome,
    EmailConfirmation,
    PasswordReset,
    PasswordChanged,
    TwoFactorReset,
    EmailChanged,
    AccountApproved,
    AccountDeactivated,
    /// An admin's message to selected users.
    Message,
    Test,
    /// Held notifications of one user, sent together at their schedule's slot.
    Digest,
}

impl MailKind {
    #[cfg(test)]
    pub const ALL: [Self; 12] = [
        Self::Activation,
        Self::Welcome,
        Self::EmailConfirmation,
        Self::PasswordReset,
        Self::PasswordChanged,
        Self::TwoFactorReset,
        Self::EmailChanged,
        Self::AccountApproved,
        Self::AccountDeactivated,
        Self::Message,
        Self::Test,
        Self::Digest,
    ];

    /// The name used on the wire and for template files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::Welcome => "welcome",
            Self::EmailConfirmation => "email_confirmation",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::TwoFactorReset => "two_factor_reset",
            Self::EmailChanged => "email_changed",
            Self::AccountApproved => "account_approved",
            Self::AccountDeactivated => "account_deactivated",
            Self::Message => "message",
            Self::Test => "test",
            Self::Digest => "digest",
        }
    }

    /// Whether a user's mail schedule may hold this mail back. Account
    /// security mails never wait (links that expire, and the alerts of a
    /// possible takeover: password, address, second factor changed), nor do
    /// the outbox's own.
    pub fn may_be_held(self) -> bool {
        !matches!(
            self,
            Self::Activation
                | Self::EmailConfirmation
                | Self::PasswordReset
                | Self::PasswordChanged
                | Self::EmailChanged
                | Self::TwoFactorReset
                | Self::Test
                | Self::Digest
        )
    }
}

/// Where a mail is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    Queued,
    Sent,
    Failed,
    Cancelled,
    /// Went out as part of a digest (see [`OutboxEntry::digest`]).
    Digested,
}

/// One mail in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: MailId,
    pub kind: MailKind,
    /// The recipient's address.
    pub to: String,
    /// The user it is for, when it is for one.
    pub user: Option<UserId>,
    /// The recipient's language, picking a template variant when one exists.
    pub language: Option<String>,
    /// Template values; never a secret.
    pub params: BTreeMap<String, String>,
    /// A link carrying a token, sealed at rest.
    pub sealed_link: Option<String>,
    /// For a digest: the held mails it carries.
    pub parts: Vec<MailId>,
    pub status: MailStatus,
    pub attempts: u32,
    pub created_at: Timestamp,
    /// Not tried again before this.
    pub next_attempt_at: Timestamp,
    /// Held for the recipient's schedule until this slot.
    pub hold_until: Option<Timestamp>,
    /// The server's last refusal or the last connection error.
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
    /// The digest this mail went out in.
    pub digest: Option<MailId>,
    /// The same on every attempt, so a receiver can drop a duplicate.
    pub message_id: String,
}

/// A queued entry as the queue index keeps it: enough to tell when it falls
/// due without reading the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub id: MailId,
    /// The later of its next attempt and its hold.
    pub due_at: Timestamp,
    /// Held for a digest.
    pub held: bool,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    /// Worth trying again: a connection failure or a 4xx answer.
    Transient(String),
    /// The server refused for good (5xx), or the mail cannot be built.
    Permanent(String),
}

/// How the outbox retries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt: doubling from
    /// `initial`, capped at `max`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// The longest server answer kept with an entry.
const MAX_ERROR_LEN: usize = 500;

impl OutboxEntry {
    /// This entry's place in the queue index.
    pub fn queued(&self) -> Queued {
        Queued {
            id: self.id,
            due_at: self
                .hold_until
                .map_or(self.next_attempt_at, |hold| hold.max(self.next_attempt_at)),
            held: self.hold_until.is_some(),
        }
    }

    /// Whether the worker should try this entry at `now`.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.status == MailStatus::Queued
            && self.next_attempt_at <= now
            && self.hold_until.is_none_or(|hold| hold <= now)
    }

    /// Whether a digest should pick this entry up at `now`.
    pub fn is_held_and_due(&self, now: Timestamp) -> bool {
        self.is_due(now) && self.hold_until.is_some()
    }

    /// Records the outcome of one attempt made at `now`.
    pub fn record(&mut self, attempt: Attempt, now: Timestamp, policy: &RetryPolicy) {
        self.attempts = self.attempts.saturating_add(1);
        match attempt {
            Attempt::Sent => {
                self.status = MailStatus::Sent;
                self.sent_at = Some(now);
                self.last_error = None;
            }
            Attempt::Permanent(error) => {
                self.status = MailStatus::Failed;
                self.last_error = Some(clip(error));
            }
            Attempt::Transient(error) if self.attempts >= policy.max_attempts => {
                self.status = MailStatus::Failed;
                self.last_error = Some(clip(format!(
                    "gave up after {} attempts: {error}",
                    self.attempts
                )));
            }
            Attempt::Transient(error) => {
                let wait = chrono::Duration::from_std(policy.delay(self.attempts))
                    .unwrap_or(chrono::Duration::MAX);
                self.next_attempt_at = now.checked_add_signed(wait).unwrap_or(now);
                self.last_error = Some(clip(error));
            }
        }
    }

    /// Queues a failed or queued entry again for now, with a fresh count.
    pub fn requeue(&mut self, now: Timestamp) -> bool {
        if !matches!(self.status, MailStatus::Failed | MailStatus::Queued) {
            return false;
        }
        self.status = MailStatus::Queued;
        self.attempts = 0;
        self.next_attempt_at = now;
        self.hold_until = None;
        true
    }
}

fn clip(mut error: String) -> String {
    if error.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry() -> OutboxEntry {
        let now = Utc::now();
        OutboxEntry {
            id: 1,
            kind: MailKind::Test,
            to: "a@example.org".into(),
            user: None,
            language: None,
            params: BTreeMap::new(),
            sealed_link: None,
            parts: Vec::new(),
            status: MailStatus::Queued,
            attempts: 0,
            created_at: now,
            next_attempt_at: now,
            hold_until: None,
            last_error: None,
            sent_at: None,
            digest: None,
            message_id: "<1@x>".into(),
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        initial: Duration::from_secs(30),
        max: Duration::from_secs(3600),
        max_attempts: 4,
    };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (1..=9).map(|n| POLICY.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(POLICY.delay(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn attempts_end_sent_retried_or_failed() {
        let now = Utc::now();
        let mut mail = entry();
        mail.record(Attempt::Transient("421 busy".into()), now, &POLICY);
        assert_eq!(mail.status, MailStatus::Queued);
        assert_eq!(mail.next_attempt_at, now + chrono::Duration::seconds(30));
        assert!(!mail.is_due(now) && mail.is_due(now + chrono::Duration::seconds(30)));
        mail.record(Attempt::Sent, now, &POLICY);
        assert_eq!(
            (mail.status, mail.sent_at, mail.last_error.clone()),
            (MailStatus::Sent, Some(now), None)
        );

        let mut refused = entry();
        refused.record(Attempt::Permanent("550 no such user".into()), now, &POLICY);
        assert_eq!(refused.status, MailStatus::Failed);
        assert_eq!(refused.last_error.as_deref(), Some("550 no such user"));
        assert!(refused.requeue(now) && refused.is_due(now) && refused.attempts == 0);

        let mut flaky = entry();
        for _ in 0..4 {
            flaky.record(Attempt::Transient("x".repeat(900)), now, &POLICY);
        }
        assert_eq!(flaky.status, MailStatus::Failed);
        let error = flaky.last_error.unwrap_or_default();
        assert!(error.starts_with("gave up after 4 attempts") && error.len() == MAX_ERROR_LEN);
    }

    #[test]
    fn held_mail_waits_for_its_slot() {
        let now = Utc::now();
        let mut mail = entry();
        mail.hold_until = Some(now + chrono::Duration::hours(1));
        assert!(!mail.is_due(now) && !mail.is_held_and_due(now));
        assert!(mail.is_held_and_due(now + chrono::Duration::hours(1)));
        mail.status = MailStatus::Sent;
        assert!(!mail.requeue(now));
    }
}
