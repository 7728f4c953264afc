//! Use cases, one service per area (accounts, credentials, sign-in, groups,
//! organizations, projects, records, FTP accounts, directory sync, audit),
//! all sharing one [`core::Core`]: the store seam, the user index and the unit
//! of work. Every transport (HTTP, FTPS, LDAP sync, CLI) calls these, so every
//! rule holds at every door. A use case loads, asks `domain::permissions` and
//! the domain rules, and writes in one unit of work with its audit record.

mod accounts;
mod actions;
mod audit;
mod backup;
mod bootstrap;
pub(crate) mod core;
mod credentials;
pub mod dashboard;
mod error;
pub mod exchange;
mod ftp;
mod groups;
pub mod hourly;
pub mod index;
pub mod jobs;
mod lifecycle;
pub mod mail;
pub mod organizations;
mod password_cache;
mod passwords;
mod pictures;
pub mod projects;
pub mod readiness;
pub mod records;
pub mod secrets;
mod signin;
mod sso;
pub mod sync;
pub mod throttle;
mod tokens;
mod twofactor;

pub use self::core::{FtpSettings, Settings};
pub use accounts::Accounts;
pub use actions::{ActionOutcome, BulkAction};
pub use audit::AuditTrail;
pub use credentials::Credentials;
pub use error::{ServiceError, ServiceResult};
pub use ftp::{FtpAccounts, QuotaRefusal};
pub use groups::Groups;
pub use mail::Mail;
pub use organizations::Organizations;
pub use passwords::{PasswordHasher, hash_blocking, verify_blocking};
pub use projects::Projects;
pub use records::Records;
pub use signin::{LoginRequest, Principal, Session, SignIn};
pub use sync::DirectorySync;
pub use tokens::IssuedToken;
pub use twofactor::Enrolment;

pub(crate) use self::core::Unit;

use self::core::Core;
use crate::config::Config;
use crate::domain::clock::{Clock, Timestamp};
use crate::store::Store;
use std::sync::{Arc, Mutex, OnceLock};
use throttle::SignInThrottle;

/// The account directory: every area service over one shared core.
pub struct Directory {
    core: Arc<Core>,
    pub accounts: Accounts,
    pub credentials: Credentials,
    pub signin: Arc<SignIn>,
    pub groups: Groups,
    pub organizations: Organizations,
    pub projects: Projects,
    pub records: Records,
    pub ftp: FtpAccounts,
    pub sync: Arc<DirectorySync>,
    pub audit: AuditTrail,
    pub exchange: exchange::UserExchange,
    pub mail: Mail,
    readiness_cache: readiness::ReadinessCache,
}

impl Directory {
    /// Whether this daemon runs the scheduled jobs now (see
    /// [`Store::leadership`]).
    pub fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.core.store().leadership()
    }

    /// Opens the directory over `store`, loads the user index and makes sure the
    /// system users exist. Returns the root token when this was the first start.
    pub fn open(
        store: Arc<dyn Store>,
        config: &Config,
        clock: Arc<dyn Clock>,
        sealer: secrets::SecretSealer,
    ) -> ServiceResult<(Self, Option<String>)> {
        let core = Arc::new(Core::open(store, config, clock, sealer)?);
        let sync = Arc::new(DirectorySync::new(
            core.clone(),
            OnceLock::new(),
            Mutex::new(sync::SyncStatus::default()),
        ));
        let signin = Arc::new(SignIn::new(
            core.clone(),
            SignInThrottle::new(&config.signin).shared_through(core.store().failure_ledger()),
            sync.clone(),
            password_cache::PasswordCache::new(config.signin.password_cache),
            hourly::HourlyCounts::default(),
        ));
        let directory = Self {
            accounts: Accounts::new(core.clone()),
            credentials: Credentials::new(core.clone()),
            groups: Groups::new(core.clone()),
            organizations: Organizations::new(core.clone()),
            projects: Projects::new(core.clone()),
            records: Records::new(core.clone()),
            ftp: FtpAccounts::new(core.clone(), Mutex::default(), signin.clone()),
            audit: AuditTrail::new(core.clone()),
            exchange: exchange::UserExchange::with_accounts(core.clone()),
            mail: Mail::new(
                core.clone(),
                mail::ResetLimiter::new(
                    config.mail.reset_per_user_per_hour,
                    config.mail.reset_per_address_per_hour,
                ),
            ),
            signin,
            sync,
            core,
            readiness_cache: Default::default(),
        };
        directory.credentials.check_sealing_key()?;
        let root_token = directory.accounts.bootstrap()?;
        let sealed = directory.credentials.seal_legacy_seeds()?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "TOTP seeds stored in clear by an older version are now sealed"
            );
        }
        Ok((directory, root_token))
    }

    pub fn now(&self) -> Timestamp {
        self.core.now()
    }

    /// Writes everything committed to disk (called at shutdown).
    pub fn flush(&self) -> ServiceResult<()> {
        self.core.flush()
    }

    /// Bytes the store takes on disk.
    pub fn store_size(&self) -> ServiceResult<u64> {
        self.core.store_size()
    }
}

/// A directory over a fresh store in a temporary folder, for service tests.
#[cfg(test)]
pub(crate) fn test_directory() -> (tempfile::TempDir, Directory) {
    use crate::domain::clock::ManualClock;
    use crate::store::sled::SledStore;
    let opened = tempfile::tempdir().ok().and_then(|dir| {
        let store = SledStore::open(dir.path(), 1 << 20).ok()?;
        let sealer = secrets::SecretSealer::new(&[7; secrets::KEY_LEN]).ok()?;
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let (directory, _) =
            Directory::open(Arc::new(store), &Config::default(), clock, sealer).ok()?;
        Some((dir, directory))
    });
    match opened {
        Some(opened) => opened,
        None => panic!("a test directory opens"),
    }
}
