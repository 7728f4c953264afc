//! Leader election: the daemon holding a session-level advisory lock runs
//! the scheduled jobs. The lock goes with the leader's connection, so when
//! the leader dies (or loses the database) another daemon takes it within
//! about a second.

use super::rows::LEADER_LOCK;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::time::Duration;
use tokio::sync::watch;

/// How often a follower tries for the lock and the leader checks it holds it.
const BEAT: Duration = Duration::from_millis(500);

pub(super) async fn elect(options: PgConnectOptions, leader: watch::Sender<bool>) {
    while !leader.is_closed() {
        match options.connect().await {
            Ok(conn) => hold(conn, &leader).await,
            Err(error) => tracing::warn!(%error, "leader election cannot reach the database"),
        }
        leader.send_replace(false);
        tokio::time::sleep(BEAT).await;
    }
}

/// Tries for the lock on `conn` until it is taken, then keeps checking the
/// connection; returns when the connection fails.
async fn hold(mut conn: PgConnection, leader: &watch::Sender<bool>) {
    loop {
        if leader.is_closed() {
            let _ = conn.close().await;
            return;
        }
        let checked = if *leader.borrow() {
            // A leader that cannot show it still holds the lock steps down.
            match tokio::time::timeout(BEAT, conn.ping()).await {
                Ok(pinged) => pinged.map(|()| true),
                Err(_) => {
                    tracing::warn!("leader lost sight of the database; stepping down");
                    return;
                }
            }
        } else {
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LEADER_LOCK)
                .fetch_one(&mut conn)
                .await
        };
        match checked {
            Ok(leading) => {
                if leading != *leader.borrow() {
                    tracing::info!(leading, "scheduled jobs leadership changed");
                    leader.send_replace(leading);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "leader election lost the database");
                return;
            }
        }
        tokio::time::sleep(BEAT).await;
    }
}
