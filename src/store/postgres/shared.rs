//! The sign-in ledger and the upload quota holds on PostgreSQL, shared by
//! every daemon on the database (see [`crate::store::shared`]).

use super::Database;
use super::state::Inner;
use crate::domain::user::UserId;
use crate::store::shared::{CounterKey, FailureLedger, QuotaHolds, SharedCount};
use crate::store::{ReadView, StoreError};
use std::sync::Weak;
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
        let (held_bytes, held_files) =
            self.writer
                .step(&self.bridge, &mut open, move |mut conn| async move {
                    let sums: (i64, i64) = sqlx::query_as(
                        "SELECT coalesce(sum(bytes), 0)::bigint, coalesce(sum(files), 0)::bigint \
                     FROM gh_quota_holds WHERE user_id = $1 \
                     AND renewed_at > now() - make_interval(secs => $2)",
                    )
                    .bind(user)
                    .bind(DEAD_AFTER_SECONDS as f64)
                    .fetch_one(&mut conn)
                    .await?;
                    Ok((conn, sums))
                })?;
        let snapshot = self.inner.snapshot.load_full();
        let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
        if !fits(&*snapshot, unsigned(held_bytes), unsigned(held_files)) {
            self.writer.finish(&self.bridge, open, "ROLLBACK".into())?;
            return Ok(false);
        }
        let holder = self.holder.clone();
        self.writer.step(&self.bridge, &mut open, move |mut conn| async move {
            sqlx::query(
                "INSERT INTO gh_quota_holds (user_id, holder, bytes, files) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, holder) DO UPDATE SET \
                   bytes = gh_quota_holds.bytes + excluded.bytes, \
                   files = gh_quota_holds.files + excluded.files, renewed_at = now()",
            )
            .bind(user)
            .bind(holder)
            .bind(bytes)
            .bind(files)
            .execute(&mut conn)
            .await?;
            Ok((conn, ()))
        })?;
        self.writer.finish(&self.bridge, open, "COMMIT".into())?;
        Ok(true)
    }

    fn release(&self, user: UserId, bytes: u64, files: u64) -> Result<(), StoreError> {
        let pool = self.inner.pool.clone();
        let user = i64::try_from(user).unwrap_or(i64::MAX);
        let (bytes, files) = (clamp(bytes), clamp(files));
        let holder = self.holder.clone();
        self.bridge.run(async move {
            let mut transaction = pool.begin().await?;
            sqlx::query(
                "UPDATE gh_quota_holds SET bytes = greatest(bytes - $3, 0), \
                 files = greatest(files - $4, 0) WHERE user_id = $1 AND holder = $2",
            )
            .bind(user)
            .bind(&holder)
            .bind(bytes)
            .bind(files)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "DELETE FROM gh_quota_holds \
                 WHERE user_id = $1 AND holder = $2 AND bytes = 0 AND files = 0",
            )
            .bind(user)
            .bind(&holder)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await
        })??;
        Ok(())
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Keeps this daemon's holds alive, and forgets dead daemons' holds and
/// sign-in failures nobody has repeated for a day.
pub(super) async fn renew_holds(inner: Weak<Inner>, holder: String) {
    loop {
        tokio::time::sleep(RENEW).await;
        let Some(pool) = inner.upgrade().map(|inner| inner.pool.clone()) else {
            return;
        };
        let renewed = sqlx::query("UPDATE gh_quota_holds SET renewed_at = now() WHERE holder = $1")
            .bind(&holder)
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
