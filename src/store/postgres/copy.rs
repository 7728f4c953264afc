//! `gatehouse migrate-store`: copies an embedded sled store into a PostgreSQL
//! database, tree by tree in key order, in batches that each commit with the
//! point reached, so a copy that stopped (crash, lost connection) resumes
//! there. It ends by comparing every tree on both sides (entry counts and a
//! digest of all keys and values) and checking every index of the copy.

use super::bridge::Bridge;
use super::rows::{self, tree_code};
use super::{PostgresOptions, PostgresStore};
use crate::store::mirror::{TreeId, codec};
use crate::store::sled::SledStore;
use crate::store::{Store, StoreError};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::str::FromStr;

/// Advisory lock held by the one `migrate-store` copying into a database.
const COPY_LOCK: i64 = 0x6761_7465_0003;
/// Entries written per batch (and per progress report).
const BATCH: usize = 5_000;

/// What a copy did and found.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Entries copied by this run (not those a previous run had copied).
    pub copied: u64,
    /// Entries in the source, all trees.
    pub entries: u64,
    /// Trees whose count or digest differs, and index drift in the copy.
    pub problems: Vec<String>,
}

/// Copies `source` into the database at `options.url`; `progress` hears of
/// each batch (tree name, entries of that tree copied so far).
pub fn sled_to_postgres(
    source: &SledStore,
    options: &PostgresOptions,
    progress: &dyn Fn(&str, u64),
) -> Result<CopyReport, StoreError> {
    let bridge = Bridge::new()?;
    let connect = sqlx::postgres::PgConnectOptions::from_str(&options.url)?;
    let pool = bridge.run(async move {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect)
            .await?;
        rows::migrate(&pool).await?;
        Ok::<_, StoreError>(pool)
    })??;
    // One copy at a time: the lock is held by this connection until the end.
    let lock_pool = pool.clone();
    let (lock, locked) = bridge.run(async move {
        let mut conn = lock_pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(COPY_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>((conn, locked))
    })??;
    let _lock = super::bridge::Held::new(lock, bridge.handle());
    if !locked {
        return Err(StoreError::Unsupported(
            "another migrate-store is copying into this database",
        ));
    }
    refuse_a_live_directory(&bridge, &pool)?;
    let mut report = CopyReport::default();
    clear_done(&bridge, &pool)?;
    for (tree, name) in codec::ALL_TREES
        .iter()
        .map(|tree| (*tree, tree_name(*tree)))
    {
        let resume = {
            let pool = pool.clone();
            bridge.run(async move { resume_point(&pool, tree).await })??
        };
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        let mut done = 0u64;
        let entries = match &resume {
            Some(last) => source.tree(tree).range::<&[u8], _>((
                std::ops::Bound::Excluded(last.as_slice()),
                std::ops::Bound::Unbounded,
            )),
            None => source.tree(tree).iter(),
        };
        for entry in entries {
            let (key, value) = entry?;
            batch.push((key.to_vec(), value.to_vec()));
            if batch.len() == BATCH {
                done += write_batch(&bridge, &pool, tree, std::mem::take(&mut batch))?;
                progress(name, done);
            }
        }
        done += write_batch(&bridge, &pool, tree, batch)?;
        progress(name, done);
        report.copied += done;
    }
    for tree in codec::ALL_TREES {
        let (count, digest) = source_digest(source, tree)?;
        report.entries += u64::try_from(count).unwrap_or_default();
        let pool = pool.clone();
        let (copied, copied_digest) =
            bridge.run(async move { target_digest(&pool, tree).await })??;
        if (count, digest) != (copied, copied_digest) {
            report.problems.push(format!(
                "{}: {count} entries in sled, {copied} in PostgreSQL{}",
                tree_name(tree),
                if count == copied {
                    ", with different content"
                } else {
                    ""
                }
            ));
        }
    }
    let copy = PostgresStore::open_as(options, true)?;
    report.problems.extend(copy.verify()?);
    drop(copy);
    // Only a verified copy is marked finished, and only then may daemons use it.
    let done = if report.problems.is_empty() {
        "INSERT INTO gh_copy_progress (tree, last_key) VALUES ($1, '') ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM gh_copy_progress WHERE tree = $1"
    };
    bridge.run(async move { sqlx::query(done).bind(rows::COPY_DONE).execute(&pool).await })??;
    Ok(report)
}

