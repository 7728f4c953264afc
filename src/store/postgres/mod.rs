//! The store on PostgreSQL, for several daemons on one database. Each daemon
//! keeps the committed state mirrored in memory, as the sled store does, so
//! reads never touch the database. A unit of work takes one database-wide
//! writer lock, first applies the commits other daemons made since its
//! mirror's last one, runs over exactly that state, and writes its rows and
//! its entry in the commit log in the same transaction: no lost update, and
//! every invariant a unit checks holds across daemons. Other daemons hear of
//! it by LISTEN/NOTIFY ([`follow`]); [`leader`] picks the one daemon that
//! runs the scheduled jobs.

mod bridge;
mod copy;
mod follow;
mod leader;
mod rows;
mod shared;
mod state;
mod writer;

use super::durability::GroupCommit;
use super::mirror::backup::Entries;
use super::mirror::snapshot::Snapshot;
use super::mirror::tx::Tx;
use super::mirror::{SCHEMA_VERSION, TreeId, keys, reads::RawRead, verify};
use super::{Commit, Decision, RemoteHook, StoreError, UnitOfWork};
use crate::domain::audit::AuditEntry;
use crate::domain::media::{MediaKey, StoredImage};
use bridge::Bridge;
pub use copy::{CopyReport, sled_to_postgres};
use rows::UnitSql;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use state::{CatchUp, Inner, Position};
use std::str::FromStr;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;
use writer::{Open, Writer};

/// How to reach the database.
#[derive(Clone)]
pub struct PostgresOptions {
    pub url: String,
    pub pool_size: u32,
    pub acquire_timeout: Duration,
}

/// The PostgreSQL store; cheap to share behind an `Arc`.
pub struct PostgresStore {
    db: Arc<Database>,
    leader: tokio::sync::watch::Receiver<bool>,
}

/// The connection to the database and the mirror, shared by the store and
/// the sign-in ledger and quota holds it hands out.
struct Database {
    inner: Arc<Inner>,
    /// The connection units of work run on.
    writer: Writer,
    /// Commits made here, and which of them the WAL has on disk.
    group_commit: GroupCommit,
    /// This daemon's last commit, which a flush checks is still there.
    last_own: std::sync::Mutex<Position>,
    /// Names this daemon (its WAL flush row and quota holds).
    holder: String,
    /// This daemon's upload quota holds.
    holds: Arc<shared::OwnHolds>,
    // Last, so the runtime stops after everything that uses it is dropped.
    bridge: Bridge,
}

impl PostgresStore {
    /// Connects, brings the schema up to date, loads the mirror and starts
    /// following other daemons' commits and the leader election.
    pub fn open(options: &PostgresOptions) -> Result<Self, StoreError> {
        Self::open_as(options, false)
    }

