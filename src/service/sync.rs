//! Accounts that follow an external directory: sign-in through it, and the
//! full or incremental sync with its safety guard. The directory itself is
//! behind the [`ExternalDirectory`] trait (implemented in `crate::ldap`).

use super::accounts::Accounts;
use super::core::area_service;
use super::{Principal, ServiceError, ServiceResult, Unit};
use crate::domain::audit::AuditAction;
use crate::domain::clock::Timestamp;
use crate::domain::external::{Applied, DirectoryUser, is_synced, mark_missing};
use crate::domain::names::fold;
use crate::domain::roles::{self, Capability};
use crate::domain::user::{User, UserId, UserType};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Users written per transaction during a sync.
const SYNC_BATCH: usize = 500;

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExternalError(pub String);

/// What a sync reads from the directory.
pub struct Snapshot {
    /// All users (full) or those changed since the last run (incremental).
    pub users: Vec<DirectoryUser>,
    /// Mapped automatic groups per member DN (case-folded), for every user.
    pub memberships: HashMap<String, BTreeSet<String>>,
}

/// An external directory of users (LDAP).
#[async_trait::async_trait]
pub trait ExternalDirectory: Send + Sync {
    /// Checks `password` by binding as the user; `Ok(None)` for an unknown login
    /// or a wrong password, `Err` when the directory cannot be reached.
    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<DirectoryUser>, ExternalError>;
    /// Whether the directory answers (connects and binds as the service account).
    async fn check(&self) -> Result<(), ExternalError>;
    /// Reads users (only those changed since `since`, when given) and memberships.
    async fn snapshot(
        &self,
        since: Option<Timestamp>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Snapshot, ExternalError>;
}

/// How the sync treats accounts gone from the directory.
#[derive(Debug, Clone, Copy)]
pub struct SyncPolicy {
    pub deactivate_missing: bool,
    pub max_missing_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    Full,
    Incremental,
}

/// The outcome of one sync run.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub mode: Option<SyncMode>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub seen: usize,
    pub created: usize,
    pub updated: usize,
    pub reactivated: usize,
    pub deactivated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    /// Set when the run changed nothing on purpose (safety guard) or failed.
    pub aborted: Option<String>,
    pub errors: Vec<String>,
}

/// The sync's memory between runs, shown by `GET /api/v1/ldap/status`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    pub configured: bool,
    pub running: bool,
    pub last_run: Option<SyncReport>,
    pub last_full_run_at: Option<DateTime<Utc>>,
    pub last_success_started_at: Option<DateTime<Utc>>,
}

area_service!(
    /// Directory sync: the external directory (LDAP), its sign-in, scheduled
    /// and on-demand syncs, and their status.
    DirectorySync {
        external: std::sync::OnceLock<(Arc<dyn ExternalDirectory>, SyncPolicy)>,
        status: std::sync::Mutex<SyncStatus>,
    }
);

impl DirectorySync {
    /// Whether the external directory answers; `None` when none is configured.
    pub async fn check_external(&self) -> Option<Result<(), ExternalError>> {
        let (external, _) = self.external.get()?;
        Some(external.check().await)
    }

    /// Installs the external directory (at start-up, once).
    pub fn set_external(&self, external: Arc<dyn ExternalDirectory>, policy: SyncPolicy) {
        let _ = self.external.set((external, policy));
        self.sync_state().configured = true;
    }

    fn sync_state(&self) -> std::sync::MutexGuard<'_, SyncStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a sign-in for `user` (None: unknown locally) goes to the directory.
    pub(crate) fn external_for(&self, user: Option<&User>) -> Option<&Arc<dyn ExternalDirectory>> {
        let (external, _) = self.external.get()?;
        user.is_none_or(|u| u.user_type == crate::domain::user::UserType::Ldap)
            .then_some(external)
    }

