//! What every area service shares: the store, the user index, the clock,
//! password hashing and policy, and settings; and the one way to change
//! anything, [`Core::write`]: a unit of work that commits, refreshes the
//! index, and returns once the change is on disk.

use super::error::{ServiceError, ServiceResult};
use super::index::UserIndex;
use super::mail::Outbox;
use super::passwords::PasswordHasher;
use super::secrets::SecretSealer;
use crate::config::{Config, OnDelete};
use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::clock::{Clock, Timestamp};
use crate::domain::credentials::TokenKind;
use crate::domain::ftp::granted_by_group;
use crate::domain::password::PasswordPolicy;
use crate::domain::totp;
use crate::domain::user::{User, UserId};
use crate::store::{Commit, Snapshot, Store, UnitOfWork};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings the use cases read, taken from the config once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the store and the sealing key live.
    pub data_dir: PathBuf,
    pub public_url: String,
    pub registration_enabled: bool,
    pub on_delete: OnDelete,
    pub activation_ttl: Duration,
    pub password_reset_ttl: Duration,
    pub email_confirmation_ttl: Duration,
    pub session_ttl: Duration,
    pub ftp: FtpSettings,
    /// Record attributes replaced when their owner is masked.
    pub masked_record_attributes: Vec<String>,
    /// What the permission rule takes from the config.
    pub rules: crate::domain::permissions::Rules,
    pub media: MediaSettings,
}

/// Limits of thumbnails and pictures.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    pub thumbnail_max_px: u32,
    pub picture_max_px: u32,
    pub picture_max_bytes: u64,
    /// What any image read must meet before it is decoded.
    pub source: crate::media::ImageLimits,
}

/// What the FTP use cases need from the config.
#[derive(Debug, Clone)]
pub struct FtpSettings {
    pub root: PathBuf,
    pub layout: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub default_quota_mb: Option<u64>,
    pub default_quota_files: Option<u64>,
}

impl FtpSettings {
    /// Whether `user` may use FTP: an FTP account, or an allowed group.
    pub fn grants_access(&self, user: &User) -> bool {
        user.ftp.enabled || granted_by_group(user, &self.allowed_groups)
    }
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            data_dir: config.data_dir.clone(),
            public_url: config.http.public_url.trim_end_matches('/').to_owned(),
            registration_enabled: config.registration.enabled,
            on_delete: config.accounts.on_delete,
            activation_ttl: config.tokens.activation_ttl,
            password_reset_ttl: config.tokens.password_reset_ttl,
            email_confirmation_ttl: config.tokens.email_confirmation_ttl,
            session_ttl: config.tokens.session_ttl,
            ftp: FtpSettings {
                root: config.ftp.root_dir(&config.data_dir),
                layout: config.ftp.layout.clone(),
                allowed_groups: config.ftp.allowed_groups.clone(),
                default_quota_mb: config.ftp.default_quota_mb,
                default_quota_files: config.ftp.default_quota_files,
            },
            masked_record_attributes: config.masking.record_attributes.clone(),
            rules: crate::domain::permissions::Rules {
                organization_required: config.organizations.required_for_editing,
            },
            media: MediaSettings {
                thumbnail_max_px: config.thumbnails.max_px.max(1),
                picture_max_px: config.pictures.max_px.max(1),
                picture_max_bytes: config.pictures.max_mb.saturating_mul(1 << 20),
                source: crate::media::ImageLimits {
                    max_bytes: config.thumbnails.max_source_mb.saturating_mul(1 << 20),
                    max_pixels: config
                        .thumbnails
                        .max_source_megapixels
                        .saturating_mul(1_000_000),
                },
            },
        }
    }
}

impl Settings {
    /// The link a mailed or shown token opens: `<public_url>/<page>?token=...`.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?token={token}", self.public_url)
    }

    /// How long a token of `kind` lives; `None` for API tokens.
    pub fn token_lifetime(&self, kind: TokenKind) -> Option<Duration> {
        match kind {
            TokenKind::Activation => Some(self.activation_ttl),
            TokenKind::PasswordReset => Some(self.password_reset_ttl),
            TokenKind::EmailConfirmation => Some(self.email_confirmation_ttl),
            TokenKind::Session => Some(self.session_ttl),
            TokenKind::Api => None,
        }
    }
}

/// The shared part of every area service.
pub struct Core {
    store: Arc<dyn Store>,
    pub index: Arc<UserIndex>,
    /// Held from a unit of work's start until the index shows its commit, so
    /// every unit sees an index that is exact (the store serialises writers
    /// anyway; readers never take this lock).
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub settings: Settings,
    /// Seals TOTP seeds and mailed links at rest.
    pub sealer: SecretSealer,
    /// Queues mail from units of work and wakes the sender.
    pub(crate) outbox: Outbox,
    /// Background jobs and their progress.
    pub jobs: super::jobs::Jobs,
}

