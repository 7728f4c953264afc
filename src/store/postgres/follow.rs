//! Following other daemons: a LISTEN on the commit channel (with a poll as a
//! fallback for a lost notification or connection) fetches the commits the
//! mirror lacks and applies them, so a change made on one daemon is seen on
//! every other within a second.

use super::{Inner, rows};
use sqlx::postgres::PgListener;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest wait between two looks at the log without a notification.
const POLL: Duration = Duration::from_millis(500);
/// Wait before trying again while this daemon's own writer holds the mirror.
const BUSY: Duration = Duration::from_millis(20);

pub(super) async fn follow(inner: Weak<Inner>) {
    loop {
        let Some(pool) = inner.upgrade().map(|inner| inner.pool.clone()) else {
            return;
        };
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other daemons' commits; retrying");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        drop(pool);
        if let Err(error) = listener.listen(rows::CHANNEL).await {
            tracing::warn!(%error, "cannot listen for other daemons' commits; retrying");
            tokio::time::sleep(POLL).await;
            continue;
        }
        loop {
            tokio::select! {
                received = listener.try_recv() => {
                    if let Err(error) = received {
                        tracing::warn!(%error, "commit notifications lost; reconnecting");
                        break;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
            let Some(inner) = inner.upgrade() else {
                return;
            };
            catch_up(&inner).await;
        }
    }
}

/// Fetches the commits after the mirror's last and applies them, unless this
/// daemon's writer is at it (it catches up itself under the writer lock).
async fn catch_up(inner: &Inner) {
    for _ in 0..(POLL.as_millis() / BUSY.as_millis()) {
        let after = inner.applied.load(Ordering::Acquire);
        let fetched = match inner.pool.acquire().await {
            Ok(mut conn) => rows::commits_after(&mut conn, after).await,
            Err(error) => Err(error),
        };
        let commits = match fetched {
            Ok(commits) if commits.is_empty() => return,
            Ok(commits) => commits,
            Err(error) => {
                tracing::warn!(%error, "cannot read other daemons' commits");
                return;
            }
        };
        let applied = match inner.mirror.try_lock() {
            Ok(mut mirror) => Some(inner.catch_up(&mut mirror, commits)),
            Err(_) => None,
        };
        let gap = match applied {
            None => {
                tokio::time::sleep(BUSY).await;
                continue;
            }
            Some(Ok(outcome)) => outcome.is_err(),
            Some(Err(error)) => {
                tracing::error!(%error, "another daemon's commit cannot be applied");
                return;
            }
        };
        if gap {
            reload(inner).await;
        }
        return;
    }
}

/// Loads the mirror whole, for a daemon further behind than the log reaches.
async fn reload(inner: &Inner) {
    match rows::load_mirror(&inner.pool).await {
        Ok((entries, seq)) => {
            let snapshot = super::Snapshot::from_entries(entries);
            let mut mirror = inner.lock_mirror();
            inner.install(&mut mirror, snapshot, seq);
        }
        Err(error) => tracing::warn!(%error, "cannot reload the mirror"),
    }
}
