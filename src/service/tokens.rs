//! Tokens: API tokens, sessions, and the single-use activation, password-reset
//! and email-confirmation tokens. 256 random bits with a kind prefix; only the
//! SHA-256 is stored. Unknown, used, expired and revoked tokens look the same.

use super::credentials::Credentials;
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::audit::AuditAction;
use crate::domain::clock::Timestamp;
use crate::domain::credentials::{TokenKind, TokenRecord, token_hash};
use crate::domain::roles;
use crate::domain::user::{Status, User, UserId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Sessions a user may hold at once; the oldest is dropped beyond this.
const MAX_SESSIONS: usize = 20;

/// A freshly issued token, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new random token of `kind`.
fn generate(kind: TokenKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes))
}

fn expiry(now: Timestamp, ttl: Option<Duration>) -> Option<Timestamp> {
    ttl.map(|ttl| now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX))
}

impl Credentials {
    /// Issues a `kind` token for `user_id` inside `unit`. Unless the kind allows
    /// several (sessions), earlier tokens of that kind are revoked.
    pub(crate) fn issue_token(
        unit: &Unit,
        user_id: UserId,
        kind: TokenKind,
        ttl: Option<Duration>,
    ) -> ServiceResult<(String, Option<Timestamp>)> {
        let mut credentials = unit.tx.credentials(user_id)?;
        let mut stale = if kind == TokenKind::Session {
            Vec::new()
        } else {
            credentials.take_tokens(kind)
        };
        if kind == TokenKind::Session {
            let sessions = credentials
                .tokens
                .iter()
                .filter(|(k, _)| *k == kind)
                .count();
            if sessions >= MAX_SESSIONS {
                if let Some(index) = credentials.tokens.iter().position(|(k, _)| *k == kind) {
                    stale.push(credentials.tokens.remove(index).1);
                }
            }
        }
        for hash in stale {
            unit.tx.remove_token(&hash)?;
        }
        let token = generate(kind);
        let hash = token_hash(&token);
        let expires_at = expiry(unit.now, ttl);
        let record = TokenRecord {
            kind,
            user_id,
            created_at: unit.now,
            expires_at,
        };
        unit.tx.put_token(&hash, &record)?;
        credentials.tokens.push((kind, hash));
        unit.tx.put_credentials(user_id, &credentials)?;
        Ok((token, expires_at))
    }

    /// Revokes every `kind` token of `user_id`; returns how many there were.
    pub(super) fn revoke_tokens(
        unit: &Unit,
        user_id: UserId,
        kind: TokenKind,
    ) -> ServiceResult<usize> {
        let mut credentials = unit.tx.credentials(user_id)?;
        let hashes = credentials.take_tokens(kind);
        for hash in &hashes {
            unit.tx.remove_token(hash)?;
        }
        unit.tx.put_credentials(user_id, &credentials)?;
        Ok(hashes.len())
    }

    /// Consumes a single-use token of `kind`, or fails with [`ServiceError::InvalidToken`].
    fn take_token(unit: &Unit, token: &str, kind: TokenKind) -> ServiceResult<TokenRecord> {
        let hash = token_hash(token);
        let record = unit
            .tx
            .token(&hash)?
            .filter(|r| r.kind == kind && r.is_live(unit.now));
        let record = record.ok_or(ServiceError::InvalidToken)?;
        unit.tx.remove_token(&hash)?;
        let mut credentials = unit.tx.credentials(record.user_id)?;
        credentials.forget_token(&hash);
        unit.tx.put_credentials(record.user_id, &credentials)?;
        Ok(record)
    }

    /// The live token record for `token` of `kind`, read outside a transaction.
    pub(crate) fn peek_token(&self, token: &str, kind: TokenKind) -> ServiceResult<TokenRecord> {
        let record = self.snapshot().token(&token_hash(token))?;
        record
            .filter(|r| r.kind == kind && r.is_live(self.now()))
            .ok_or(ServiceError::InvalidToken)
    }

    /// Issues (replacing any earlier one) a `kind` token for user `id` on an
    /// admin's behalf: an API token, or an activation, reset or email
    /// confirmation token with its link.
    pub fn issue_token_for(
        &self,
        principal: &Principal,
        id: UserId,
        kind: TokenKind,
    ) -> ServiceResult<IssuedToken> {
        let actor = principal.unrestricted()?;
        let ttl = self.settings.token_lifetime(kind);
        let (token, expires_at) = self.write_as(actor, |unit| {
            let user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            kind.issuable_for(&user)
                .map_err(|(code, message)| ServiceError::conflict(code, message))?;
            let issued = Self::issue_token(unit, id, kind, ttl)?;
            unit.audit(AuditAction::TokenIssue, Some(id), json!({ "kind": kind }))?;
            Ok(issued)
        })?;
        let link = kind
            .link_page()
            .map(|page| self.settings.link(page, &token));
        Ok(IssuedToken {
            token,
            link,
            expires_at,
        })
    }