/// One unit of work in progress: the store transaction, the user index as
/// published before it, who acts, and which users it touched (to refresh the index).
pub(crate) struct Unit<'a> {
    pub tx: &'a dyn UnitOfWork,
    pub index: &'a UserIndex,
    pub actor: Option<UserId>,
    pub now: Timestamp,
    pub(in crate::service) core: &'a Core,
    touched: RefCell<Vec<UserId>>,
    /// Whether this unit queued mail (the sender is woken after the commit).
    pub(in crate::service) mailed: Cell<bool>,
}

impl Unit<'_> {
    /// Loads a user inside the transaction, or fails with not found.
    pub fn user(&self, id: UserId) -> ServiceResult<User> {
        self.tx.user(id)?.ok_or(ServiceError::NotFound("user"))
    }

    /// Writes a user (indexes checked) and marks it for the user index. The
    /// version rises when anything but activity (last sign-in, FTP usage) changed.
    pub fn save(&self, user: &User) -> ServiceResult<()> {
        let stored = self.tx.user(user.id)?;
        let mut user = user.clone();
        user.version = match &stored {
            Some(stored) if !user.differs_beyond_activity(stored) => stored.version,
            Some(stored) => stored.version + 1,
            None => 1,
        };
        self.tx.put_user(&user)?;
        self.touched.borrow_mut().push(user.id);
        Ok(())
    }

    /// The id holding `login` (case-insensitive), read inside the transaction.
    pub fn tx_user_id(&self, login: &str) -> ServiceResult<Option<UserId>> {
        Ok(self.tx.user_id_by_login(login)?)
    }

    /// Removes a user and its credentials.
    pub fn remove(&self, user: &User) -> ServiceResult<()> {
        self.tx.remove_user(user)?;
        self.touched.borrow_mut().push(user.id);
        Ok(())
    }

    /// Records an audit entry for this unit's actor.
    pub fn audit(
        &self,
        action: AuditAction,
        target: Option<UserId>,
        details: serde_json::Value,
    ) -> ServiceResult<()> {
        let entry = AuditEntry {
            id: 0,
            at: self.now,
            actor: self.actor,
            action,
            target,
            details,
        };
        Ok(self.tx.append_audit(entry)?)
    }
}

thread_local! {
    /// Inside [`Directory::durably`]: the newest commit not yet waited for.
    static DEFERRED: Cell<Option<Commit>> = const { Cell::new(None) };
}

