//! Use cases: the one API every transport (HTTP, CLI, later FTP and LDAP) calls.
//! Each use case loads, checks the domain rule, and writes in one store
//! transaction together with its audit record.

mod account;
mod actions;
mod audit;
mod bootstrap;
mod error;
pub mod external;
mod ftp;
mod groups;
pub mod index;
mod lifecycle;
mod passwords;
pub mod projects;
mod signin;
mod throttle;
mod tokens;
mod users;

pub use actions::{ActionOutcome, BulkAction};
pub use error::{ServiceError, ServiceResult};
pub use passwords::{PasswordHasher, hash_blocking, verify_blocking};
pub use signin::{LoginRequest, Principal, Session};
pub use tokens::IssuedToken;
pub use twofactor::Enrolment;

mod twofactor;

use crate::config::{Config, OnDelete};
use crate::domain::audit::{AuditAction, AuditEntry};
use crate::domain::clock::{Clock, Timestamp};
use crate::domain::password::PasswordPolicy;
use crate::domain::user::{User, UserId};
use crate::store::{Commit, Snapshot, Store, UnitOfWork};
use index::UserIndex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use throttle::SignInThrottle;

/// Settings the use cases read, taken from the config once.
#[derive(Debug, Clone)]
pub struct Settings {
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
}

/// What the FTP use cases need from the config.
#[derive(Debug, Clone)]
pub struct FtpSettings {
    pub root: PathBuf,
    pub layout: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub default_quota_mb: Option<u64>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
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
            },
            masked_record_attributes: config.masking.record_attributes.clone(),
        }
    }
}

/// The account directory: store, user index, hashing, clock and rules together.
pub struct Directory {
    store: Arc<dyn Store>,
    index: UserIndex,
    /// Held from a unit of work's start until the index shows its commit, so
    /// every unit sees an index that is exact (the store serialises writers
    /// anyway; readers never take this lock).
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    settings: Settings,
    throttle: SignInThrottle,
    /// Bytes of FTP uploads in progress per user, not yet in the stored usage.
    ftp_in_flight: Mutex<HashMap<UserId, u64>>,
    /// The external directory (LDAP) and its sync policy, when configured.
    external: OnceLock<(Arc<dyn external::ExternalDirectory>, external::SyncPolicy)>,
    sync_status: Mutex<external::SyncStatus>,
}

/// One unit of work in progress: the store transaction, the user index as
/// published before it, who acts, and which users it touched (to refresh the index).
pub(crate) struct Unit<'a> {
    pub tx: &'a dyn UnitOfWork,
    pub index: &'a UserIndex,
    pub actor: Option<UserId>,
    pub now: Timestamp,
    touched: RefCell<Vec<UserId>>,
}

impl Unit<'_> {
    /// Loads a user inside the transaction, or fails with not found.
    pub fn user(&self, id: UserId) -> ServiceResult<User> {
        self.tx.user(id)?.ok_or(ServiceError::NotFound("user"))
    }

    /// Writes a user (indexes checked) and marks it for the user index.
    pub fn save(&self, user: &User) -> ServiceResult<()> {
        self.tx.put_user(user)?;
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

impl Directory {
    /// Opens the directory over `store`, loads the user index and makes sure the
    /// system users exist. Returns the root token when this was the first start.
    pub fn open(
        store: Arc<dyn Store>,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> ServiceResult<(Self, Option<String>)> {
        let index = UserIndex::load(&store.snapshot().users()?);
        let directory = Self {
            store,
            index,
            writer: Mutex::new(()),
            clock,
            hasher: PasswordHasher::new(config.passwords.hash_concurrency)?,
            policy: PasswordPolicy {
                min_length: config.passwords.min_length,
                max_length: config.passwords.max_length,
            },
            settings: Settings::from_config(config),
            throttle: SignInThrottle::new(&config.signin),
            ftp_in_flight: Mutex::new(HashMap::new()),
            external: OnceLock::new(),
            sync_status: Mutex::new(external::SyncStatus::default()),
        };
        let root_token = directory.bootstrap()?;
        Ok((directory, root_token))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Writes everything committed to disk (called at shutdown).
    pub fn flush(&self) -> ServiceResult<()> {
        Ok(offload(|| self.store.flush())?)
    }

    /// The last committed state of the store; never waits for a writer.
    fn snapshot(&self) -> Snapshot {
        self.store.snapshot()
    }

    /// A user as last committed.
    fn current_user(&self, id: UserId) -> ServiceResult<Arc<User>> {
        self.snapshot()
            .user(id)?
            .map(Arc::new)
            .ok_or(ServiceError::NotFound("user"))
    }

    /// Runs `change` as one unit of work on behalf of `actor`, refreshes the
    /// user index with the users it touched, and returns once the change is on
    /// disk (or, inside [`Directory::durably`], once the batch is).
    fn write<T>(
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
            let ((value, touched), commit) = self.store.write(|tx| {
                let unit = Unit {
                    tx,
                    index: &self.index,
                    actor,
                    now,
                    touched: RefCell::new(Vec::new()),
                };
                let value = change(&unit)?;
                Ok::<_, ServiceError>((value, unit.touched.into_inner()))
            })?;
            self.index.refresh(&touched, &*self.snapshot())?;
            drop(writer);
            match DEFERRED.get() {
                Some(pending) => DEFERRED.set(Some(pending.max(commit))),
                None => self.store.wait_durable(commit)?,
            }
            Ok(value)
        })
    }

    /// Runs `batch` (many units of work) and waits once, at its end, until all
    /// of them are on disk: one flush for the batch instead of one per unit.
    /// Nothing in the batch is reported before this returns.
    fn durably<T>(&self, batch: impl FnOnce() -> T) -> ServiceResult<T> {
        offload(|| {
            let outer = DEFERRED.replace(Some(Commit::default()));
            let value = batch();
            let pending = DEFERRED.replace(outer).unwrap_or_default();
            match outer {
                Some(outer) => DEFERRED.set(Some(outer.max(pending))),
                None => self.store.wait_durable(pending)?,
            }
            Ok(value)
        })
    }
}