    /// Directory sign-in: binds as the user and, on success, creates or refreshes
    /// the account. Unreachable directory: refused, nothing stored (fail closed).
    pub(crate) async fn sign_in_externally(
        &self,
        external: &Arc<dyn ExternalDirectory>,
        login: &str,
        password: &str,
    ) -> Result<Option<Arc<User>>, String> {
        match external.authenticate(login, password).await {
            Ok(Some(entry)) => {
                let user = self
                    .upsert_directory_user(&entry)
                    .map_err(|e| format!("directory account: {e}"))?;
                Ok(Some(user))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                tracing::warn!(%error, login_attempt = %fold(login), "directory unreachable: directory accounts are refused");
                Err("directory unreachable".into())
            }
        }
    }

    /// Creates or refreshes one directory user in its own transaction.
    fn upsert_directory_user(&self, entry: &DirectoryUser) -> ServiceResult<Arc<User>> {
        let id = self.write(None, |unit| {
            let mut counts = SyncReport::default();
            let existing = unit.tx_user_id(&entry.login)?;
            Self::apply_entry(unit, existing, entry, &mut counts)
        })?;
        self.current_user(id)
    }

    /// Creates or updates the user for `entry`; counts what happened. Refuses to
    /// take over a local (non-ldap) account with the same login.
    fn apply_entry(
        unit: &Unit,
        existing: Option<UserId>,
        entry: &DirectoryUser,
        counts: &mut SyncReport,
    ) -> ServiceResult<UserId> {
        super::Groups::ensure_automatic(unit, &entry.groups)?;
        let Some(id) = existing else {
            let mut user = entry.new_user(unit.now).ok_or_else(|| {
                ServiceError::conflict(
                    "bad_login",
                    format!("directory login `{}` is not a valid login", entry.login),
                )
            })?;
            user.id = unit.tx.next_id("user")?;
            unit.save(&user)?;
            unit.audit(AuditAction::LdapCreateUser, Some(user.id), json!({}))?;
            counts.created += 1;
            return Ok(user.id);
        };
        let mut user = unit.user(id)?;
        if !is_synced(&user) {
            return Err(ServiceError::conflict(
                "not_synced",
                format!("login `{}` belongs to a local account", entry.login),
            ));
        }
        match entry.apply(&mut user, unit.now) {
            Applied::Unchanged => counts.unchanged += 1,
            Applied::Updated => {
                unit.save(&user)?;
                counts.updated += 1;
            }
            Applied::Reactivated => {
                unit.save(&user)?;
                unit.audit(AuditAction::LdapReactivateUser, Some(id), json!({}))?;
                counts.reactivated += 1;
            }
        }
        Ok(id)
    }

    /// Runs a sync now on behalf of an admin.
    pub async fn sync_directory_as(
        &self,
        principal: &Principal,
        mode: SyncMode,
    ) -> ServiceResult<SyncReport> {
        roles::require(principal.unrestricted()?, Capability::RunSync)?;
        self.sync_directory(mode, &|_| {}).await
    }

    /// The sync status, for directory readers.
    pub fn sync_status(&self, principal: &Principal) -> ServiceResult<SyncStatus> {
        roles::require(principal.unrestricted()?, Capability::RunSync)?;
        Ok(self.sync_state().clone())
    }

    /// The mode a scheduled run should use: full first and once a day, else incremental.
    pub fn scheduled_sync_mode(&self) -> SyncMode {
        let last_full = self.sync_state().last_full_run_at;
        match last_full {
            Some(at) if self.now() - at < chrono::Duration::hours(24) => SyncMode::Incremental,
            _ => SyncMode::Full,
        }
    }