    /// Replaces the root user's API token (for an operator who lost it, on
    /// the host, with the daemon stopped); audited as the system's act.
    pub fn reset_root_token(&self) -> ServiceResult<String> {
        let root = self
            .snapshot()
            .user_id_by_login(crate::domain::user::ROOT_LOGIN)?
            .ok_or(ServiceError::NotFound("root user"))?;
        self.write(None, |unit| {
            // Whoever holds the lost token may hold a session made with it.
            Self::revoke_tokens(unit, root, TokenKind::Session)?;
            let (token, _) = Self::issue_token(unit, root, TokenKind::Api, None)?;
            let details = json!({ "kind": TokenKind::Api, "via": "gatehouse root-token reset" });
            unit.audit(AuditAction::TokenIssue, Some(root), details)?;
            Ok(token)
        })
    }

    /// Revokes user `id`'s tokens of `kind` on an admin's behalf.
    pub fn revoke_token_for(
        &self,
        principal: &Principal,
        id: UserId,
        kind: TokenKind,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            let revoked = Self::revoke_tokens(unit, id, kind)?;
            if revoked == 0 {
                return Err(ServiceError::NotFound("token"));
            }
            unit.audit(AuditAction::TokenRevoke, Some(id), json!({ "kind": kind }))
        })
    }

    /// Redeems a single-use token that sets a new password (activation or reset),
    /// then lets `finish` update the user. Policy applies; sessions are revoked.
    async fn redeem_with_password(
        &self,
        token: &str,
        kind: TokenKind,
        password: String,
        action: AuditAction,
        finish: fn(&mut User) -> ServiceResult<()>,
    ) -> ServiceResult<Arc<User>> {
        let record = self.peek_token(token, kind)?;
        let user = self
            .current_user(record.user_id)
            .map_err(|_| ServiceError::InvalidToken)?;
        self.check_password(&user, &password, false)?;
        let hash = self.hasher.hash(password).await?;
        let id = self.write(Some(record.user_id), |unit| {
            let record = Self::take_token(unit, token, kind)?;
            let mut user = unit.user(record.user_id)?;
            finish(&mut user)?;
            user.require_password_change = false;
            user.updated_at = unit.now;
            unit.save(&user)?;
            Self::revoke_tokens(unit, user.id, TokenKind::Session)?;
            let mut credentials = unit.tx.credentials(user.id)?;
            credentials.password_hash = Some(hash.clone());
            unit.tx.put_credentials(user.id, &credentials)?;
            if kind == TokenKind::PasswordReset {
                unit.notify(&user, crate::domain::mail::MailKind::PasswordChanged)?;
            }
            unit.audit(action, Some(user.id), json!({}))?;
            Ok(user.id)
        })?;
        self.current_user(id)
    }

    /// Public: a pending user sets a password with an activation token and becomes active.
    pub async fn activate_with_token(
        &self,
        token: &str,
        password: String,
    ) -> ServiceResult<Arc<User>> {
        self.redeem_with_password(
            token,
            TokenKind::Activation,
            password,
            AuditAction::UserActivateWithToken,
            |user| {
                if user.status != Status::Pending {
                    return Err(ServiceError::InvalidToken);
                }
                user.status = Status::Active;
                Ok(())
            },
        )
        .await
    }

    /// Public: an active user sets a new password with a reset token.
    pub async fn reset_password_with_token(
        &self,
        token: &str,
        password: String,
    ) -> ServiceResult<Arc<User>> {
        self.redeem_with_password(
            token,
            TokenKind::PasswordReset,
            password,
            AuditAction::UserResetPassword,
            |user| {
                if user.status != Status::Active || user.is_archived() {
                    return Err(ServiceError::InvalidToken);
                }
                Ok(())
            },
        )
        .await
    }

    /// Public: confirms the email address the token was issued for.
    pub fn confirm_email(&self, token: &str) -> ServiceResult<Arc<User>> {
        let id = self.write(None, |unit| {
            let record = Self::take_token(unit, token, TokenKind::EmailConfirmation)?;
            let mut user = unit.user(record.user_id)?;
            user.email_confirmed_at = Some(unit.now);
            user.updated_at = unit.now;
            unit.save(&user)?;
            unit.audit(AuditAction::UserConfirmEmail, Some(user.id), json!({}))?;
            Ok(user.id)
        })?;
        self.current_user(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_and_distinct() {
        let a = generate(TokenKind::Api);
        let b = generate(TokenKind::Api);
        assert!(a.starts_with("gh_api_") && a.len() == 7 + 43, "{a}");
        assert_ne!(a, b);
    }
}