fn tree_name(tree: TreeId) -> &'static str {
    crate::store::mirror::TREE_NAMES[tree as usize]
}

/// A database that daemons already write to (it has commits) and no copy
/// under way is not a target.
fn refuse_a_live_directory(bridge: &Bridge, pool: &PgPool) -> Result<(), StoreError> {
    let pool = pool.clone();
    let (commits, copying, entries): (i64, i64, i64) = bridge.run(async move {
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM gh_commits), \
                    (SELECT count(*) FROM gh_copy_progress), \
                    (SELECT count(*) FROM gh_entries)",
        )
        .fetch_one(&pool)
        .await
    })??;
    if commits > 0 || (entries > 0 && copying == 0) {
        return Err(StoreError::Unsupported(
            "the target database already holds a directory; copy into an empty one",
        ));
    }
    Ok(())
}

/// A copy run again is unfinished until it verifies again.
fn clear_done(bridge: &Bridge, pool: &PgPool) -> Result<(), StoreError> {
    let pool = pool.clone();
    bridge.run(async move {
        sqlx::query("DELETE FROM gh_copy_progress WHERE tree = $1")
            .bind(rows::COPY_DONE)
            .execute(&pool)
            .await
    })??;
    Ok(())
}

async fn resume_point(pool: &PgPool, tree: TreeId) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_key FROM gh_copy_progress WHERE tree = $1")
        .bind(tree_code(tree))
        .fetch_optional(pool)
        .await
}

/// Writes one batch and the point it reaches, in one transaction.
fn write_batch(
    bridge: &Bridge,
    pool: &PgPool,
    tree: TreeId,
    batch: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<u64, StoreError> {
    let Some(last) = batch.last().map(|(key, _)| key.clone()) else {
        return Ok(0);
    };
    let count = batch.len() as u64;
    let pool = pool.clone();
    bridge.run(async move {
        let (keys, values): (Vec<Vec<u8>>, Vec<Vec<u8>>) = batch.into_iter().unzip();
        let trees = vec![tree_code(tree); keys.len()];
        let mut transaction = pool.begin().await?;
        sqlx::query(
            "INSERT INTO gh_entries (tree, key, value) \
             SELECT * FROM UNNEST($1::int2[], $2::bytea[], $3::bytea[]) \
             ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
        )
        .bind(trees)
        .bind(keys)
        .bind(values)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO gh_copy_progress (tree, last_key) VALUES ($1, $2) \
             ON CONFLICT (tree) DO UPDATE SET last_key = excluded.last_key",
        )
        .bind(tree_code(tree))
        .bind(last)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await
    })??;
    Ok(count)
}

/// Feeds one entry into a tree digest (lengths first, so entries cannot run
/// into each other).
fn digest_entry(digest: &mut Sha256, key: &[u8], value: &[u8]) {
    digest.update((key.len() as u64).to_be_bytes());
    digest.update(key);
    digest.update((value.len() as u64).to_be_bytes());
    digest.update(value);
}

fn source_digest(source: &SledStore, tree: TreeId) -> Result<(i64, Vec<u8>), StoreError> {
    let mut digest = Sha256::new();
    let mut count = 0;
    for entry in source.tree(tree).iter() {
        let (key, value) = entry?;
        digest_entry(&mut digest, &key, &value);
        count += 1;
    }
    Ok((count, digest.finalize().to_vec()))
}

/// The same digest over the copy, read in key order (bytea sorts as bytes).
async fn target_digest(pool: &PgPool, tree: TreeId) -> Result<(i64, Vec<u8>), sqlx::Error> {
    let mut digest = Sha256::new();
    let mut count = 0;
    let mut rows = sqlx::query_as::<_, (Vec<u8>, Vec<u8>)>(
        "SELECT key, value FROM gh_entries WHERE tree = $1 ORDER BY key",
    )
    .bind(tree_code(tree))
    .fetch(pool);
    while let Some((key, value)) = rows.try_next().await? {
        digest_entry(&mut digest, &key, &value);
        count += 1;
    }
    Ok((count, digest.finalize().to_vec()))
}
