//! The sign-in ledger and the upload quota holds on PostgreSQL, shared by
//! every daemon on the database (see [`crate::store::shared`]).

use super::Database;
use super::state::Inner;
use crate::domain::user::UserId;
use crate::store::shared::{CounterKey, FailureLedger, QuotaHolds, SharedCount};
use crate::store::{ReadView, StoreError};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often a daemon renews its holds.
const RENEW: Duration = Duration::from_secs(20);
/// Holds not renewed for this long belong to a daemon that died.
const DEAD_AFTER_SECONDS: i64 = 90;

impl FailureLedger for Database {
    fn failures(
        &self,
        keys: &[CounterKey],
        now: i64,
        memory: i64,
    ) -> Result<Vec<Option<SharedCount>>, StoreError> {
        let pool = self.inner.pool.clone();
        let wanted: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
        let rows: Vec<(Vec<u8>, i32, i64, Option<i64>)> = self.bridge.run(async move {
            sqlx::query_as(
                "SELECT key, failures, last_failure, forgiven_at FROM gh_signin_failures \
                 WHERE key = ANY($1) AND greatest(last_failure, forgiven_at) >= $2",
            )
            .bind(wanted)
            .bind(now.saturating_sub(memory))
            .fetch_all(&pool)
            .await
        })??;
        Ok(keys
            .iter()
            .map(|key| {
                rows.iter()
                    .find(|(found, ..)| found.as_slice() == key.as_slice())
                    .map(|(_, failures, last, forgiven_at)| SharedCount {
                        failures: u32::try_from(*failures).unwrap_or(0),
                        last: *last,
                        forgiven_at: *forgiven_at,
                    })
            })
            .collect())
    }

    fn record_failure(&self, keys: &[CounterKey], now: i64, window: i64) -> Result<(), StoreError> {
        let pool = self.inner.pool.clone();
        let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
        self.bridge.run(async move {
            sqlx::query(
                "INSERT INTO gh_signin_failures (key, failures, last_failure) \
                 SELECT key, 1, $2 FROM UNNEST($1::bytea[]) AS key \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN gh_signin_failures.last_failure < $2 - $3 THEN 1 \
                                   ELSE gh_signin_failures.failures + 1 END, \
                   last_failure = greatest(gh_signin_failures.last_failure, $2)",
            )
            .bind(keys)
            .bind(now)
            .bind(window)
            .execute(&pool)
            .await
        })??;
        Ok(())
    }

    fn forgive(&self, keys: &[CounterKey], now: i64) -> Result<(), StoreError> {
        let pool = self.inner.pool.clone();
        let keys: Vec<Vec<u8>> = keys.iter().map(|key| key.to_vec()).collect();
        self.bridge.run(async move {
            sqlx::query(
                "UPDATE gh_signin_failures SET failures = 0, forgiven_at = $2 \
                 WHERE key = ANY($1)",
            )
            .bind(keys)
            .bind(now)
            .execute(&pool)
            .await
        })??;
        Ok(())
    }
}

/// This daemon's holds as it knows them exactly; its rows in the database
/// are written from here (at each change, and again at every renewal, so a
/// write that failed is mended within [`RENEW`]).
pub(super) struct OwnHolds {
    holder: String,
    held: Mutex<BTreeMap<i64, (i64, i64)>>,
}