    /// [`PostgresStore::open`]; `copying` lets `migrate-store` open a copy it
    /// has not finished, which a daemon refuses.
    fn open_as(options: &PostgresOptions, copying: bool) -> Result<Self, StoreError> {
        // A stuck peer (paused, cut off) must not hold the writer lock, nor a
        // request wait on it, for ever.
        // Units commit without waiting for the WAL flush; a writer waits
        // for it in `wait_durable`, where concurrent writers share one.
        let connect = PgConnectOptions::from_str(&options.url)?.options([
            ("lock_timeout", "30s"),
            ("statement_timeout", "300s"),
            ("idle_in_transaction_session_timeout", "300s"),
            ("synchronous_commit", "off"),
            // What the inlined SQL and the log reads rely on, whatever the
            // role's or database's defaults.
            ("standard_conforming_strings", "on"),
            ("bytea_output", "hex"),
            ("default_transaction_isolation", r"read\ committed"),
        ]);
        let bridge = Bridge::new()?;
        let pool_options = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .acquire_timeout(options.acquire_timeout);
        let pool_connect = connect.clone();
        let pool = bridge.run(async move {
            let pool = pool_options.connect_with(pool_connect).await?;
            rows::migrate(&pool).await?;
            if !copying && rows::copy_unfinished(&pool).await? {
                return Err(StoreError::Unsupported(
                    "a migrate-store copy into this database has not finished; run it again",
                ));
            }
            Ok::<_, StoreError>(pool)
        })??;
        let load_pool = pool.clone();
        let (entries, position) =
            bridge.run(async move { rows::load_mirror(&load_pool).await })??;
        let snapshot = Snapshot::from_entries(entries);
        let (entries, bytes) = snapshot.size();
        tracing::info!(
            entries,
            mib = bytes >> 20,
            commit = position.seq,
            "store loaded from PostgreSQL"
        );
        let inner = Arc::new(Inner::new(pool, snapshot, position));
        bridge.spawn(follow::follow(Arc::downgrade(&inner), connect.clone()));
        let (leader_sender, leader) = tokio::sync::watch::channel(false);
        bridge.spawn(leader::elect(connect.clone(), leader_sender));
        let holder = format!("{:016x}", rand::random::<u64>());
        let holds = Arc::new(shared::OwnHolds::new(holder.clone()));
        bridge.spawn(shared::renew_holds(
            Arc::downgrade(&inner),
            Arc::downgrade(&holds),
        ));
        let db = Database {
            inner,
            writer: Writer::new(connect.clone()),
            group_commit: GroupCommit::default(),
            last_own: std::sync::Mutex::new(Position::default()),
            holder,
            holds,
            bridge,
        };
        db.check_schema()?;
        Ok(Self {
            db: Arc::new(db),
            leader,
        })
    }
}

