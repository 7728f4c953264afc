//! Creating, reading, changing and listing users; registration; admin password set.

use super::core::area_service;
use super::groups::Groups;
use super::index::{UserPage, UserQuery};
use super::lifecycle::Transition;
use super::{Principal, ServiceError, ServiceResult};
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::credentials::Credentials;
use crate::domain::mail::MailKind;
use crate::domain::roles::{self, Capability};
use crate::domain::user::{AccessGrant, ROOT_LOGIN, Right, Status, User, UserId, UserType};
use crate::domain::user_input::{NewUser, Registration, UserPatch};
use std::collections::BTreeSet;
use std::sync::Arc;

area_service!(
    /// Accounts: creating, reading, changing, listing and (in `lifecycle`)
    /// activating, deactivating, deleting and masking users.
    Accounts {}
);

impl Accounts {
    /// Builds a user from `profile` outside any transaction (id 0), so the
    /// password policy can see its login and email before hashing.
    fn draft_user(
        &self,
        user_type: UserType,
        status: Status,
        profile: UserPatch,
    ) -> ServiceResult<User> {
        let mut draft = User::new(0, user_type, status, self.now());
        profile.apply(&mut draft)?;
        Ok(draft)
    }

    /// Hashes `password` if given.
    async fn hash_optional(&self, password: Option<String>) -> ServiceResult<Option<String>> {
        match password {
            Some(password) => Ok(Some(self.hasher.hash(password).await?)),
            None => Ok(None),
        }
    }

