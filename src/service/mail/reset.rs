//! The public "forgot my password" request. The caller learns nothing: the
//! transport answers the same at once and the work happens afterwards. Only
//! an active local user with an address gets a reset link, at most a few per
//! hour, and one client address may only ask so often.

use super::{Letter, Mail};
use crate::domain::audit::AuditAction;
use crate::domain::clock::Timestamp;
use crate::domain::credentials::TokenKind;
use crate::domain::mail::MailKind;
use crate::domain::user::{Status, User, UserType};
use crate::service::{Credentials, ServiceResult};
use serde_json::json;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Keys remembered at most; the oldest windows are dropped beyond this.
const MAX_TRACKED: usize = 100_000;

/// Counts requests per key in fixed one-hour windows.
pub(crate) struct ResetLimiter {
    per_user: u32,
    per_address: u32,
    windows: Mutex<HashMap<String, (Timestamp, u32)>>,
}

impl ResetLimiter {
    pub(crate) fn new(per_user: u32, per_address: u32) -> Self {
        Self {
            per_user,
            per_address,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request under `key`; false once `limit` were counted this hour.
    fn admit(&self, key: String, limit: u32, now: Timestamp) -> bool {
        let hour = chrono::Duration::hours(1);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, (start, _)| *start + hour > now);
            if windows.len() >= MAX_TRACKED {
                // Full of live windows: a flood; new keys wait for room.
                return false;
            }
        }
        let window = windows.entry(key).or_insert((now, 0));
        if window.0 + hour <= now {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        window.1 <= limit
    }
}

/// Whether `user` may reset a password here: active, not deleted or masked,
/// with an address, and with a password this directory keeps.
fn may_reset(user: &User) -> bool {
    let external = matches!(
        user.user_type,
        UserType::Ldap | UserType::Sso | UserType::System
    );
    user.status == Status::Active
        && !user.is_archived()
        && user.masked_at.is_none()
        && user.email.is_some()
        && !external
}

impl Mail {
    /// Admits a reset request from `client` (the per-address limit), before
    /// anything about the name is looked at; fails with 409 when mail is off.
    /// The transport answers the same either way.
    pub fn admit_reset_request(&self, client: IpAddr) -> ServiceResult<bool> {
        self.outbox.require()?;
        let bucket = crate::domain::signin::client_bucket(client);
        let limiter = &self.reset_limiter;
        let admitted = limiter.admit(format!("a:{bucket}"), limiter.per_address, self.now());
        if !admitted {
            tracing::info!(%bucket, "password reset request over the per-address limit");
        }
        Ok(admitted)
    }

    /// Handles an admitted reset request for `name` (a login or an email
    /// address). Returns whether a mail was queued, for logs and tests only:
    /// never tell the caller.
    pub fn request_password_reset(&self, name: &str) -> ServiceResult<bool> {
        self.outbox.require()?;
        let Some(id) = self.snapshot().user_id_by_login_or_email(name.trim())? else {
            return Ok(false);
        };
        let limiter = &self.reset_limiter;
        if !limiter.admit(format!("u:{id}"), limiter.per_user, self.now()) {
            tracing::info!(user = id, "password reset request over the per-user limit");
            return Ok(false);
        }
        let ttl = self.settings.token_lifetime(TokenKind::PasswordReset);
        self.write(None, |unit| {
            let user = unit.user(id)?;
            let queued = may_reset(&user) && unit.undeliverable(&user).is_none() && {
                let (token, _) = Credentials::issue_token(unit, id, TokenKind::PasswordReset, ttl)?;
                let page = TokenKind::PasswordReset
                    .link_page()
                    .unwrap_or("reset-password");
                let letter = Letter::new(MailKind::PasswordReset)
                    .with_link(self.settings.link(page, &token));
                unit.mail_user(&user, letter)?.is_ok()
            };
            unit.audit(
                AuditAction::UserRequestPasswordReset,
                Some(id),
                json!({ "queued": queued }),
            )?;
            Ok(queued)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_per_key_and_reopen_after_an_hour() {
        let limiter = ResetLimiter::new(2, 5);
        let now = chrono::Utc::now();
        assert!(limiter.admit("u:1".into(), 2, now));
        assert!(limiter.admit("u:1".into(), 2, now));
        assert!(!limiter.admit("u:1".into(), 2, now));
        assert!(limiter.admit("u:2".into(), 2, now));
        assert!(limiter.admit("u:1".into(), 2, now + chrono::Duration::hours(1)));
    }
}