impl Database {
    /// A new database gets this build's schema version; another version is
    /// refused (an older install is brought over by `migrate-store`, which
    /// opens it with sled first).
    fn check_schema(&self) -> Result<(), StoreError> {
        let version = |snapshot: &Snapshot| {
            snapshot
                .raw_get(TreeId::Meta, keys::SCHEMA_VERSION)
                .map(|raw| keys::decode_u64(&raw))
                .unwrap_or(0)
        };
        if version(&self.inner.snapshot.load()) == 0 {
            let schema_written = self.run(&mut |tx| {
                if tx.raw_get(TreeId::Meta, keys::SCHEMA_VERSION).is_none() {
                    tx.set_schema_version(SCHEMA_VERSION);
                }
                Decision::Commit
            })?;
            self.group_commit
                .wait(schema_written, || self.flush_wal())?;
        }
        match version(&self.inner.snapshot.load()) {
            SCHEMA_VERSION => Ok(()),
            found => Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            }),
        }
    }

    /// Returns once the WAL is on disk up to now: a synchronous commit that
    /// writes (this daemon's row of `gh_flush`) flushes the WAL through its
    /// own commit record, so everything committed before it too. It writes
    /// only if this daemon's last commit is still in the log as it was made
    /// (a database that crashed and lost it must not be taken as durable).
    /// One statement; numbers, hex digits and the hex holder name inlined.
    fn flush_wal(&self) -> Result<(), StoreError> {
        let pool = self.inner.pool.clone();
        let holder = self.holder.clone();
        if !holder.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Corrupt("a daemon name that is not hex".into()));
        }
        let own = *self
            .last_own
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let survived = match own.seq {
            0 => "true".to_owned(),
            seq => format!(
                "EXISTS (SELECT 1 FROM gh_commits WHERE seq = {seq} AND sha256(writes) = {}) \
                 OR (SELECT min(seq) FROM gh_commits) > {seq}",
                own.digest_literal()
            ),
        };
        let written = self.bridge.run(async move {
            let flush = format!(
                "WITH sync AS (SELECT set_config('synchronous_commit', 'on', true)) \
                 INSERT INTO gh_flush (holder, flushes) SELECT '{holder}', 1 FROM sync \
                 WHERE {survived} \
                 ON CONFLICT (holder) DO UPDATE SET flushes = gh_flush.flushes + 1"
            );
            sqlx::Executor::execute(&pool, flush.as_str()).await
        })??;
        match written.rows_affected() {
            1 => Ok(()),
            _ => Err(StoreError::Durability(
                "the database no longer holds this daemon's last commit (it crashed or was restored)"
                    .into(),
            )),
        }
    }

    /// Every entry of `tree` below `below`, read a page at a time.
    fn pages(&self, tree: TreeId, below: Option<Vec<u8>>) -> Entries<'_> {
        const PAGE: i64 = 1_000;
        let mut after: Option<Vec<u8>> = None;
        let mut page = std::collections::VecDeque::new();
        let mut ended = false;
        Box::new(std::iter::from_fn(move || {
            if page.is_empty() && !ended {
                let pool = self.inner.pool.clone();
                let (from, to) = (after.clone(), below.clone());
                let fetched = self
                    .bridge
                    .run(async move { rows::entries_between(&pool, tree, from, to, PAGE).await })
                    .and_then(|rows| Ok(rows?));
                match fetched {
                    Ok(rows) => {
                        ended = rows.len() < PAGE as usize;
                        after = rows.last().map(|(key, _)| key.clone());
                        page.extend(rows);
                    }
                    Err(error) => {
                        ended = true;
                        return Some(Err(error));
                    }
                }
            }
            page.pop_front().map(Ok)
        }))
    }

    /// Begins a transaction holding the writer lock, with the mirror caught
    /// up to every commit made before it.
    fn begin_locked(&self) -> Result<(MutexGuard<'_, Position>, Open), StoreError> {
        let inner = &self.inner;
        let mut mirror = inner.lock_mirror();
        loop {
            let (mut open, mut commits) = self.writer.begin(&self.bridge, mirror.seq)?;
            loop {
                match inner.catch_up(&mut mirror, commits)? {
                    CatchUp::Current => return Ok((mirror, open)),
                    CatchUp::More => {
                        commits = self.writer.page(&self.bridge, &mut open, mirror.seq)?
                    }
                    CatchUp::Reload => break,
                }
            }
            self.writer.finish(&self.bridge, open, "ROLLBACK".into())?;
            let pool = inner.pool.clone();
            let (entries, reached) = self
                .bridge
                .run(async move { rows::load_mirror(&pool).await })??;
            inner.install(&mut mirror, Snapshot::from_entries(entries), reached);
        }
    }

    /// Runs `work` under the writer lock over the caught-up mirror and commits
    /// what it staged.
    fn run(&self, work: &mut dyn FnMut(&Tx) -> Decision) -> Result<Commit, StoreError> {
        let inner = &self.inner;
        let (mut mirror, mut open) = self.begin_locked()?;
        let base = inner.snapshot.load_full();
        let tx = Tx::new(&base);
        let decision = work(&tx);
        let writes = tx.into_writes();
        if decision == Decision::Rollback || writes.is_empty() {
            self.writer.finish(&self.bridge, open, "ROLLBACK".into())?;
            return Ok(Commit::default());
        }
        let seq = mirror.seq + 1;
        let rows: Vec<_> = writes
            .iter()
            .map(|((tree, key), change)| (*tree, key.to_vec(), change.clone()))
            .collect();
        let logged = rows::log_of(&writes);
        let reached = Position::of(seq, &logged);
        let last = match rows::unit_sql(seq, rows, logged) {
            UnitSql::Inline(sql) => sql,
            UnitSql::Large {
                columns,
                seq,
                log,
                tail,
            } => {
                self.writer
                    .step(&self.bridge, &mut open, move |mut conn| async move {
                        rows::write_batched(&mut conn, &columns, seq, &log).await?;
                        Ok((conn, ()))
                    })?;
                tail
            }
        };
        self.writer.finish(&self.bridge, open, last)?;
        let mut next = (*base).clone();
        for ((tree, key), change) in &writes {
            next.apply(*tree, key, change);
        }
        inner.committed(&mut mirror, next, reached);
        *self
            .last_own
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = reached;
        Ok(self.group_commit.next_commit())
    }
}

