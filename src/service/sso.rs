//! Single sign-on, once the provider's ID token is verified (by `crate::sso`):
//! find the account by provider and subject, else link one by a verified
//! email, else create one; refresh its attributes and automatic groups; apply
//! the sign-in rule every door applies; open the same session as
//! `/api/v1/login`. A refusal changes nothing in the store.

use super::signin::{Session, SignIn};
use super::{ServiceError, ServiceResult, Unit};
use crate::domain::audit::AuditAction;
use crate::domain::signin::check_account;
use crate::domain::sso::{Refusal, SsoIdentity, SsoPolicy, may_link_by_email};
use crate::domain::user::{User, UserId};
use crate::store::StoreError;
use serde_json::json;

impl SignIn {
    /// Signs in the user `identity` describes under `policy`; the inner
    /// error is the refusal's reason (for the log, never for the caller).
    pub fn sso_sign_in(
        &self,
        identity: &SsoIdentity,
        policy: &SsoPolicy,
    ) -> ServiceResult<Result<Session, Refusal>> {
        if let Err(refusal) = policy.admits(identity) {
            crate::telemetry::sign_in("sso", "refused");
            return Ok(Err(refusal));
        }
        let groups = policy.automatic_groups(identity);
        let signed_in = self.write(None, |unit| {
            let user = find_or_provision(unit, identity, policy, &groups)?;
            check_account(&user, unit.now)
                .map_err(|_| ServiceError::NotPermitted("the account may not sign in"))?;
            Ok(user.id)
        });
        let outcome = if signed_in.is_ok() { "ok" } else { "refused" };
        crate::telemetry::sign_in("sso", outcome);
        match signed_in {
            Ok(id) => Ok(Ok(self.open_session(id)?)),
            Err(ServiceError::NotPermitted(refusal)) => Ok(Err(refusal)),
            Err(ServiceError::Duplicate { .. }) => {
                Ok(Err("the login or email belongs to another account"))
            }
            Err(error) => Err(error),
        }
    }
}

fn refuse(reason: Refusal) -> ServiceError {
    ServiceError::NotPermitted(reason)
}

/// The account for `identity`, refreshed, linked or created inside `unit`.
fn find_or_provision(
    unit: &Unit,
    identity: &SsoIdentity,
    policy: &SsoPolicy,
    groups: &Option<std::collections::BTreeSet<String>>,
) -> ServiceResult<User> {
    if let Some(groups) = groups {
        super::Groups::ensure_automatic(unit, groups)?;
    }
    if let Some(id) = unit.tx.user_id_by_sso(&identity.link())? {
        let mut user = unit.user(id)?;
        // A refused account is left exactly as it was.
        check_account(&user, unit.now).map_err(|_| refuse("the account may not sign in"))?;
        if user.two_factor_enabled || user.require_2fa {
            return Err(refuse(
                "the account has a second factor of its own, which this door cannot ask for",
            ));
        }
        if identity.apply(&mut user, groups.clone(), unit.now) {
            unit.save(&user)?;
        }
        return Ok(user);
    }
    if let Some(id) = by_email(unit, identity)? {
        if !policy.link_by_email {
            return Err(refuse(
                "the email belongs to an account and link_by_email is off",
            ));
        }
        if !identity.email_verified {
            return Err(refuse("the email claim is not verified"));
        }
        let mut user = unit.user(id)?;
        if !may_link_by_email(&user) {
            return Err(refuse("the account with that email may not be linked"));
        }
        check_account(&user, unit.now).map_err(|_| refuse("the account may not sign in"))?;
        identity.apply(&mut user, groups.clone(), unit.now);
        unit.save(&user)?;
        unit.audit(
            AuditAction::SsoLinkUser,
            Some(id),
            json!({ "provider": identity.provider }),
        )?;
        return Ok(user);
    }
    if !policy.auto_create {
        return Err(refuse("no account and auto_create is off"));
    }
    // A new login must name nobody yet, as a login or as an email address
    // (a login spelled like someone's address would answer for it).
    if let Some(login) = identity.login.as_deref() {
        if unit.tx.user_id_by_login_or_email(login)?.is_some() {
            return Err(refuse("the login claim names another account"));
        }
    }
    let mut user = identity
        .new_user(groups.clone(), unit.now)
        .map_err(refuse)?;
    user.id = unit.tx.next_id("user")?;
    unit.save(&user).map_err(|error| match error {
        ServiceError::Store(StoreError::Duplicate { .. }) | ServiceError::Duplicate { .. } => {
            refuse("the login or email belongs to another account")
        }
        other => other,
    })?;
    unit.audit(
        AuditAction::SsoCreateUser,
        Some(user.id),
        json!({ "provider": identity.provider }),
    )?;
    Ok(user)
}

/// The account holding the identity's email, if any.
fn by_email(unit: &Unit, identity: &SsoIdentity) -> ServiceResult<Option<UserId>> {
    let Some(email) = identity.email.as_deref() else {
        return Ok(None);
    };
    let Ok(email) = crate::domain::names::Email::parse(email) else {
        return Ok(None);
    };
    let id = unit.tx.user_id_by_login_or_email(email.as_str())?;
    // Only an account whose email it is (not one whose login looks like it).
    Ok(id.filter(|id| {
        unit.tx
            .user(*id)
            .ok()
            .flatten()
            .and_then(|user| user.email)
            .is_some_and(|held| held.key() == email.key())
    }))
}