impl OwnHolds {
    pub(super) fn new(holder: String) -> Self {
        Self {
            holder,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i64, (i64, i64)>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes this daemon's row for `user`: `held`, or none when nothing is held.
async fn write_own_row(
    conn: &mut sqlx::PgConnection,
    holder: &str,
    user: i64,
    held: (i64, i64),
) -> Result<(), sqlx::Error> {
    if held == (0, 0) {
        sqlx::query("DELETE FROM gh_quota_holds WHERE user_id = $1 AND holder = $2")
            .bind(user)
            .bind(holder)
            .execute(conn)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO gh_quota_holds (user_id, holder, bytes, files) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, holder) DO UPDATE SET bytes = excluded.bytes, \
         files = excluded.files, renewed_at = now()",
    )
    .bind(user)
    .bind(holder)
    .bind(held.0)
    .bind(held.1)
    .execute(conn)
    .await?;
    Ok(())
}

impl QuotaHolds for Database {
    fn hold(
        &self,
        user: UserId,
        bytes: u64,
        files: u64,
        fits: &mut dyn FnMut(&dyn ReadView, u64, u64) -> bool,
    ) -> Result<bool, StoreError> {
        let user = i64::try_from(user).unwrap_or(i64::MAX);
        let (bytes, files) = (clamp(bytes), clamp(files));
        let (_mirror, mut open) = self.begin_locked()?;
        let mut held = self.holds.lock();
        let own = held.get(&user).copied().unwrap_or((0, 0));
        let holder = self.holds.holder.clone();
        let (others_bytes, others_files) =
            self.writer
                .step(&self.bridge, &mut open, move |mut conn| async move {
                    let sums: (i64, i64) = sqlx::query_as(
                        "SELECT coalesce(sum(bytes), 0)::bigint, coalesce(sum(files), 0)::bigint \
                     FROM gh_quota_holds WHERE user_id = $1 AND holder <> $2 \
                     AND renewed_at > now() - make_interval(secs => $3)",
                    )
                    .bind(user)
                    .bind(holder)
                    .bind(DEAD_AFTER_SECONDS as f64)
                    .fetch_one(&mut conn)
                    .await?;
                    Ok((conn, sums))
                })?;
        let snapshot = self.inner.snapshot.load_full();
        let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
        let all_bytes = unsigned(others_bytes.saturating_add(own.0));
        let all_files = unsigned(others_files.saturating_add(own.1));
        if !fits(&*snapshot, all_bytes, all_files) {
            self.writer.finish(&self.bridge, open, "ROLLBACK".into())?;
            return Ok(false);
        }
        let next = (own.0.saturating_add(bytes), own.1.saturating_add(files));
        let holder = self.holds.holder.clone();
        self.writer
            .step(&self.bridge, &mut open, move |mut conn| async move {
                write_own_row(&mut conn, &holder, user, next).await?;
                Ok((conn, ()))
            })?;
        self.writer.finish(&self.bridge, open, "COMMIT".into())?;
        held.insert(user, next);
        Ok(true)
    }

    fn release(&self, user: UserId, bytes: u64, files: u64) -> Result<(), StoreError> {
        let user = i64::try_from(user).unwrap_or(i64::MAX);
        let mut held = self.holds.lock();
        let own = held.get(&user).copied().unwrap_or((0, 0));
        let next = (
            own.0.saturating_sub(clamp(bytes)).max(0),
            own.1.saturating_sub(clamp(files)).max(0),
        );
        match next {
            (0, 0) => held.remove(&user),
            _ => held.insert(user, next),
        };
        let (pool, holder) = (self.inner.pool.clone(), self.holds.holder.clone());
        self.bridge.run(async move {
            let mut conn = pool.acquire().await?;
            write_own_row(&mut conn, &holder, user, next).await
        })??;
        Ok(())
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes this daemon's holds again (renewing them, and mending a write that
/// failed), and forgets holds of daemons that stopped renewing theirs.
pub(super) async fn renew_holds(inner: Weak<Inner>, holds: Weak<OwnHolds>) {
    loop {
        tokio::time::sleep(RENEW).await;
        let (Some(pool), Some(holds)) = (inner.upgrade().map(|i| i.pool.clone()), holds.upgrade())
        else {
            return;
        };
        // Skipped while a hold or release is writing (never block the runtime).
        let Ok(held) = holds.held.try_lock().map(|held| held.clone()) else {
            continue;
        };
        let (users, amounts): (Vec<i64>, Vec<(i64, i64)>) = held.into_iter().unzip();
        let (bytes, files): (Vec<i64>, Vec<i64>) = amounts.into_iter().unzip();
        let renewed = sqlx::query(
            "WITH mine AS (SELECT * FROM UNNEST($2::int8[], $3::int8[], $4::int8[]) \
                 AS h(user_id, bytes, files)), \
             gone AS (DELETE FROM gh_quota_holds WHERE holder = $1 \
                 AND user_id <> ALL($2::int8[])) \
             INSERT INTO gh_quota_holds (user_id, holder, bytes, files) \
             SELECT user_id, $1, bytes, files FROM mine \
             ON CONFLICT (user_id, holder) DO UPDATE SET bytes = excluded.bytes, \
             files = excluded.files, renewed_at = now()",
        )
        .bind(&holds.holder)
        .bind(&users)
        .bind(&bytes)
        .bind(&files)
        .execute(&pool)
        .await;
        let swept = sqlx::query(
            "DELETE FROM gh_quota_holds WHERE renewed_at < now() - make_interval(secs => $1)",
        )
        .bind(DEAD_AFTER_SECONDS as f64)
        .execute(&pool)
        .await;
        if let Err(error) = renewed.and(swept) {
            tracing::warn!(%error, "cannot renew this daemon's upload holds");
        }
    }
}
