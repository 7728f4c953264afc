//! FTP accounts and their usage: creating and deleting accounts with their home
//! directories, the FTPS sign-in, quota reservations while bytes flow, usage
//! records after each change, and rescans from disk.

use super::core::{area_service, offload};
use super::signin::Door;
use super::signin::SignIn;
use super::{Principal, ServiceError, ServiceResult};
use crate::domain::audit::AuditAction;
use crate::domain::ftp::{FtpAccount, home_dir_name, is_home_in};
use crate::domain::roles;
use crate::domain::signin::check_account;
use crate::domain::user::{Status, User, UserId};
use serde_json::json;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

/// Quota held by uploads in progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct Held {
    bytes: u64,
    files: u64,
}

/// Which quota a reservation would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    Bytes,
    Files,
}

area_service!(
    /// FTP accounts: homes, quotas and their accounting, FTP sign-in.
    FtpAccounts {
        /// Bytes and files of uploads in progress per user, not yet in the stored usage.
        in_flight: std::sync::Mutex<std::collections::HashMap<UserId, Held>>,
        signin: std::sync::Arc<SignIn>,
    }
);

impl QuotaRefusal {
    /// Counts the refusal in the metrics.
    fn count(self) {
        crate::telemetry::quota_refusal(match self {
            Self::Bytes => "bytes",
            Self::Files => "files",
        });
    }
}

/// [`FtpAccounts::ftp_reserve`] through the store's shared holds; a store
/// that cannot be asked refuses (an upload never passes the quota unseen).
fn shared_reserve(
    holds: &dyn crate::store::shared::QuotaHolds,
    id: UserId,
    bytes: u64,
    files: u64,
) -> Result<(), QuotaRefusal> {
    let mut refusal = None;
    let held = offload(|| {
        holds.hold(id, bytes, files, &mut |view, held_bytes, held_files| {
            refusal = match view.user(id) {
                Ok(Some(user)) if !user.ftp.allows(held_bytes, bytes) => Some(QuotaRefusal::Bytes),
                Ok(Some(user)) if !user.ftp.allows_files(held_files, files) => {
                    Some(QuotaRefusal::Files)
                }
                Ok(Some(_)) => None,
                _ => Some(QuotaRefusal::Bytes),
            };
            refusal.is_none()
        })
    });
    match held {
        Ok(true) => Ok(()),
        Ok(false) => {
            let refusal = refusal.unwrap_or(QuotaRefusal::Bytes);
            refusal.count();
            Err(refusal)
        }
        Err(error) => {
            tracing::error!(%error, user = id, "the store cannot hold an upload's quota");
            Err(QuotaRefusal::Bytes)
        }
    }
}

/// Where `user`'s FTP home is (or would be).
pub(crate) fn home_of(settings: &super::core::FtpSettings, user: &User) -> PathBuf {
    match &user.ftp.home {
        Some(home) => PathBuf::from(home),
        None => settings.root.join(home_dir_name(user)),
    }
}

impl FtpAccounts {
    /// Whether `user` may sign in over FTPS: an account, or an allowed group.
    fn home_for(&self, user: &User) -> PathBuf {
        home_of(&self.settings.ftp, user)
    }

    /// Creates `home` and the configured layout inside it.
    fn make_home(&self, home: &Path) -> ServiceResult<()> {
        let io = || ServiceError::io("create the FTP home", home);
        std::fs::create_dir_all(home).map_err(io())?;
        for entry in &self.settings.ftp.layout {
            std::fs::create_dir_all(home.join(entry)).map_err(io())?;
        }
        Ok(())
    }

    /// Gives user `id` an FTP account with `quota_mb` and `quota_files` (None:
    /// no limit) and a home with the configured layout; `activate` also
    /// activates a pending or deactivated account.
    pub fn create_ftp_account(
        &self,
        principal: &Principal,
        id: UserId,
        quota_mb: Option<u64>,
        quota_files: Option<u64>,
        activate: bool,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        let user = self.current_user(id)?;
        roles::may_manage_user(actor, &user)?;
        if user.is_system() || user.masked_at.is_some() || user.is_archived() {
            return Err(ServiceError::conflict(
                "not_eligible",
                "system, masked and archived users get no FTP account",
            ));
        }
        let home = self.home_for(&user);
        offload(|| self.make_home(&home))?;
        self.write_as(actor, |unit| {
            let mut user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            if activate {
                user.status = Status::Active;
            }
            user.ftp.enabled = true;
            user.ftp.quota_mb = quota_mb;
            user.ftp.quota_files = quota_files;
            user.ftp.home = Some(home.to_string_lossy().into_owned());
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(
                AuditAction::FtpCreateAccount,
                Some(id),
                json!({ "quota_mb": quota_mb, "quota_files": quota_files, "activate": activate }),
            )
        })?;
        self.current_user(id)
    }

