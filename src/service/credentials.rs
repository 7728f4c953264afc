//! The self-service surface of a signed-in user: their own record, password
//! and API token.

use super::core::area_service;
use super::{IssuedToken, Principal, ServiceError, ServiceResult};
use crate::domain::audit::AuditAction;
use crate::domain::credentials::TokenKind;
use crate::domain::signin::{Obligation, pending_obligation};
use crate::domain::user::User;
use serde_json::json;
use std::sync::Arc;

area_service!(
    /// Credentials: a user's own password and API token, tokens issued by
    /// admins (in `tokens`), and TOTP 2FA (in `twofactor`).
    Credentials {}
);

impl Credentials {
    /// The caller's own record, fresh from the read model.
    /// Refused, like every `/me` route, while an obligation is pending (the
    /// error names it); only the password change and 2FA enrolment remain open.
    pub fn me(&self, principal: &Principal) -> ServiceResult<Arc<User>> {
        self.current_user(principal.unrestricted()?.id)
    }

    /// Changes the caller's password after checking the old one; clears a
    /// pending password-change obligation.
    pub async fn change_own_password(
        &self,
        principal: &Principal,
        old_password: String,
        new_password: String,
    ) -> ServiceResult<()> {
        let id = principal.user.id;
        let user = self.current_user(id)?;
        let current = self.snapshot().credentials(id)?.password_hash;
        if current.is_none() || !self.hasher.verify(old_password, current).await? {
            return Err(ServiceError::InvalidCredentials);
        }
        self.check_password(&user, &new_password, false)?;
        let hash = self.hasher.hash(new_password).await?;
        self.write(Some(id), |unit| {
            let mut user = unit.user(id)?;
            user.require_password_change = false;
            user.updated_at = unit.now;
            unit.save(&user)?;
            // Every session ends (the caller signs in anew); API tokens stay.
            Self::revoke_tokens(unit, id, TokenKind::Session)?;
            let mut credentials = unit.tx.credentials(id)?;
            credentials.password_hash = Some(hash.clone());
            unit.tx.put_credentials(id, &credentials)?;
            unit.notify(&user, crate::domain::mail::MailKind::PasswordChanged)?;
            unit.audit(AuditAction::UserChangeOwnPassword, Some(id), json!({}))
        })
    }

    /// Issues (or replaces) the caller's own API token.
    pub fn issue_own_api_token(&self, principal: &Principal) -> ServiceResult<IssuedToken> {
        let id = principal.unrestricted()?.id;
        let (token, _) = self.write(Some(id), |unit| {
            let issued = Self::issue_token(unit, id, TokenKind::Api, None)?;
            unit.audit(
                AuditAction::TokenIssue,
                Some(id),
                json!({ "kind": TokenKind::Api }),
            )?;
            Ok(issued)
        })?;
        Ok(IssuedToken {
            token,
            link: None,
            expires_at: None,
        })
    }

    /// Allows the call when nothing is pending or only 2FA enrolment is (the
    /// enrolment endpoints themselves).
    pub(crate) fn allows_enrolment(principal: &Principal) -> ServiceResult<()> {
        match pending_obligation(&principal.user) {
            Some(Obligation::EnrolTwoFactor) => Ok(()),
            _ => principal.unrestricted().map(|_| ()),
        }
    }
}