/// Runs blocking work (store commits, fsync, file-system scans) without
/// stalling the async workers: on a multi-threaded runtime the worker hands
/// its other tasks to another thread first.
pub(crate) fn offload<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Declares an area service: a struct holding the shared [`Core`] (reached
/// through `Deref`) plus state of its own, built with `new`.
macro_rules! area_service {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        pub struct $name {
            core: std::sync::Arc<$crate::service::core::Core>,
            $($(#[$field_meta])* $field: $ty,)*
        }

        impl $name {
            pub(crate) fn new(core: std::sync::Arc<$crate::service::core::Core>, $($field: $ty),*) -> Self {
                Self { core, $($field),* }
            }
        }

        impl std::ops::Deref for $name {
            type Target = $crate::service::core::Core;

            fn deref(&self) -> &Self::Target {
                &self.core
            }
        }
    };
}
pub(crate) use area_service;

impl Core {
    pub fn open(
        store: Arc<dyn Store>,
        config: &Config,
        clock: Arc<dyn Clock>,
        sealer: SecretSealer,
    ) -> ServiceResult<Self> {
        let index = Arc::new(UserIndex::load(&*store.snapshot())?);
        index.follow(&store);
        Ok(Self {
            index,
            store,
            writer: Mutex::new(()),
            clock,
            hasher: PasswordHasher::new(config.passwords.hash_concurrency)?,
            policy: PasswordPolicy {
                min_length: config.passwords.min_length,
                max_length: config.passwords.max_length,
            },
            settings: Settings::from_config(config),
            sealer,
            outbox: Outbox::new(config.mail.enabled(), &config.http.public_url),
            jobs: super::jobs::Jobs::default(),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Writes everything committed to disk (called at shutdown).
    pub fn flush(&self) -> ServiceResult<()> {
        Ok(offload(|| self.store.flush())?)
    }

    /// The store itself (backups and checks read it whole).
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Bytes the store takes on disk.
    pub fn store_size(&self) -> ServiceResult<u64> {
        Ok(self.store.size_on_disk()?)
    }

    /// The last committed state of the store; never waits for a writer.
    pub fn snapshot(&self) -> Snapshot {
        self.store.snapshot()
    }

    /// A user as last committed.
    pub fn current_user(&self, id: UserId) -> ServiceResult<Arc<User>> {
        self.snapshot()
            .user(id)?
            .map(Arc::new)
            .ok_or(ServiceError::NotFound("user"))
    }

    /// Runs `change` as one unit of work on behalf of `actor`, refreshes the
    /// user index with the users it touched, and returns once the change is on
    /// disk (or, inside [`Directory::durably`], once the batch is).
    pub(crate) fn write<T>(
        &self,
        actor: Option<UserId>,
        change: impl Fn(&Unit) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        offload(|| {
            let writer = self
                .writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = self.clock.now();
            let ((value, touched, mailed), commit) = self.store.write(|tx| {
                let unit = Unit {
                    tx,
                    index: &self.index,
                    actor,
                    now,
                    core: self,
                    touched: RefCell::new(Vec::new()),
                    mailed: Cell::new(false),
                };
                let value = change(&unit)?;
                Ok::<_, ServiceError>((value, unit.touched.into_inner(), unit.mailed.get()))
            })?;
            self.index.refresh(&touched, &*self.store)?;
            drop(writer);
            if mailed {
                // The sender flushes the store before it sends anything, so
                // no mail leaves for a change that is not yet on disk.
                self.outbox.wake.notify_one();
            }
            match DEFERRED.get() {
                Some(pending) => DEFERRED.set(Some(pending.max(commit))),
                None => self.store.wait_durable(commit)?,
            }
            Ok(value)
        })
    }

    /// [`Core::write`] on behalf of `actor` as authenticated for this request:
    /// the unit re-reads the actor and refuses to act when their roles or
    /// status changed since, so no decision rests on stale rights.
    pub(crate) fn write_as<T>(
        &self,
        actor: &User,
        change: impl Fn(&Unit) -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        self.write(Some(actor.id), |unit| {
            let current = unit.user(actor.id)?;
            let changed = current.system_roles != actor.system_roles
                || current.status != actor.status
                || current.archived_at != actor.archived_at;
            if changed {
                return Err(ServiceError::conflict(
                    "actor_changed",
                    "your roles or status changed while this request ran; try again",
                ));
            }
            change(unit)
        })
    }

    /// Runs `batch` (many units of work) and waits once, at its end, until all
    /// of them are on disk: one flush for the batch instead of one per unit.
    /// Nothing in the batch is reported before this returns.
    pub(crate) fn durably<T>(&self, batch: impl FnOnce() -> T) -> ServiceResult<T> {
        /// Puts the outer deferral back however the batch ends (a panic too),
        /// so no later write on this thread skips its durability wait.
        struct Restore(Option<Option<Commit>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(outer) = self.0.take() {
                    DEFERRED.set(outer);
                }
            }
        }
        offload(|| {
            let mut restore = Restore(Some(DEFERRED.replace(Some(Commit::default()))));
            let value = batch();
            let outer = restore.0.take().unwrap_or_default();
            let pending = DEFERRED.replace(outer).unwrap_or_default();
            match outer {
                Some(outer) => DEFERRED.set(Some(outer.max(pending))),
                None => self.store.wait_durable(pending)?,
            }
            Ok(value)
        })
    }

    /// The audit trail, newest first, from `before` on.
    pub fn audit_page(&self, before: Option<u64>, limit: usize) -> ServiceResult<Vec<AuditEntry>> {
        Ok(self.store.audit_page(before, limit)?)
    }

    /// The time step of `code` when it is a valid TOTP for the sealed seed
    /// `sealed` at `now` (whether that step is still unused is the caller's).
    pub fn totp_step(
        &self,
        sealed: &str,
        code: Option<&str>,
        now: Timestamp,
    ) -> ServiceResult<Option<i64>> {
        let Some(code) = code else { return Ok(None) };
        let seed = self.sealer.open(sealed)?;
        let Ok(seed) = data_encoding::BASE32_NOPAD.decode(seed.as_bytes()) else {
            return Ok(None);
        };
        Ok(totp::matching_step(&seed, code, now.timestamp()))
    }

    /// Checks `password` against the policy for `user`, unless overridden.
    pub fn check_password(
        &self,
        user: &User,
        password: &str,
        override_policy: bool,
    ) -> ServiceResult<()> {
        if override_policy {
            return Ok(self.policy.check_overridden(password)?);
        }
        let identities: Vec<&str> = [
            user.login.as_ref().map(|l| l.as_str()),
            user.email.as_ref().map(|e| e.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(self.policy.check(password, &identities)?)
    }
}