    /// Removes user `id`'s FTP account and its home directory with everything in it.
    pub fn delete_ftp_account(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        let home = self.write_as(actor, |unit| {
            let mut user = unit.user(id)?;
            roles::may_manage_user(actor, &user)?;
            let home = user.ftp.home.take();
            if !user.ftp.enabled && home.is_none() {
                return Err(ServiceError::NotFound("FTP account"));
            }
            user.ftp = FtpAccount::default();
            user.updated_at = unit.now;
            user.updated_by = Some(actor.id);
            unit.save(&user)?;
            unit.audit(AuditAction::FtpDeleteAccount, Some(id), json!({}))?;
            Ok(home)
        })?;
        if let Some(home) = home.filter(|home| is_home_in(&self.settings.ftp.root, Path::new(home)))
        {
            if let Err(error) = offload(|| std::fs::remove_dir_all(&home)) {
                tracing::warn!(user_id = id, %error, "could not remove FTP home {home}");
            }
        }
        self.current_user(id)
    }

    /// Recomputes user `id`'s usage from the files in their home.
    pub fn rescan_ftp(&self, principal: &Principal, id: UserId) -> ServiceResult<Arc<User>> {
        let actor = principal.unrestricted()?;
        roles::may_manage_user(actor, &*self.current_user(id)?)?;
        self.rescan_ftp_usage(Some(actor.id), id)
    }

    /// Rescans every FTP account (for the CLI); returns how many were scanned.
    pub fn rescan_all_ftp(&self) -> ServiceResult<usize> {
        let ids: Vec<UserId> = self
            .snapshot()
            .users()?
            .iter()
            .filter(|u| u.ftp.home.is_some())
            .map(|u| u.id)
            .collect();
        for id in &ids {
            self.rescan_ftp_usage(None, *id)?;
        }
        Ok(ids.len())
    }

    fn rescan_ftp_usage(&self, actor: Option<UserId>, id: UserId) -> ServiceResult<Arc<User>> {
        let user = self.current_user(id)?;
        let home = user
            .ftp
            .home
            .clone()
            .ok_or(ServiceError::NotFound("FTP account"))?;
        let (bytes, files) = offload(|| disk_usage(Path::new(&home)))
            .map_err(ServiceError::io("scan the FTP home", &home))?;
        self.write(actor, |unit| {
            let mut user = unit.user(id)?;
            user.ftp.used_bytes = bytes;
            user.ftp.used_files = files;
            unit.save(&user)?;
            unit.audit(
                AuditAction::FtpRescan,
                Some(id),
                json!({ "used_bytes": bytes, "used_files": files }),
            )
        })?;
        self.current_user(id)
    }

    /// FTPS sign-in: the common sign-in rules plus an FTP account. Members of an
    /// allowed group get their account (and home) on first sign-in.
    pub async fn ftp_sign_in(
        &self,
        login: &str,
        password: String,
        client: IpAddr,
    ) -> ServiceResult<Arc<User>> {
        let user = self
            .signin
            .check_sign_in(login, password, Door::Ftp, client)
            .await?;
        let provision = !user.ftp.enabled;
        let home = self.home_for(&user);
        if provision || !home.is_dir() {
            offload(|| self.make_home(&home))?;
        }
        let default_quota = self.settings.ftp.default_quota_mb;
        let default_files = self.settings.ftp.default_quota_files;
        self.write(Some(user.id), |unit| {
            let mut user = unit.user(user.id)?;
            if provision {
                user.ftp = FtpAccount {
                    enabled: true,
                    quota_mb: default_quota,
                    quota_files: default_files,
                    home: Some(home.to_string_lossy().into_owned()),
                    ..FtpAccount::default()
                };
                unit.audit(
                    AuditAction::FtpCreateAccount,
                    Some(user.id),
                    json!({ "quota_mb": default_quota, "via": "allowed_groups" }),
                )?;
            }
            user.last_active_at = Some(unit.now);
            unit.save(&user)
        })?;
        self.current_user(user.id)
    }

    /// Whether user `id` may still use an FTP session they opened with the
    /// password whose stored hash was `signed_in_with`: the sign-in rules of
    /// the FTP door still pass, and the password is unchanged.
    pub fn ftp_session_allowed(&self, id: UserId, signed_in_with: Option<&str>) -> bool {
        let snapshot = self.snapshot();
        let Ok(Some(user)) = snapshot.user(id) else {
            return false;
        };
        let password = snapshot.credentials(id).map(|c| c.password_hash);
        check_account(&user, self.now()).is_ok()
            && Door::Ftp.refusal(&self.settings.ftp, &user).is_none()
            && password.is_ok_and(|hash| hash.as_deref() == signed_in_with)
    }

    /// The stored password hash of user `id` (a session signed in against
    /// another one is over).
    pub fn ftp_password_stamp(&self, id: UserId) -> Option<String> {
        self.snapshot()
            .credentials(id)
            .ok()
            .and_then(|c| c.password_hash)
    }

