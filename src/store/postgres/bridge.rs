//! The store's own tokio runtime: the database's futures run there, and the
//! store's synchronous methods wait for them on a channel. Services call the
//! store from any thread (a request's worker, a blocking pool, a job thread,
//! a single-threaded test runtime), none of which may block on a future.

use crate::store::StoreError;
use sqlx::Postgres;
use std::future::Future;
use tokio::runtime::{Handle, Runtime};

/// Longest wait for the database, beyond its own statement timeout.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(330);

pub(super) struct Bridge {
    runtime: Option<Runtime>,
}

impl Bridge {
    pub(super) fn new() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gatehouse-db")
            .enable_all()
            .build()
            .map_err(|error| {
                StoreError::Durability(format!("starting the database runtime: {error}"))
            })?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub(super) fn handle(&self) -> Option<Handle> {
        self.runtime
            .as_ref()
            .map(|runtime| runtime.handle().clone())
    }

    /// Runs `future` on the store's runtime and waits for its output, at
    /// most [`ANSWER_TIMEOUT`] (the database may be cut off without the
    /// connection noticing).
    pub(super) fn run<F>(&self, future: F) -> Result<F::Output, StoreError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let stopped = || StoreError::Durability("the database runtime has stopped".into());
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = sender.send(tokio::time::timeout(ANSWER_TIMEOUT, future).await);
        });
        receiver
            .recv()
            .map_err(|_| stopped())?
            .map_err(|_| StoreError::Durability("the database did not answer in time".into()))
    }

    /// Starts `future` in the background on the store's runtime.
    pub(super) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = &self.runtime {
            runtime.spawn(future);
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Never blocks, so the store may be dropped inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A pooled connection held by a synchronous caller (for a session lock);
/// dropped on the store's runtime, where it goes back to the pool.
pub(super) struct Held {
    conn: Option<sqlx::pool::PoolConnection<Postgres>>,
    handle: Option<Handle>,
}

impl Held {
    pub(super) fn new(conn: sqlx::pool::PoolConnection<Postgres>, handle: Option<Handle>) -> Self {
        Self {
            conn: Some(conn),
            handle,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _context = self.handle.as_ref().map(Handle::enter);
            // Closed rather than returned: its session lock goes with it.
            drop(conn.detach());
        }
    }
}
