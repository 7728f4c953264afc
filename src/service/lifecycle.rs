//! State changes of an account: activate (approve), deactivate, archive or
//! delete, GDPR masking, copying, system roles. Each guards the system users and
//! the last active admin, and runs as one transaction with its audit record.

use super::accounts::Accounts;
use super::projects::leave_projects;
use super::records::{mask_record_attributes, records_naming, release_records};
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::config::OnDelete;
use crate::domain::audit::AuditAction;
use crate::domain::mail::MailKind;
use crate::domain::names::{Email, Login};
use crate::domain::roles::{self, Capability, SystemRole};
use crate::domain::user::{DELETED_USER_ID, Right, Status, User, UserId};
use crate::domain::user_input::validate_record;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A status change applied to a user inside a unit; returns the audit details.
pub(super) type Transition = fn(&Unit, &mut User) -> ServiceResult<Value>;

/// What a user leaves behind when deleted: records naming them, and their
/// project memberships.
pub(crate) struct Leaving {
    records: Vec<crate::domain::projects::ResourceId>,
    memberships: std::collections::BTreeMap<
        crate::domain::projects::ProjectId,
        crate::domain::projects::ProjectRole,
    >,
}

fn system_user_refusal(action: &str) -> ServiceError {
    ServiceError::conflict("system_user", format!("system users cannot be {action}"))
}

impl Accounts {
    /// Refuses a change that breaks a rule about admins: one that would leave
    /// no active admin, or take root's powers ([`roles::root_keeps_its_powers`]).
    pub(crate) fn guard_admin_rules(
        unit: &Unit,
        before: &User,
        after: Option<&User>,
    ) -> ServiceResult<()> {
        if let Some(after) = after {
            roles::root_keeps_its_powers(after)
                .map_err(|rule| ServiceError::conflict("root_protected", rule))?;
        } else if before.is_root() {
            return Err(system_user_refusal("deleted"));
        }
        let loses_admin = before.is_active_admin() && !after.is_some_and(User::is_active_admin);
        // Read inside the unit of work, which sees its own earlier writes: a
        // batch that demotes two admins sees the first demotion when checking
        // the second, and concurrent units are serialised by the store.
        let others = unit
            .tx
            .active_admins()?
            .into_iter()
            .any(|id| id != before.id);
        if loses_admin && !others {
            return Err(ServiceError::conflict(
                "last_admin",
                "at least one active admin must remain",
            ));
        }
        Ok(())
    }

    /// Revokes every token and session of `id`.
    pub(crate) fn revoke_all_tokens(unit: &Unit, id: UserId) -> ServiceResult<()> {
        let mut credentials = unit.tx.credentials(id)?;
        for hash in credentials.take_all_tokens() {
            unit.tx.remove_token(&hash)?;
        }
        Ok(unit.tx.put_credentials(id, &credentials)?)
    }

    /// Hands everything `id` owns or last updated to `deleted_user`.
    fn reassign_to_deleted_user(unit: &Unit, id: UserId) -> ServiceResult<usize> {
        let held: Vec<UserId> = unit
            .index
            .entries()
            .iter()
            .filter(|u| u.id != id && (u.owner() == Some(id) || u.updated_by() == Some(id)))
            .map(|u| u.id)
            .collect();
        let mut reassigned = 0;
        for other in &held {
            // Already removed earlier in this unit (an import deleting both).
            let Some(mut user) = unit.tx.user(*other)? else {
                continue;
            };
            for slot in [&mut user.owner, &mut user.updated_by] {
                if *slot == Some(id) {
                    *slot = Some(DELETED_USER_ID);
                }
            }
            unit.save(&user)?;
            reassigned += 1;
        }
        Ok(reassigned)
    }

