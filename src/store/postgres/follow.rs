//! Following other daemons: a LISTEN on the commit channel (on a connection
//! of its own; a poll covers a lost notification or connection) fetches the
//! commits the mirror lacks and applies them, so a change made on one daemon
//! is seen on every other within a second.

use super::rows;
use super::state::{CatchUp, Inner, Position};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::sync::Weak;
use std::time::Duration;

/// Longest wait between two looks at the log without a notification.
const POLL: Duration = Duration::from_millis(500);
/// Wait before trying again while this daemon's own writer holds the mirror.
const BUSY: Duration = Duration::from_millis(20);

pub(super) async fn follow(inner: Weak<Inner>, options: PgConnectOptions) {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    loop {
        let mut listener = match PgListener::connect_with(&own).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other daemons' commits; retrying");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(rows::CHANNEL).await {
            tracing::warn!(%error, "cannot listen for other daemons' commits; retrying");
            tokio::time::sleep(POLL).await;
            continue;
        }
        loop {
            let announced = tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(notice) => notice.and_then(|n| n.payload().parse::<i64>().ok()),
                    Err(error) => {
                        tracing::warn!(%error, "commit notifications lost; reconnecting");
                        break;
                    }
                },
                () = tokio::time::sleep(POLL) => None,
            };
            let Some(inner) = inner.upgrade() else {
                return;
            };
            // This daemon's own commits (and those it caught up on) need nothing.
            if announced.is_none_or(|seq| seq > inner.applied()) {
                catch_up(&inner).await;
            }
        }
    }
}

/// What one look at the log did.
enum Step {
    /// Nothing more to do now.
    Done,
    /// Look again (more pages, or the writer held the mirror).
    Again,
    /// The log does not continue from `Position`: load whole.
    Reload(Position),
}

/// Fetches the commits the mirror lacks and applies them, unless this
/// daemon's writer is at it (it catches up itself under the writer lock).
async fn catch_up(inner: &Inner) {
    for _ in 0..(POLL.as_millis() / BUSY.as_millis()) {
        let from = inner.applied();
        let fetched = match inner.pool.acquire().await {
            Ok(mut conn) => rows::commits_from(&mut conn, from).await,
            Err(error) => Err(error),
        };
        let commits = match fetched {
            Ok(commits) => commits,
            Err(error) => {
                tracing::warn!(%error, "cannot read other daemons' commits");
                return;
            }
        };
        let step = match inner.try_lock_mirror() {
            None => Step::Again,
            // This daemon committed since the fetch: look again.
            Some(mirror) if mirror.seq != from => Step::Again,
            Some(mut mirror) => match inner.catch_up(&mut mirror, commits) {
                Ok(CatchUp::Current) => Step::Done,
                Ok(CatchUp::More) => Step::Again,
                Ok(CatchUp::Reload) => Step::Reload(*mirror),
                Err(error) => {
                    tracing::error!(%error, "another daemon's commit cannot be applied");
                    Step::Done
                }
            },
        };
        match step {
            Step::Done => return,
            Step::Again => tokio::time::sleep(BUSY).await,
            Step::Reload(seen) => return reload(inner, seen).await,
        }
    }
}

/// Loads the mirror whole, and installs it unless this daemon committed
/// meanwhile (its writer then caught up under the lock anyway).
async fn reload(inner: &Inner, seen: Position) {
    let (entries, reached) = match rows::load_mirror(&inner.pool).await {
        Ok(loaded) => loaded,
        Err(error) => return tracing::warn!(%error, "cannot reload the mirror"),
    };
    let snapshot = super::Snapshot::from_entries(entries);
    for _ in 0..(POLL.as_millis() / BUSY.as_millis()) {
        if let Some(mut mirror) = inner.try_lock_mirror() {
            if *mirror == seen || reached.seq > mirror.seq {
                inner.install(&mut mirror, snapshot, reached);
            }
            return;
        }
        tokio::time::sleep(BUSY).await;
    }
}