    /// The name and home directory of an FTP account.
    pub fn ftp_home(&self, id: UserId) -> ServiceResult<(String, PathBuf)> {
        let user = self.current_user(id)?;
        let home = user
            .ftp
            .home
            .clone()
            .ok_or(ServiceError::NotFound("FTP account"))?;
        Ok((user.effective_display_name(), PathBuf::from(home)))
    }

    fn in_flight(&self) -> MutexGuard<'_, std::collections::HashMap<UserId, Held>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves `bytes` and `files` of user `id`'s quota for an upload in
    /// progress, or says which quota they would pass (stored usage plus every
    /// upload in flight). The stored usage is read under the reservation lock:
    /// an upload that finished records its usage before it releases its
    /// reservation, so its bytes are counted at least once, never missed.
    ///
    /// On a store several daemons share, the reservation is held in the store
    /// instead, checked against every daemon's uploads.
    pub fn ftp_reserve(&self, id: UserId, bytes: u64, files: u64) -> Result<(), QuotaRefusal> {
        if let Some(holds) = self.store().quota_holds() {
            // Nothing to hold against for a user without a quota.
            let unlimited = self.snapshot().user(id).ok().flatten().is_some_and(|user| {
                user.ftp.quota_bytes().is_none() && user.ftp.quota_files.is_none()
            });
            return match unlimited {
                true => Ok(()),
                false => shared_reserve(&*holds, id, bytes, files),
            };
        }
        let mut in_flight = self.in_flight();
        let Ok(Some(user)) = self.snapshot().user(id) else {
            return Err(QuotaRefusal::Bytes);
        };
        let held = in_flight.entry(id).or_default();
        let refusal = if !user.ftp.allows(held.bytes, bytes) {
            Some(QuotaRefusal::Bytes)
        } else if !user.ftp.allows_files(held.files, files) {
            Some(QuotaRefusal::Files)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            if held.bytes == 0 && held.files == 0 {
                in_flight.remove(&id);
            }
            refusal.count();
            return Err(refusal);
        }
        held.bytes += bytes;
        held.files += files;
        Ok(())
    }

    /// Returns a reservation once its bytes are recorded or abandoned.
    pub fn ftp_release(&self, id: UserId, bytes: u64, files: u64) {
        if let Some(holds) = self.store().quota_holds() {
            if let Err(error) = offload(|| holds.release(id, bytes, files)) {
                tracing::error!(%error, user = id, "an upload's quota hold cannot be given back");
            }
            return;
        }
        let mut in_flight = self.in_flight();
        if let Some(held) = in_flight.get_mut(&id) {
            held.bytes = held.bytes.saturating_sub(bytes);
            held.files = held.files.saturating_sub(files);
            if held.bytes == 0 && held.files == 0 {
                in_flight.remove(&id);
            }
        }
    }

    /// Moves homes still named by login (before homes were named by user id)
    /// to `<root>/<id>`. Safe to repeat after a crash: a home already moved
    /// only has its record updated. Returns how many were moved.
    pub fn rename_homes_to_ids(&self) -> ServiceResult<usize> {
        let root = self.settings.ftp.root.clone();
        let stale: Vec<(UserId, PathBuf)> = self
            .snapshot()
            .users()?
            .iter()
            .filter_map(|u| Some((u.id, PathBuf::from(u.ftp.home.as_ref()?))))
            .filter(|(id, home)| {
                is_home_in(&root, home) && home.file_name() != Some(id.to_string().as_ref())
            })
            .collect();
        for (id, old) in &stale {
            let new = root.join(id.to_string());
            if old.is_dir() && !new.exists() {
                offload(|| std::fs::rename(old, &new))
                    .map_err(ServiceError::io("rename the FTP home", old))?;
            }
            let home = new.to_string_lossy().into_owned();
            self.write(None, |unit| {
                let mut user = unit.user(*id)?;
                user.ftp.home = Some(home.clone());
                unit.save(&user)
            })?;
        }
        Ok(stale.len())
    }

    /// Records a change of user `id`'s FTP usage atomically in the store.
    pub fn ftp_record(&self, id: UserId, bytes: i64, files: i64) -> ServiceResult<()> {
        if bytes == 0 && files == 0 {
            return Ok(());
        }
        self.write(Some(id), |unit| {
            let mut user = unit.user(id)?;
            user.ftp.record(bytes, files);
            unit.save(&user)
        })
    }
}

/// Total bytes and number of regular files under `dir`, not following symlinks.
fn disk_usage(dir: &Path) -> std::io::Result<(u64, u64)> {
    let mut totals = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let (bytes, files) = disk_usage(&entry.path())?;
            totals = (totals.0 + bytes, totals.1 + files);
        } else if kind.is_file() {
            totals = (totals.0 + entry.metadata()?.len(), totals.1 + 1);
        }
    }
    Ok(totals)
}