    /// Loads user `id`, lets `change` alter it, guards the last admin, saves and
    /// audits as `action`. `change` returns the audit details.
    fn change_user(
        &self,
        principal: &Principal,
        id: UserId,
        action: AuditAction,
        change: impl Fn(&Unit, &mut User) -> ServiceResult<Value>,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            let before = unit.user(id)?;
            roles::may_manage_user(actor, &before)?;
            let mut user = before.clone();
            let details = change(unit, &mut user)?;
            Self::guard_admin_rules(unit, &before, Some(&user))?;
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(action, Some(id), details)
        })?;
        self.current_user(id)
    }

    /// Activates a pending (approval) or deactivated user; the last password still works.
    pub fn activate(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        self.change_user(principal, id, AuditAction::UserActivate, Self::activation)
    }

    /// Deactivates a user: data, password and ownership stay; tokens are revoked.
    pub fn deactivate(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        self.change_user(
            principal,
            id,
            AuditAction::UserDeactivate,
            Self::deactivation,
        )
    }

    /// The activation of `user` inside `unit`; returns the audit details.
    pub(super) fn activation(unit: &Unit, user: &mut User) -> ServiceResult<Value> {
        if user.masked_at.is_some() {
            return Err(ServiceError::conflict(
                "masked",
                "a masked user cannot be activated",
            ));
        }
        if user.is_archived() {
            return Err(ServiceError::conflict(
                "archived",
                "an archived user cannot be activated",
            ));
        }
        let previous = user.status;
        user.status = Status::Active;
        if previous == Status::Pending {
            unit.notify(user, MailKind::AccountApproved)?;
        }
        Ok(json!({ "from": previous }))
    }

    /// The deactivation of `user` inside `unit`: sessions and tokens end.
    pub(super) fn deactivation(unit: &Unit, user: &mut User) -> ServiceResult<Value> {
        if user.is_system() {
            return Err(system_user_refusal("deactivated"));
        }
        if user.status != Status::Deactivated {
            unit.notify(user, MailKind::AccountDeactivated)?;
        }
        user.status = Status::Deactivated;
        Self::revoke_all_tokens(unit, user.id)?;
        Ok(json!({}))
    }

    /// GDPR masking: personal fields replaced, secrets dropped, account
    /// deactivated. Irreversible.
    pub fn mask(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        let records = records_naming(&*self.snapshot(), id)?;
        self.change_user(principal, id, AuditAction::UserMask, |unit, user| {
            if user.is_system() {
                return Err(system_user_refusal("masked"));
            }
            if user.masked_at.is_some() {
                return Err(ServiceError::conflict(
                    "masked",
                    "the user is already masked",
                ));
            }
            user.mask(unit.now);
            super::pictures::forget_picture(unit, user.id)?;
            Self::revoke_all_tokens(unit, user.id)?;
            unit.forget_mail_of(user.id, true)?;
            let mut credentials = unit.tx.credentials(user.id)?;
            credentials.password_hash = None;
            credentials.totp_secret = None;
            credentials.totp_pending = None;
            credentials.totp_last_step = None;
            unit.tx.put_credentials(user.id, &credentials)?;
            mask_record_attributes(
                unit,
                &self.settings.masked_record_attributes,
                &records,
                user.id,
            )?;
            Ok(json!({}))
        })
    }

    /// Replaces a user's system roles; only admins grant roles.
    pub fn set_system_roles(
        &self,
        principal: &Principal,
        id: UserId,
        roles_to_set: &BTreeSet<SystemRole>,
    ) -> ServiceResult<Arc<User>> {
        roles::require(principal.unrestricted()?, Capability::GrantRoles)?;
        self.change_user(principal, id, AuditAction::UserSetSystemRoles, |_, user| {
            user.system_roles = roles_to_set.clone();
            Ok(json!({ "roles": roles_to_set }))
        })
    }

    /// Deletes per `accounts.on_delete`: archive keeps the record (login stays
    /// reserved), delete removes it. Either way, what the user owned or last
    /// updated passes to `deleted_user`. Returns the archived user, if kept.
    pub fn delete_user(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> ServiceResult<Option<Arc<User>>> {
        let actor = principal.unrestricted()?;
        let leaving = self.leaving(id)?;
        self.write_as(actor, |unit| {
            self.delete_in(unit, actor, id, &leaving).map(drop)
        })?;
        Ok(self.snapshot().user(id)?.map(Arc::new))
    }

    /// What a user leaves behind, read before deleting them: the records that
    /// name them and their project memberships.
    pub(crate) fn leaving(&self, id: UserId) -> ServiceResult<Leaving> {
        let snapshot = self.snapshot();
        Ok(Leaving {
            records: records_naming(&*snapshot, id)?,
            memberships: snapshot.projects_of(id)?,
        })
    }

    /// Archives or deletes user `id` inside `unit` (see [`Self::delete_user`]);
    /// returns the archived user, if kept.
    pub(crate) fn delete_in(
        &self,
        unit: &Unit,
        actor: &User,
        id: UserId,
        leaving: &Leaving,
    ) -> ServiceResult<Option<User>> {
        let policy = self.settings.on_delete;
        let user = unit.user(id)?;
        roles::may_touch_record(actor, &user, Right::Delete)?;
        if user.is_system() {
            return Err(system_user_refusal("deleted"));
        }
        if user.is_archived() && policy == OnDelete::Archive {
            return Err(ServiceError::conflict(
                "archived",
                "the user is already archived",
            ));
        }
        Self::revoke_all_tokens(unit, id)?;
        let reassigned = Self::reassign_to_deleted_user(unit, id)?;
        release_records(unit, &leaving.records, id)?;
        leave_projects(unit, &leaving.memberships, id, policy == OnDelete::Delete)?;
        // Deleted: no more mail; removed for good: nothing of them in the outbox.
        unit.forget_mail_of(id, policy == OnDelete::Delete)?;
        let after = match policy {
            OnDelete::Archive => {
                let mut archived = user.clone();
                archived.archived_at = Some(unit.now);
                archived.updated_at = unit.now;
                archived.updated_by = Some(actor.id);
                unit.save(&archived)?;
                Some(archived)
            }
            OnDelete::Delete => {
                super::pictures::forget_picture(unit, id)?;
                unit.remove(&user)?;
                None
            }
        };
        Self::guard_admin_rules(unit, &user, after.as_ref())?;
        let action = if after.is_some() {
            AuditAction::UserArchive
        } else {
            AuditAction::UserDelete
        };
        unit.audit(
            action,
            Some(id),
            json!({ "reassigned_records": reassigned }),
        )?;
        Ok(after)
    }

    /// Copies a user: a new pending user with the same type, groups, roles and
    /// settings, without password, tokens or personal data.
    pub fn copy_user(
        &self,
        principal: &Principal,
        id: UserId,
        login: Option<String>,
        email: Option<String>,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        let source = self.current_user(id)?;
        roles::may_manage_user(actor, &source)?;
        if source.is_system() {
            return Err(system_user_refusal("copied"));
        }
        if !source.system_roles.is_empty() {
            roles::require(actor, Capability::GrantRoles)?;
        }
        let login = login.as_deref().map(Login::parse).transpose()?;
        let email = email.as_deref().map(Email::parse).transpose()?;
        let mut draft = source.copy_settings(self.now());
        draft.login = login;
        draft.email = email;
        validate_record(&draft)?;
        draft.owner = Some(actor.id);
        draft.updated_by = Some(actor.id);
        let groups = draft.groups.clone();
        self.insert_user(Some(actor.id), draft, None, &groups, AuditAction::UserCopy)
    }
}
