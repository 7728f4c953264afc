//! The store seam: repository traits per aggregate, a unit of work that runs a
//! closure as one transaction, and the store's own error type. Services talk to
//! `dyn Store` only; `sled` is the embedded implementation. A write is
//! acknowledged (its [`Commit`] waited for) only once it is on disk.

mod durability;
pub(crate) mod mirror;
pub mod postgres;
mod repos;
pub mod shared;
pub mod sled;

pub use postgres::PostgresStore;
pub use repos::{
    AuditLog, CredentialReads, CredentialWrites, EntryReads, EntryWrites, GroupReads, GroupWrites,
    IdCounter, MediaWrites, OrganizationReads, OrganizationWrites, OutboxReads, OutboxWrites,
    ProjectReads, ProjectWrites, ReadView, RecordReads, RecordWrites, SettingReads, SettingWrites,
    TokenReads, TokenWrites, UnitOfWork, UserReads, UserWrites,
};

use crate::domain::audit::AuditEntry;
use std::sync::Arc;

/// A failure of the store itself, or a uniqueness conflict.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(#[from] ::sled::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored record is unreadable: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("{field} is already taken")]
    Duplicate { field: &'static str },
    #[error("the store has schema version {found}, this build knows up to {known}")]
    SchemaTooNew { found: u64, known: u64 },
    #[error("the store could not be made durable: {0}")]
    Durability(String),
    #[error("the unit of work was never run")]
    NotRun,
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),
    #[error("the store is damaged: {0}")]
    Corrupt(String),
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackupSummary {
    /// Stored entries (records, index entries, audit entries).
    pub entries: u64,
    /// Size of the backup file.
    pub bytes: u64,
}

/// A committed unit of work; waiting for it returns once it is on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a commit is not acknowledged until it is durable"]
pub struct Commit(pub(crate) u64);

/// A consistent, immutable view of the last committed state.
pub type Snapshot = Arc<dyn ReadView + Send + Sync>;

/// What a unit of work decided once it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Rollback,
}

/// What another daemon changed, as told to [`Store::on_remote_change`] hooks.
#[derive(Debug, Clone, Copy)]
pub enum RemoteChange<'a> {
    /// These users were written or removed.
    Users(&'a [crate::domain::user::UserId]),
    /// The mirror was reloaded whole: anything may have changed.
    Everything,
}

/// Called after another daemon's commits reach this daemon's snapshot.
pub type RemoteHook = Box<dyn Fn(RemoteChange<'_>) + Send + Sync>;

/// The account store: consistent snapshots for readers, serialised units of
/// work for writers, group-committed durability.
pub trait Store: Send + Sync {
    /// The last committed state; never waits for a writer.
    fn snapshot(&self) -> Snapshot;

    /// Runs `work` as one transaction: everything it writes commits together,
    /// or (when it fails) nothing does. Invariants checked inside `work` see
    /// exactly the state the writes apply to.
    fn transact(
        &self,
        work: &mut dyn FnMut(&dyn UnitOfWork) -> Decision,
    ) -> Result<Commit, StoreError>;

    /// Returns once `commit` (and everything committed before it) is on disk.
    /// Concurrent callers share one flush.
    fn wait_durable(&self, commit: Commit) -> Result<(), StoreError>;

    /// Audit entries newest first, starting below `before` when given.
    fn audit_page(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// The committed image under `key`, read from disk.
    fn media(
        &self,
        key: crate::domain::media::MediaKey,
    ) -> Result<Option<crate::domain::media::StoredImage>, StoreError>;

    /// Writes everything committed to disk.
    fn flush(&self) -> Result<(), StoreError>;

    /// Bytes the store takes on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Writes one consistent snapshot of everything, with `files` (name,
    /// content) the store needs besides, to `out`.
    fn backup(
        &self,
        files: &[(String, Vec<u8>)],
        out: &mut dyn std::io::Write,
    ) -> Result<BackupSummary, StoreError>;

    /// Checks every index against the records it indexes; each drift found
    /// is described (at most 1,000).
    fn verify(&self) -> Result<Vec<String>, StoreError>;

    /// Whether this daemon runs the scheduled jobs (directory sync, the
    /// outbox): always for an embedded store, for one daemon at a time on a
    /// shared one. The value changes when leadership moves.
    fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        tokio::sync::watch::channel(true).1
    }

    /// Whether other daemons may write to this store too.
    fn shares_state(&self) -> bool {
        false
    }

    /// Applies every commit other daemons made so far, now (a daemon asked
    /// about something it has not seen yet); an embedded store has none.
    fn catch_up(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Failed sign-ins shared with other daemons, when there can be any.
    fn failure_ledger(&self) -> Option<Arc<dyn shared::FailureLedger>> {
        None
    }

    /// Upload reservations shared with other daemons, when there can be any.
    fn quota_holds(&self) -> Option<Arc<dyn shared::QuotaHolds>> {
        None
    }

    /// Registers `hook` to hear of commits other daemons made; an embedded
    /// store has none.
    fn on_remote_change(&self, hook: RemoteHook) {
        drop(hook);
    }
}

impl dyn Store {
    /// Runs `work` in one transaction and returns its value with the commit to
    /// wait for. An error from `work` (or the store) writes nothing.
    pub fn write<T, E: From<StoreError>>(
        &self,
        mut work: impl FnMut(&dyn UnitOfWork) -> Result<T, E>,
    ) -> Result<(T, Commit), E> {
        let mut outcome: Option<Result<T, E>> = None;
        let commit = self.transact(&mut |unit| {
            let result = work(unit);
            let decision = match result {
                Ok(_) => Decision::Commit,
                Err(_) => Decision::Rollback,
            };
            outcome = Some(result);
            decision
        })?;
        let value = outcome.ok_or(StoreError::NotRun)??;
        Ok((value, commit))
    }
}
