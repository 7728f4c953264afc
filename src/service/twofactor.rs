//! Two-factor authentication (TOTP): self enrolment confirmed by a code,
//! self removal, and admin reset.

use super::accounts::Accounts;
use super::credentials::Credentials;
use super::secrets::SecretSealer;
use super::{Principal, ServiceError, ServiceResult};
use crate::domain::audit::AuditAction;
use crate::domain::roles;
use crate::domain::totp;
use crate::domain::user::{User, UserId};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

const ISSUER: &str = "gatehouse";
const SECRET_BYTES: usize = 20;

/// What an authenticator app needs to enrol.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

impl Credentials {
    /// Starts enrolment: a new pending secret, confirmed later by a code.
    pub fn begin_two_factor(&self, principal: &Principal) -> ServiceResult<Enrolment> {
        Self::allows_enrolment(principal)?;
        let user = self.current_user(principal.user.id)?;
        if user.two_factor_enabled {
            return Err(ServiceError::conflict(
                "already_enrolled",
                "2FA is already enabled",
            ));
        }
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = data_encoding::BASE32_NOPAD.encode(&bytes);
        let sealed = self.sealer.seal(&secret)?;
        self.write(Some(user.id), |unit| {
            let mut credentials = unit.tx.credentials(user.id)?;
            credentials.totp_pending = Some(sealed.clone());
            Ok(unit.tx.put_credentials(user.id, &credentials)?)
        })?;
        let account = user.effective_display_name();
        Ok(Enrolment {
            otpauth_uri: totp::otpauth_uri(ISSUER, &account, &secret),
            secret,
        })
    }

    /// Confirms enrolment with a code from the app; 2FA is on from then on.
    pub fn confirm_two_factor(
        &self,
        principal: &Principal,
        code: &str,
    ) -> ServiceResult<Arc<User>> {
        Self::allows_enrolment(principal)?;
        let id = principal.user.id;
        self.write(Some(id), |unit| {
            let mut credentials = unit.tx.credentials(id)?;
            let pending = credentials.totp_pending.take().ok_or_else(|| {
                ServiceError::conflict(
                    "no_enrolment",
                    "start enrolment first (POST /api/v1/me/2fa)",
                )
            })?;
            let step = self.totp_step(&pending, Some(code), unit.now)?;
            if !step.is_some_and(|step| credentials.use_totp_step(step)) {
                return Err(crate::domain::ValidationError::new("code", "does not match").into());
            }
            credentials.totp_secret = Some(pending);
            unit.tx.put_credentials(id, &credentials)?;
            let mut user = unit.user(id)?;
            user.two_factor_enabled = true;
            user.updated_at = unit.now;
            unit.save(&user)?;
            unit.audit(AuditAction::UserEnable2fa, Some(id), json!({}))
        })?;
        self.current_user(id)
    }

    /// The user turns 2FA off with a current code, unless an admin requires it.
    pub fn disable_own_two_factor(
        &self,
        principal: &Principal,
        code: &str,
    ) -> ServiceResult<Arc<User>> {
        let id = principal.unrestricted()?.id;
        self.write(Some(id), |unit| {
            let user = unit.user(id)?;
            if user.require_2fa {
                return Err(ServiceError::conflict(
                    "2fa_required",
                    "an admin requires 2FA for this account",
                ));
            }
            let mut credentials = unit.tx.credentials(id)?;
            let secret = credentials
                .totp_secret
                .clone()
                .ok_or(ServiceError::NotFound("2FA enrolment"))?;
            let step = self.totp_step(&secret, Some(code), unit.now)?;
            if !step.is_some_and(|step| credentials.use_totp_step(step)) {
                return Err(crate::domain::ValidationError::new("code", "does not match").into());
            }
            unit.tx.put_credentials(id, &credentials)?;
            Self::clear_two_factor(unit, user)?;
            unit.audit(AuditAction::UserDisable2fa, Some(id), json!({}))
        })?;
        self.current_user(id)
    }