    /// Runs one sync. `progress` hears how many entries were read so far.
    pub async fn sync_directory(
        &self,
        mode: SyncMode,
        progress: &(dyn Fn(usize) + Sync),
    ) -> ServiceResult<SyncReport> {
        let (external, policy) = self
            .external
            .get()
            .ok_or(ServiceError::Disabled("LDAP (set ldap.url)"))?;
        {
            let mut state = self.sync_state();
            if state.running {
                return Err(ServiceError::conflict(
                    "sync_running",
                    "a sync is already running",
                ));
            }
            state.running = true;
        }
        let started_at = self.now();
        let timer = std::time::Instant::now();
        let since = match mode {
            SyncMode::Full => None,
            SyncMode::Incremental => self.sync_state().last_success_started_at,
        };
        let mut report = SyncReport {
            mode: Some(mode),
            started_at: Some(started_at),
            ..SyncReport::default()
        };
        match external.snapshot(since, progress).await {
            Ok(snapshot) => self.apply_snapshot(&snapshot, mode, *policy, &mut report),
            Err(error) => report.aborted = Some(format!("directory unreachable: {error}")),
        }
        report.finished_at = Some(self.now());
        crate::telemetry::directory_sync(report.aborted.is_none(), timer.elapsed().as_secs_f64());
        let mut state = self.sync_state();
        state.running = false;
        if report.aborted.is_none() {
            state.last_success_started_at = Some(started_at);
            if mode == SyncMode::Full {
                state.last_full_run_at = Some(started_at);
            }
        }
        state.last_run = Some(report.clone());
        drop(state);
        tracing::info!(
            ?mode,
            created = report.created,
            updated = report.updated,
            deactivated = report.deactivated,
            reactivated = report.reactivated,
            aborted = report.aborted.as_deref(),
            "directory sync finished"
        );
        Ok(report)
    }

    fn apply_snapshot(
        &self,
        snapshot: &Snapshot,
        mode: SyncMode,
        policy: SyncPolicy,
        report: &mut SyncReport,
    ) {
        report.seen = snapshot.users.len();
        if mode == SyncMode::Full && snapshot.users.is_empty() {
            report.aborted = Some("the directory returned no users; nothing changed".into());
            return;
        }
        let synced_users = match self.synced_users() {
            Ok(users) => users,
            Err(error) => {
                report.aborted = Some(format!("cannot read the synced accounts: {error}"));
                return;
            }
        };
        let missing = if mode == SyncMode::Full && policy.deactivate_missing {
            missing_users(&synced_users, snapshot)
        } else {
            Vec::new()
        };
        let synced = synced_users.len();
        if !missing.is_empty() && missing.len() as f64 > policy.max_missing_ratio * synced as f64 {
            report.aborted = Some(format!(
                "{} of {synced} directory accounts are missing, more than ldap.max_missing_ratio = {}; nothing changed",
                missing.len(),
                policy.max_missing_ratio
            ));
            return;
        }
        for batch in snapshot.users.chunks(SYNC_BATCH) {
            if let Err(error) = self.apply_batch(batch, report) {
                report.errors.push(error.to_string());
            }
        }
        if mode == SyncMode::Incremental {
            self.refresh_memberships(&synced_users, snapshot, report);
        }
        for batch in missing.chunks(SYNC_BATCH) {
            match self.deactivate_missing(batch) {
                Ok(count) => report.deactivated += count,
                Err(error) => report.errors.push(error.to_string()),
            }
        }
        let _ = self.write(None, |unit| unit.audit(AuditAction::LdapSync, None, json!({ "mode": mode, "created": report.created,
            "updated": report.updated, "deactivated": report.deactivated, "reactivated": report.reactivated })));
    }

