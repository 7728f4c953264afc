//! Who is calling: bearer-token authentication, and password sign-in with
//! lockout and 2FA, issuing short-lived sessions.

use super::{Directory, ServiceError, ServiceResult};
use crate::domain::clock::Timestamp;
use crate::domain::credentials::{TokenKind, token_hash};
use crate::domain::names::fold;
use crate::domain::signin::{Obligation, check_account, pending_obligation};
use crate::domain::totp;
use crate::domain::user::User;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    /// The kind of token that authenticated the call.
    pub via: TokenKind,
}

impl Principal {
    /// The caller, provided no obligation (password change, 2FA enrolment) is pending.
    pub fn unrestricted(&self) -> ServiceResult<&User> {
        match pending_obligation(&self.user) {
            None => Ok(&self.user),
            Some(Obligation::ChangePassword) => Err(ServiceError::ObligationPending {
                code: "password_change_required",
                message: "change your password first (POST /api/v1/me/password)",
            }),
            Some(Obligation::EnrolTwoFactor) => Err(ServiceError::ObligationPending {
                code: "two_factor_enrolment_required",
                message: "enrol a second factor first (POST /api/v1/me/2fa)",
            }),
        }
    }
}

/// A password sign-in attempt.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login or email.
    pub login: String,
    pub password: String,
    pub totp: Option<String>,
}

/// A signed-in session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: Option<Timestamp>,
    #[serde(skip)]
    pub user: Arc<User>,
}

impl Directory {
    /// Resolves a bearer token (session or API) to its live, allowed user.
    pub fn authenticate(&self, bearer: &str) -> ServiceResult<Principal> {
        let now = self.now();
        let record = self
            .store
            .token(&token_hash(bearer))?
            .ok_or(ServiceError::Unauthenticated)?;
        if !record.kind.authenticates() || !record.is_live(now) {
            return Err(ServiceError::Unauthenticated);
        }
        let user = self
            .read_cache()
            .get(record.user_id)
            .ok_or(ServiceError::Unauthenticated)?;
        check_account(&user, now).map_err(|_| ServiceError::Unauthenticated)?;
        Ok(Principal {
            user,
            via: record.kind,
        })
    }

    /// Signs in with login (or email) and password, plus a TOTP code when the
    /// user has 2FA. Every refusal looks the same to the caller; the reason is logged.
    pub async fn login(&self, request: LoginRequest, client: IpAddr) -> ServiceResult<Session> {
        let login_key = format!("login:{}", fold(&request.login));
        let keys = [login_key.clone(), format!("addr:{client}")];
        if let Some(retry_after) = self.throttle.locked(&keys, self.now()) {
            return Err(ServiceError::TooManyAttempts { retry_after });
        }
        let user = self
            .store
            .user_id_by_login_or_email(&request.login)?
            .and_then(|id| self.read_cache().get(id));
        let credentials = match &user {
            Some(user) => self.store.credentials(user.id)?,
            None => Default::default(),
        };
        let password_ok = self
            .hasher
            .verify(request.password, credentials.password_hash.clone())
            .await?;
        let now = self.now();
        let refusal = match &user {
            None => Some("unknown login".to_owned()),
            Some(_) if !password_ok => Some("wrong password".to_owned()),
            Some(user) => check_account(user, now)
                .err()
                .map(|r| r.to_string())
                .or_else(|| {
                    let secret = credentials.totp_secret.as_deref()?;
                    let valid = totp_matches(secret, request.totp.as_deref(), now);
                    (!valid).then(|| "missing or wrong 2FA code".to_owned())
                }),
        };
        if let Some(reason) = refusal {
            self.throttle.fail(&keys, now);
            tracing::info!(user_id = user.as_ref().map(|u| u.id), %client, reason, "sign-in refused");
            return Err(ServiceError::InvalidCredentials);
        }
        self.throttle.succeed(&login_key);
        let user_id = user.map(|u| u.id).ok_or(ServiceError::InvalidCredentials)?;
        self.open_session(user_id)
    }

    /// Records the sign-in and issues a session token.
    fn open_session(&self, user_id: u64) -> ServiceResult<Session> {
        let ttl = Some(self.settings.session_ttl);
        let (token, expires_at) = self.write(Some(user_id), |unit| {
            let mut user = unit.user(user_id)?;
            user.last_active_at = Some(unit.now);
            unit.save(&user)?;
            let issued = Self::issue_token(unit, user_id, TokenKind::Session, ttl)?;
            unit.audit("user.sign_in", Some(user_id), json!({}))?;
            Ok(issued)
        })?;
        Ok(Session {
            token,
            expires_at,
            user: self.cached_user(user_id)?,
        })
    }
}

/// Whether `code` is a valid TOTP for the base32 `secret` at `now`.
pub(crate) fn totp_matches(secret: &str, code: Option<&str>, now: Timestamp) -> bool {
    let Some(code) = code else { return false };
    let Ok(secret) = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()) else {
        return false;
    };
    totp::verify(&secret, code, now.timestamp())
}
