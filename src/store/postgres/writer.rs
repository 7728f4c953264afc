//! The writer's own connection and the round trips of a unit of work: one to
//! begin, take the writer lock and read the log from the mirror's last
//! commit (each statement of a simple query sees what committed before it,
//! so the log is read after the lock is held); one to write the unit's rows,
//! its log entry and its notice and commit. Units are serialised by the
//! mirror lock, so one connection serves them all; a unit that fails closes
//! it (the server then rolls back and releases the lock) and the next one
//! connects afresh.

use super::bridge::Bridge;
use super::rows::{PAGE, WRITER_LOCK};
use crate::store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{ConnectOptions, Executor, PgConnection, Row};
use std::future::Future;
use std::sync::Mutex;
use tokio::runtime::Handle;

pub(super) struct Writer {
    idle: Mutex<Option<PgConnection>>,
    options: PgConnectOptions,
}

/// A transaction holding the writer lock. Finished through
/// [`Writer::finish`]; dropped unfinished (a panic in a unit), its
/// connection is closed on the store's runtime.
pub(super) struct Open {
    conn: Option<PgConnection>,
    handle: Option<Handle>,
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _context = self.handle.as_ref().map(Handle::enter);
            drop(conn);
        }
    }
}

/// Log rows as read: (sequence number, encoded writes).
pub(super) type Commits = Vec<(i64, Vec<u8>)>;

fn commits_of(rows: Vec<PgRow>) -> Result<Commits, sqlx::Error> {
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The log from `from` on, as SQL (an integer, so safe to inline).
fn log_from(from: i64) -> String {
    format!(
        "SELECT seq, writes FROM gh_commits WHERE seq >= {from} ORDER BY seq LIMIT {}",
        PAGE + 1
    )
}

impl Writer {
    pub(super) fn new(options: PgConnectOptions) -> Self {
        Self {
            idle: Mutex::new(None),
            options,
        }
    }

    fn take_idle(&self) -> Option<PgConnection> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Begins, takes the writer lock and reads the log from `from`.
    pub(super) fn begin(&self, bridge: &Bridge, from: i64) -> Result<(Open, Commits), StoreError> {
        let (idle, options) = (self.take_idle(), self.options.clone());
        let begin = format!(
            "BEGIN; DO $$ BEGIN PERFORM pg_advisory_xact_lock({WRITER_LOCK}); END $$; {}",
            log_from(from)
        );
        let (conn, commits) = bridge.run(async move {
            // An idle connection may have died with a database restart;
            // nothing is written yet, so one retry on a fresh one is safe.
            if let Some(mut conn) = idle {
                if let Ok(rows) = conn.fetch_all(begin.as_str()).await {
                    return Ok::<_, sqlx::Error>((conn, commits_of(rows)?));
                }
            }
            let mut conn = options.connect().await?;
            let rows = conn.fetch_all(begin.as_str()).await?;
            Ok((conn, commits_of(rows)?))
        })??;
        let open = Open {
            conn: Some(conn),
            handle: bridge.handle(),
        };
        Ok((open, commits))
    }

    /// More of the log, from `from`, in the open transaction.
    pub(super) fn page(
        &self,
        bridge: &Bridge,
        open: &mut Open,
        from: i64,
    ) -> Result<Commits, StoreError> {
        self.step(bridge, open, move |mut conn| async move {
            let rows = conn.fetch_all(log_from(from).as_str()).await?;
            Ok((conn, commits_of(rows)?))
        })
    }

    /// Runs `step` on the open transaction's connection (which it hands back).
    pub(super) fn step<T, F, Fut>(
        &self,
        bridge: &Bridge,
        open: &mut Open,
        step: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(PgConnection) -> Fut,
        Fut: Future<Output = Result<(PgConnection, T), sqlx::Error>> + Send + 'static,
    {
        let conn = open.conn.take().ok_or(StoreError::NotRun)?;
        let (conn, value) = bridge.run(step(conn))??;
        open.conn = Some(conn);
        Ok(value)
    }

    /// Ends the transaction with `last` (statements ending in COMMIT or
    /// ROLLBACK) and keeps the connection for the next unit.
    pub(super) fn finish(
        &self,
        bridge: &Bridge,
        mut open: Open,
        last: String,
    ) -> Result<(), StoreError> {
        let mut conn = open.conn.take().ok_or(StoreError::NotRun)?;
        let conn = bridge.run(async move {
            conn.execute(last.as_str()).await?;
            Ok::<_, sqlx::Error>(conn)
        })??;
        *self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(conn);
        Ok(())
    }
}