impl super::Store for PostgresStore {
    fn snapshot(&self) -> super::Snapshot {
        self.db.inner.snapshot.load_full()
    }

    fn transact(
        &self,
        work: &mut dyn FnMut(&dyn UnitOfWork) -> Decision,
    ) -> Result<Commit, StoreError> {
        self.db.run(&mut |tx| work(tx))
    }

    fn wait_durable(&self, commit: Commit) -> Result<(), StoreError> {
        self.db.group_commit.wait(commit, || self.db.flush_wal())
    }

    fn audit_page(&self, before: Option<u64>, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let pool = self.db.inner.pool.clone();
        let before = before.map(|id| keys::id(id).to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let raw = self.db.bridge.run(async move {
            rows::entries_before(&pool, TreeId::Audit, before, limit).await
        })??;
        raw.iter()
            .map(|value| Ok(serde_json::from_slice(value)?))
            .collect()
    }

    fn media(&self, key: MediaKey) -> Result<Option<StoredImage>, StoreError> {
        let pool = self.db.inner.pool.clone();
        let key = key.bytes().to_vec();
        let raw = self
            .db
            .bridge
            .run(async move { rows::entry(&pool, TreeId::Media, key).await })??;
        match raw {
            None => Ok(None),
            Some(raw) => StoredImage::decode(&raw)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("an image blob is damaged".into())),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_wal()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        let pool = self.db.inner.pool.clone();
        let size: i64 = self.db.bridge.run(async move {
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&pool)
                .await
        })??;
        Ok(u64::try_from(size).unwrap_or_default())
    }

    /// The same backup file as sled's: the mirror's snapshot, the audit
    /// trail up to its counter and the images it refers to, read from the
    /// database a page at a time.
    fn backup(
        &self,
        files: &[(String, Vec<u8>)],
        out: &mut dyn std::io::Write,
    ) -> Result<super::BackupSummary, StoreError> {
        let snapshot = self.db.inner.snapshot.load_full();
        let unmirrored = |tree, below| self.db.pages(tree, below);
        super::mirror::backup::write(&snapshot, &unmirrored, files, out)
    }

    fn verify(&self) -> Result<Vec<String>, StoreError> {
        verify::drift(&*self.db.inner.snapshot.load_full())
    }

    fn leadership(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leader.clone()
    }

    fn shares_state(&self) -> bool {
        true
    }

    /// Reads the log without holding the mirror (a flood of unknown tokens
    /// must not stall writers), then applies what it read if the mirror has
    /// not moved meanwhile.
    fn catch_up(&self) -> Result<(), StoreError> {
        let inner = &self.db.inner;
        for _ in 0..4 {
            let (pool, from) = (inner.pool.clone(), inner.applied());
            let commits = self.db.bridge.run(async move {
                let mut conn = pool.acquire().await?;
                rows::commits_from(&mut conn, from).await
            })??;
            let mut mirror = inner.lock_mirror();
            if mirror.seq != from {
                continue;
            }
            match inner.catch_up(&mut mirror, commits)? {
                CatchUp::Current => return Ok(()),
                CatchUp::More => {}
                CatchUp::Reload => {
                    let pool = inner.pool.clone();
                    let (entries, reached) = self
                        .db
                        .bridge
                        .run(async move { rows::load_mirror(&pool).await })??;
                    inner.install(&mut mirror, Snapshot::from_entries(entries), reached);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn failure_ledger(&self) -> Option<Arc<dyn super::shared::FailureLedger>> {
        Some(self.db.clone())
    }

    fn quota_holds(&self) -> Option<Arc<dyn super::shared::QuotaHolds>> {
        Some(self.db.clone())
    }

    fn on_remote_change(&self, hook: RemoteHook) {
        self.db.inner.add_hook(hook);
    }
}