    /// Admin removes a user's 2FA (lost device); enrolment is asked again at
    /// next sign-in when 2FA is required.
    pub fn reset_two_factor(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            Accounts::revoke_all_tokens(unit, id)?;
            unit.notify(&user, crate::domain::mail::MailKind::TwoFactorReset)?;
            Self::clear_two_factor(unit, user)?;
            unit.audit(AuditAction::UserReset2fa, Some(id), json!({}))
        })?;
        self.current_user(id)
    }

    /// Makes sure `secret.key` is the key the directory's secrets were sealed
    /// with: the first start records a value sealed with it, every later
    /// start (of any daemon on the store) must open that value.
    pub(crate) fn check_sealing_key(&self) -> ServiceResult<()> {
        const CHECK: &str = "sealing_key_check";
        const PLAIN: &str = "gatehouse sealing key";
        if self.snapshot().setting(CHECK)?.is_none() {
            let sealed = self.sealer.seal(PLAIN)?;
            self.write(None, |unit| {
                if unit.tx.setting(CHECK)?.is_none() {
                    unit.tx.put_setting(CHECK, &sealed)?;
                }
                Ok(())
            })?;
        }
        let stored = self.snapshot().setting(CHECK)?.unwrap_or_default();
        match self.sealer.open(&stored) {
            Ok(plain) if plain == PLAIN => Ok(()),
            _ => Err(ServiceError::SealingKeyMismatch),
        }
    }

    /// Seals TOTP seeds an older version stored in clear; returns how many.
    pub(crate) fn seal_legacy_seeds(&self) -> ServiceResult<usize> {
        let snapshot = self.snapshot();
        let mut legacy = Vec::new();
        for entry in self.index.entries() {
            let credentials = snapshot.credentials(entry.id)?;
            let clear = [&credentials.totp_secret, &credentials.totp_pending]
                .into_iter()
                .flatten()
                .any(|seed| !SecretSealer::is_sealed(seed));
            if clear {
                legacy.push(entry.id);
            }
        }
        for id in &legacy {
            self.write(None, |unit| {
                let mut credentials = unit.tx.credentials(*id)?;
                for seed in [&mut credentials.totp_secret, &mut credentials.totp_pending] {
                    if let Some(clear) = seed.as_ref().filter(|s| !SecretSealer::is_sealed(s)) {
                        *seed = Some(self.sealer.seal(clear)?);
                    }
                }
                Ok(unit.tx.put_credentials(*id, &credentials)?)
            })?;
        }
        Ok(legacy.len())
    }

    fn clear_two_factor(unit: &super::Unit, mut user: User) -> ServiceResult<()> {
        let mut credentials = unit.tx.credentials(user.id)?;
        credentials.totp_secret = None;
        credentials.totp_pending = None;
        credentials.totp_last_step = None;
        unit.tx.put_credentials(user.id, &credentials)?;
        user.two_factor_enabled = false;
        user.updated_at = unit.now;
        unit.save(&user)
    }
}

#[cfg(test)]
mod tests {
    use crate::service::test_directory;

    #[test]
    fn seeds_stored_in_clear_are_sealed_at_open_and_still_verify() {
        let (_dir, directory) = test_directory();
        let credentials = &directory.credentials;
        let seed = "JBSWY3DPEHPK3PXP";
        let written = credentials.write(None, |unit| {
            let mut stored = unit.tx.credentials(1)?;
            stored.totp_secret = Some(seed.to_owned());
            Ok(unit.tx.put_credentials(1, &stored)?)
        });
        assert!(written.is_ok());
        assert_eq!(credentials.seal_legacy_seeds().ok(), Some(1));
        assert_eq!(credentials.seal_legacy_seeds().ok(), Some(0), "done once");
        let stored = credentials
            .snapshot()
            .credentials(1)
            .ok()
            .and_then(|c| c.totp_secret);
        let stored = stored.unwrap_or_default();
        assert!(!stored.contains(seed));
        let now = credentials.now();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(seed.as_bytes())
            .unwrap_or_default();
        let code = crate::domain::totp::code_at(&bytes, now.timestamp());
        let step = credentials.totp_step(&stored, Some(&code), now);
        assert!(
            matches!(step, Ok(Some(_))),
            "the sealed seed still checks codes"
        );
    }
}
