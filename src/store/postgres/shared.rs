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
                "UPDATE gh_signin_failures SET forgiven_at = $2, \
                 failures = CASE WHEN last_failure > $2 THEN failures ELSE 0 END \
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
/// write that failed is mended within [`RENEW`]). Every write carries a
/// version, so an older one never replaces a newer.
pub(super) struct OwnHolds {
    holder: String,
    held: Mutex<Held>,
}

/// Held bytes and files per user, and the last version handed out.
#[derive(Default, Clone)]
struct Held {
    users: BTreeMap<i64, (i64, i64, i64)>,
    version: i64,
}

impl Held {
    /// Records `amounts` for `user` under a new version; the row to write.
    fn set(&mut self, user: i64, amounts: (i64, i64)) -> (i64, i64, i64) {
        self.version += 1;
        let row = (amounts.0, amounts.1, self.version);
        match amounts {
            (0, 0) => self.users.remove(&user),
            _ => self.users.insert(user, row),
        };
        row
    }

    fn amounts(&self, user: i64) -> (i64, i64) {
        self.users
            .get(&user)
            .map_or((0, 0), |&(bytes, files, _)| (bytes, files))
    }
}

impl OwnHolds {
    pub(super) fn new(holder: String) -> Self {
        Self {
            holder,
            held: Mutex::new(Held::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes this daemon's row for `user` (bytes, files, version), unless the
/// row already holds a newer version.
async fn write_own_row(
    conn: &mut sqlx::PgConnection,
    holder: &str,
    user: i64,
    row: (i64, i64, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gh_quota_holds (user_id, holder, bytes, files, version) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, holder) DO UPDATE SET bytes = excluded.bytes, \
         files = excluded.files, version = excluded.version, renewed_at = now() \
         WHERE gh_quota_holds.version < excluded.version",
    )
    .bind(user)
    .bind(holder)
    .bind(row.0)
    .bind(row.1)
    .bind(row.2)
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
        let own = held.amounts(user);
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
        let mut next = held.clone();
        let row = next.set(
            user,
            (own.0.saturating_add(bytes), own.1.saturating_add(files)),
        );
        let holder = self.holds.holder.clone();
        self.writer
            .step(&self.bridge, &mut open, move |mut conn| async move {
                write_own_row(&mut conn, &holder, user, row).await?;
                Ok((conn, ()))
            })?;
        self.writer.finish(&self.bridge, open, "COMMIT".into())?;
        *held = next;
        Ok(true)
    }

    fn release(&self, user: UserId, bytes: u64, files: u64) -> Result<(), StoreError> {
        let user = i64::try_from(user).unwrap_or(i64::MAX);
        let mut held = self.holds.lock();
        let own = held.amounts(user);
        let row = held.set(
            user,
            (
                own.0.saturating_sub(clamp(bytes)).max(0),
                own.1.saturating_sub(clamp(files)).max(0),
            ),
        );
        drop(held);
        // A write that fails is mended by the next renewal.
        let (pool, holder) = (self.inner.pool.clone(), self.holds.holder.clone());
        self.bridge.run(async move {
            let mut conn = pool.acquire().await?;
            write_own_row(&mut conn, &holder, user, row).await
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
        // Skipped while a hold is deciding (never block the runtime).
        let Ok(held) = holds.held.try_lock().map(|held| held.clone()) else {
            continue;
        };
        let users: Vec<i64> = held.users.keys().copied().collect();
        let (bytes, files, versions): (Vec<i64>, Vec<i64>, Vec<i64>) =
            held.users
                .values()
                .fold((vec![], vec![], vec![]), |(mut b, mut f, mut v), row| {
                    b.push(row.0);
                    f.push(row.1);
                    v.push(row.2);
                    (b, f, v)
                });
        // Released holds go only if no newer write made them hold again.
        let renewed = sqlx::query(
            "WITH gone AS (DELETE FROM gh_quota_holds WHERE holder = $1 \
                 AND user_id <> ALL($2::int8[]) AND version <= $6) \
             INSERT INTO gh_quota_holds (user_id, holder, bytes, files, version) \
             SELECT user_id, $1, bytes, files, version \
             FROM UNNEST($2::int8[], $3::int8[], $4::int8[], $5::int8[]) \
                 AS h(user_id, bytes, files, version) \
             ON CONFLICT (user_id, holder) DO UPDATE SET bytes = excluded.bytes, \
             files = excluded.files, version = excluded.version, renewed_at = now() \
             WHERE gh_quota_holds.version <= excluded.version",
        )
        .bind(&holds.holder)
        .bind(&users)
        .bind(&bytes)
        .bind(&files)
        .bind(&versions)
        .bind(held.version)
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