    /// Admin creates a user (default type `local`, status `active`).
    pub async fn create_user(
        &self,
        principal: &Principal,
        request: NewUser,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ManageUsers)?;
        if let Some(field) = request.unknown_field() {
            return Err(ValidationError::new(field, "unknown field").into());
        }
        if !request.system_roles.is_empty() {
            roles::require(actor, Capability::GrantRoles)?;
        }
        let user_type = request.profile.user_type.unwrap_or(UserType::Local);
        // Without a password a local user cannot sign in yet: pending until
        // they set one with the activation link (mailed when mail is on).
        let signs_in_here = matches!(
            user_type,
            UserType::Local | UserType::Email | UserType::SelfRegistered
        );
        let status = request.status.unwrap_or(match request.password {
            None if signs_in_here => Status::Pending,
            _ => Status::Active,
        });
        if status == Status::Deactivated {
            return Err(ValidationError::new("status", "a new user is pending or active").into());
        }
        let mut draft = self.draft_user(user_type, status, request.profile)?;
        if let Some(password) = &request.password {
            self.check_password(&draft, password, request.override_policy)?;
        }
        draft.system_roles = request.system_roles;
        draft.owner = Some(actor.id);
        draft.updated_by = Some(actor.id);
        let password_hash = self.hash_optional(request.password).await?;
        let groups = request.groups;
        let id = self.write(Some(actor.id), |unit| {
            let details = serde_json::json!({ "type": draft.user_type, "status": draft.status });
            let id = Self::insert_in(
                unit,
                &draft,
                password_hash.clone(),
                &groups,
                AuditAction::UserCreate,
                details,
            )?;
            unit.account_mails(&unit.user(id)?, None, password_hash.is_some())?;
            Ok(id)
        })?;
        self.current_user(id)
    }

    /// A visitor registers: a pending `self_registered` user, policy always applied.
    pub async fn register(&self, registration: Registration) -> ServiceResult<Arc<User>> {
        if !self.settings.registration_enabled {
            return Err(ServiceError::Disabled("registration"));
        }
        let organization = match &registration.organization {
            Some(code) => Some(
                self.snapshot()
                    .organization_by_code(code)?
                    .ok_or_else(|| {
                        ValidationError::new("organization", format!("no organization `{code}`"))
                    })?
                    .id,
            ),
            None => None,
        };
        let (profile, password) = registration.into_parts();
        let mut draft = self.draft_user(UserType::SelfRegistered, Status::Pending, profile)?;
        draft.organization = organization;
        self.check_password(&draft, &password, false)?;
        let password_hash = self.hasher.hash(password).await?;
        self.insert_user(
            None,
            draft,
            Some(password_hash),
            &BTreeSet::new(),
            AuditAction::UserRegister,
        )
    }

    /// Stores a drafted user under a fresh id, with its password and groups.
    pub(crate) fn insert_user(
        &self,
        actor: Option<UserId>,
        draft: User,
        password_hash: Option<String>,
        groups: &BTreeSet<String>,
        action: AuditAction,
    ) -> ServiceResult<Arc<User>> {
        let id = self.write(actor, |unit| {
            let details = serde_json::json!({ "type": draft.user_type, "status": draft.status });
            Self::insert_in(unit, &draft, password_hash.clone(), groups, action, details)
        })?;
        self.current_user(id)
    }

    /// Stores `draft` under a fresh id inside `unit`, with its password and
    /// its groups (which must exist and not be automatic); audits `action`.
    pub(crate) fn insert_in(
        unit: &super::Unit,
        draft: &User,
        password_hash: Option<String>,
        groups: &BTreeSet<String>,
        action: AuditAction,
        details: serde_json::Value,
    ) -> ServiceResult<UserId> {
        let mut user = draft.clone();
        user.id = unit.tx.next_id("user")?;
        user.created_at = unit.now;
        user.updated_at = unit.now;
        user.groups = Groups::local_groups(unit, groups)?;
        unit.save(&user)?;
        let credentials = Credentials {
            password_hash,
            ..Credentials::default()
        };
        unit.tx.put_credentials(user.id, &credentials)?;
        unit.audit(action, Some(user.id), details)?;
        Ok(user.id)
    }

    /// The root user (for commands run on a stopped daemon).
    pub fn find_root(&self) -> ServiceResult<Arc<User>> {
        let id = self
            .snapshot()
            .user_id_by_login(ROOT_LOGIN)?
            .ok_or(ServiceError::NotFound("root user"))?;
        self.current_user(id)
    }

    /// Reads a user: directory readers see everyone, others only themselves.
    pub fn get_user(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        let user = self.current_user(id)?;
        if actor.id != id && !user.grants(actor, Right::Read) {
            roles::require(actor, Capability::ReadDirectory)?;
        }
        Ok(user)
    }

    /// Lists users matching `query`.
    pub fn list_users(&self, principal: &Principal, query: &UserQuery) -> ServiceResult<UserPage> {
        roles::require(principal.unrestricted()?, Capability::ReadDirectory)?;
        let page = self.index.query(query);
        let snapshot = self.snapshot();
        let mut users = Vec::with_capacity(page.ids.len());
        for id in page.ids {
            // A user deleted since the index was read is simply left out.
            if let Some(user) = snapshot.user(id)? {
                users.push(Arc::new(user));
            }
        }
        Ok(UserPage {
            users,
            next_cursor: page.next_cursor,
        })
    }

    /// Admin changes a user's profile and settings and, with `status`, activates
    /// or deactivates them under the bulk actions' rules, all in one unit.
    pub fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        patch: UserPatch,
        status: Option<Status>,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        let transition = match status {
            None => None,
            Some(Status::Active) => {
                Some((AuditAction::UserActivate, Self::activation as Transition))
            }
            Some(Status::Deactivated) => Some((
                AuditAction::UserDeactivate,
                Self::deactivation as Transition,
            )),
            Some(Status::Pending) => {
                return Err(ValidationError::new(
                    "status",
                    "a user cannot be made pending again; set active or deactivated",
                )
                .into());
            }
        };
        self.write_as(actor, |unit| {
            let before = unit.user(id)?;
            roles::may_touch_record(actor, &before, Right::Write)?;
            let mut user = before.clone();
            match &patch.picture {
                Some(Some(_)) => {
                    let message = "upload the image with PUT /api/v1/users/{id}/picture";
                    return Err(ValidationError::new("picture", message).into());
                }
                Some(None) => super::pictures::forget_picture(unit, id)?,
                None => {}
            }
            let changed = patch.clone().apply(&mut user)?;
            let mut status_change = None;
            if let Some((action, transition)) = transition {
                roles::may_manage_user(actor, &before)?;
                if Some(user.status) != status {
                    status_change = Some((action, transition(unit, &mut user)?));
                }
            }
            if changed.is_empty() && status_change.is_none() {
                return Ok(());
            }
            Self::guard_admin_rules(unit, &before, Some(&user))?;
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.account_mails(&user, Some(&before), true)?;
            if !changed.is_empty() {
                let details = serde_json::json!({ "fields": changed });
                unit.audit(AuditAction::UserUpdate, Some(id), details)?;
            }
            match status_change {
                Some((action, details)) => unit.audit(action, Some(id), details),
                None => Ok(()),
            }
        })?;
        self.current_user(id)
    }

    /// Admin sets a user's password; the policy applies unless overridden.
    pub async fn set_password(
        &self,
        principal: &Principal,
        id: UserId,
        password: String,
        override_policy: bool,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        let target = self.current_user(id)?;
        roles::may_manage_user(actor, &target)?;
        self.check_password(&target, &password, override_policy)?;
        let hash = self.hasher.hash(password).await?;
        self.write_as(actor, |unit| {
            let target = unit.user(id)?;
            roles::may_manage_user(actor, &target)?;
            // A password set by an admin ends every session and API token.
            Self::revoke_all_tokens(unit, id)?;
            let mut credentials = unit.tx.credentials(id)?;
            credentials.password_hash = Some(hash.clone());
            unit.tx.put_credentials(id, &credentials)?;
            unit.notify(&target, MailKind::PasswordChanged)?;
            unit.audit(
                AuditAction::UserSetPassword,
                Some(id),
                serde_json::json!({ "override_policy": override_policy }),
            )
        })
    }

    /// Only root changes who owns a user record.
    pub fn set_record_owner(
        &self,
        principal: &Principal,
        id: UserId,
        owner: UserId,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        if !(actor.is_system()
            && actor
                .login
                .as_ref()
                .is_some_and(|l| l.as_str() == ROOT_LOGIN))
        {
            return Err(ServiceError::NotPermitted(
                "only root changes the owner of a user record",
            ));
        }
        self.write_as(actor, |unit| {
            unit.user(owner)?;
            let mut user = unit.user(id)?;
            user.owner = Some(owner);
            user.updated_at = unit.now;
            unit.save(&user)?;
            unit.audit(
                AuditAction::UserSetOwner,
                Some(id),
                serde_json::json!({ "owner": owner }),
            )
        })?;
        self.current_user(id)
    }

    /// Replaces the access list of user record `id`: its owner or user managers.
    pub fn set_record_access(
        &self,
        principal: &Principal,
        id: UserId,
        grants: Vec<AccessGrant>,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        for (index, grant) in grants.iter().enumerate() {
            if grant.user.is_some() == grant.group.is_some() {
                return Err(ValidationError::new(
                    format!("grants[{index}]"),
                    "name exactly one of user or group",
                )
                .into());
            }
        }
        self.write_as(actor, |unit| {
            let mut user = unit.user(id)?;
            // The owner may set the list, never past the protection of admins and root.
            roles::may_touch_record(actor, &user, Right::Write)?;
            for grant in &grants {
                if let Some(holder) = grant.user {
                    unit.user(holder)?;
                }
            }
            user.access = grants.clone();
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(
                AuditAction::UserSetAccess,
                Some(id),
                serde_json::json!({ "grants": grants.len() }),
            )
        })?;
        self.current_user(id)
    }
}