    /// Every account that follows the directory, as last committed.
    fn synced_users(&self) -> ServiceResult<Vec<User>> {
        let snapshot = self.snapshot();
        let mut users = Vec::new();
        for entry in self.index.entries() {
            if entry.user_type != UserType::Ldap || entry.is_archived() {
                continue;
            }
            if let Some(user) = snapshot.user(entry.id)?.filter(is_synced) {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Applies a batch of entries in one transaction; a bad entry is skipped and reported.
    fn apply_batch(&self, batch: &[DirectoryUser], report: &mut SyncReport) -> ServiceResult<()> {
        let (counts, problems) = self.write(None, |unit| {
            let mut counts = SyncReport::default();
            let mut problems = Vec::new();
            for entry in batch {
                let existing = unit.tx_user_id(&entry.login)?;
                match Self::apply_entry(unit, existing, entry, &mut counts) {
                    Ok(_) => {}
                    Err(ServiceError::Conflict { message, .. }) => problems.push(message),
                    Err(other) => return Err(other),
                }
            }
            Ok((counts, problems))
        })?;
        report.created += counts.created;
        report.updated += counts.updated;
        report.unchanged += counts.unchanged;
        report.reactivated += counts.reactivated;
        report.skipped += problems.len();
        report.errors.extend(problems);
        Ok(())
    }

    /// Incremental runs: recompute automatic groups of every synced user from
    /// the fresh memberships (group changes do not touch user entries).
    fn refresh_memberships(&self, synced: &[User], snapshot: &Snapshot, report: &mut SyncReport) {
        let stale: Vec<(UserId, BTreeSet<String>)> = synced
            .iter()
            .filter_map(|u| {
                let dn = fold(&u.directory.as_ref()?.dn);
                let groups = snapshot.memberships.get(&dn).cloned().unwrap_or_default();
                (groups != u.automatic_groups).then_some((u.id, groups))
            })
            .collect();
        let outcome = self.write(None, |unit| {
            for (id, groups) in &stale {
                super::Groups::ensure_automatic(unit, groups)?;
                let mut user = unit.user(*id)?;
                user.automatic_groups = groups.clone();
                user.updated_at = unit.now;
                unit.save(&user)?;
            }
            Ok(stale.len())
        });
        match outcome {
            Ok(count) => report.updated += count,
            Err(error) => report.errors.push(error.to_string()),
        }
    }

    fn deactivate_missing(&self, ids: &[UserId]) -> ServiceResult<usize> {
        self.write(None, |unit| {
            let mut count = 0;
            for id in ids {
                let before = unit.user(*id)?;
                let mut user = before.clone();
                if mark_missing(&mut user, unit.now) {
                    if Accounts::guard_admin_rules(unit, &before, Some(&user)).is_err() {
                        tracing::warn!(
                            user_id = id,
                            "directory sync keeps the last active admin active"
                        );
                        continue;
                    }
                    Accounts::revoke_all_tokens(unit, *id)?;
                    unit.save(&user)?;
                    unit.audit(AuditAction::LdapDeactivateMissing, Some(*id), json!({}))?;
                    count += 1;
                }
            }
            Ok(count)
        })
    }
}

/// Synced users whose login the (full) snapshot no longer has.
fn missing_users(synced: &[User], snapshot: &Snapshot) -> Vec<UserId> {
    let present: HashSet<String> = snapshot.users.iter().map(|u| fold(&u.login)).collect();
    synced
        .iter()
        .filter(|u| {
            u.login
                .as_ref()
                .is_some_and(|l| !present.contains(&l.key()))
        })
        .map(|u| u.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::SystemRole;
    use crate::domain::user::{Status, UserType};

    /// A store as an older version could leave it: root without the admin
    /// role, two directory admins. One sync batch finds both gone: the check
    /// inside the unit of work sees the first deactivation when it comes to
    /// the second, so exactly one admin stays active.
    #[test]
    fn one_batch_cannot_deactivate_the_last_two_admins() {
        let (_dir, directory) = crate::service::test_directory();
        let sync = &directory.sync;
        let admins = sync.write(None, |unit| {
            let mut root = unit.user(1)?;
            root.system_roles.clear();
            unit.save(&root)?;
            let mut ids = Vec::new();
            for login in ["cy", "di"] {
                let mut user = User::new(
                    unit.tx.next_id("user")?,
                    UserType::Ldap,
                    Status::Active,
                    unit.now,
                );
                user.login = crate::domain::names::Login::parse(login).ok();
                user.system_roles.insert(SystemRole::Admin);
                unit.save(&user)?;
                ids.push(user.id);
            }
            Ok(ids)
        });
        let Ok(admins) = admins else { panic!("seeded") };
        assert_eq!(sync.deactivate_missing(&admins).ok(), Some(1));
        let active: Vec<UserId> = admins
            .iter()
            .filter(|id| sync.current_user(**id).is_ok_and(|u| u.is_active_admin()))
            .copied()
            .collect();
        assert_eq!(active.len(), 1, "{active:?}");
    }
}
