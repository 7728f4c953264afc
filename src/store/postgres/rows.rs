//! The SQL of the store: the embedded migrations, the writer lock, rows of
//! trees, the commit log, and loading the mirror.

use super::state::Position;
use crate::store::StoreError;
use crate::store::mirror::packed::Change;
use crate::store::mirror::tx::WriteSet;
use crate::store::mirror::{MIRRORED_TREES, TreeId, codec};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{PgConnection, PgPool};
use std::borrow::Cow;

/// Advisory lock taken by every unit of work, on every daemon.
pub(super) const WRITER_LOCK: i64 = 0x6761_7465_0001;
/// Advisory lock held by the daemon that runs the scheduled jobs.
pub(super) const LEADER_LOCK: i64 = 0x6761_7465_0002;
/// The channel a commit is announced on (its sequence number as payload).
pub(super) const CHANNEL: &str = "gatehouse_commits";
/// Commits kept in the log; a daemon further behind reloads its mirror.
const KEPT_COMMITS: i64 = 10_000;
/// Rows written per statement.
const BATCH: usize = 5_000;

/// The schema, embedded; sqlx runs what is missing under its own advisory
/// lock, so daemons starting together migrate once.
pub(super) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let migrator = Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("store"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../../migrations/postgres/0001_store.sql")),
            false,
        )]),
        ..Migrator::DEFAULT
    };
    migrator
        .run(pool)
        .await
        .map_err(|error| StoreError::Durability(format!("migrating the database: {error}")))
}

/// Commits read from the log at a time.
pub(super) const PAGE: usize = 1_000;

/// The commit `from` (the mirror's last, to check it is still the same) and
/// up to [`PAGE`] after it, in order: (sequence number, encoded writes).
pub(super) async fn commits_from(
    conn: &mut PgConnection,
    from: i64,
) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT seq, writes FROM gh_commits WHERE seq >= $1 ORDER BY seq LIMIT $2")
        .bind(from)
        .bind(PAGE as i64 + 1)
        .fetch_all(conn)
        .await
}

/// A tree's code as stored.
pub(super) fn tree_code(tree: TreeId) -> i16 {
    i16::from(codec::code(tree))
}

/// What the log keeps of a unit: its writes to the mirrored trees (images
/// and the audit trail are read from their rows, never mirrored).
pub(super) fn log_of(writes: &WriteSet) -> Vec<u8> {
    let mirrored: WriteSet = writes
        .iter()
        .filter(|((tree, _), _)| (*tree as usize) < MIRRORED_TREES)
        .map(|(key, change)| (key.clone(), change.clone()))
        .collect();
    codec::encode(&mirrored)
}

/// A unit's writes as columns: upserts (tree, key, value) and removals
/// (tree, key).
#[derive(Default)]
pub(super) struct Columns {
    put_trees: Vec<i16>,
    put_keys: Vec<Vec<u8>>,
    put_values: Vec<Vec<u8>>,
    gone_trees: Vec<i16>,
    gone_keys: Vec<Vec<u8>>,
}

impl Columns {
    fn of(writes: Vec<(TreeId, Vec<u8>, Change)>) -> Self {
        let mut columns = Self::default();
        for (tree, key, change) in writes {
            match change {
                Some(value) => {
                    columns.put_trees.push(tree_code(tree));
                    columns.put_keys.push(key);
                    columns.put_values.push(value.to_vec());
                }
                None => {
                    columns.gone_trees.push(tree_code(tree));
                    columns.gone_keys.push(key);
                }
            }
        }
        columns
    }
}

const UPSERT: &str = "INSERT INTO gh_entries (tree, key, value) \
     SELECT * FROM UNNEST($1::int2[], $2::bytea[], $3::bytea[]) \
     ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value";
const REMOVE: &str = "DELETE FROM gh_entries e \
     USING UNNEST($1::int2[], $2::bytea[]) AS gone(tree, key) \
     WHERE e.tree = gone.tree AND e.key = gone.key";

/// How a unit's writes reach the database.
pub(super) enum UnitSql {
    /// One simple query: rows, log entry, notice, COMMIT.
    Inline(String),
    /// Rows and the log entry written with bound parameters first (batches),
    /// then `tail` (notice, COMMIT).
    Large {
        columns: Columns,
        seq: i64,
        log: Vec<u8>,
        tail: String,
    },
}

/// Bytes of data above which a unit is written with bound parameters
/// rather than inlined (hex doubles them; a message must stay well small).
const INLINE_BYTES: usize = 4 << 20;

/// A bytea literal; hex digits only, so safe to inline.
fn bytea(bytes: &[u8]) -> String {
    format!("'\\x{}'", data_encoding::HEXLOWER.encode(bytes))
}

fn bytea_array(items: &[Vec<u8>]) -> String {
    let items: Vec<String> = items.iter().map(|item| bytea(item)).collect();
    format!("ARRAY[{}]::bytea[]", items.join(","))
}

fn int2_array(items: &[i16]) -> String {
    let items: Vec<String> = items.iter().map(i16::to_string).collect();
    format!("ARRAY[{}]::int2[]", items.join(","))
}

/// The SQL of commit `seq` of `writes`, logged as `log`. An ordinary unit is
/// one round trip; data is inlined as hex (nothing else is inlined but
/// numbers), so no value can change the statement.
pub(super) fn unit_sql(seq: i64, writes: Vec<(TreeId, Vec<u8>, Change)>, log: Vec<u8>) -> UnitSql {
    let columns = Columns::of(writes);
    let prune = match seq % 1_000 {
        0 => format!(
            "DELETE FROM gh_commits WHERE seq <= {};",
            seq - KEPT_COMMITS
        ),
        _ => String::new(),
    };
    let notice = format!("{prune} SELECT pg_notify('{CHANNEL}', '{seq}'); COMMIT");
    let bytes: usize = log.len()
        + columns
            .put_keys
            .iter()
            .chain(&columns.put_values)
            .chain(&columns.gone_keys)
            .map(Vec::len)
            .sum::<usize>();
    if columns.put_trees.len() > BATCH || columns.gone_trees.len() > BATCH || bytes > INLINE_BYTES {
        return UnitSql::Large {
            columns,
            seq,
            log,
            tail: notice,
        };
    }
    let mut rows = String::new();
    if !columns.put_trees.is_empty() {
        rows.push_str(&format!(
            "INSERT INTO gh_entries (tree, key, value) SELECT * FROM UNNEST({}, {}, {}) \
             ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value; ",
            int2_array(&columns.put_trees),
            bytea_array(&columns.put_keys),
            bytea_array(&columns.put_values)
        ));
    }
    if !columns.gone_trees.is_empty() {
        rows.push_str(&format!(
            "DELETE FROM gh_entries e USING UNNEST({}, {}) AS gone(tree, key) \
             WHERE e.tree = gone.tree AND e.key = gone.key; ",
            int2_array(&columns.gone_trees),
            bytea_array(&columns.gone_keys)
        ));
    }
    UnitSql::Inline(format!(
        "{rows}INSERT INTO gh_commits (seq, writes) VALUES ({seq}, {}); {notice}",
        bytea(&log)
    ))
}

/// Writes a large unit's rows in batches, and its log entry, with bound
/// parameters.
pub(super) async fn write_batched(
    conn: &mut PgConnection,
    columns: &Columns,
    seq: i64,
    log: &[u8],
) -> Result<(), sqlx::Error> {
    for start in (0..columns.put_trees.len()).step_by(BATCH) {
        let end = (start + BATCH).min(columns.put_trees.len());
        sqlx::query(UPSERT)
            .bind(&columns.put_trees[start..end])
            .bind(&columns.put_keys[start..end])
            .bind(&columns.put_values[start..end])
            .execute(&mut *conn)
            .await?;
    }
    for start in (0..columns.gone_trees.len()).step_by(BATCH) {
        let end = (start + BATCH).min(columns.gone_trees.len());
        sqlx::query(REMOVE)
            .bind(&columns.gone_trees[start..end])
            .bind(&columns.gone_keys[start..end])
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("INSERT INTO gh_commits (seq, writes) VALUES ($1, $2)")
        .bind(seq)
        .bind(log)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every entry of the mirrored trees and the last commit they include, read
/// in one repeatable-read transaction.
pub(super) async fn load_mirror(
    pool: &PgPool,
) -> Result<(Vec<(TreeId, Vec<u8>, Vec<u8>)>, Position), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *transaction)
        .await?;
    let last: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, writes FROM gh_commits ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *transaction)
            .await?;
    let position = last.map_or_else(Position::default, |(seq, writes)| {
        Position::of(seq, &writes)
    });
    let codes: Vec<i16> = codec::ALL_TREES
        .iter()
        .filter(|tree| (**tree as usize) < MIRRORED_TREES)
        .map(|tree| tree_code(*tree))
        .collect();
    let rows: Vec<(i16, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT tree, key, value FROM gh_entries WHERE tree = ANY($1)")
            .bind(codes)
            .fetch_all(&mut *transaction)
            .await?;
    transaction.commit().await?;
    let entries = rows
        .into_iter()
        .filter_map(|(code, key, value)| {
            let tree = u8::try_from(code).ok().and_then(codec::tree_of)?;
            Some((tree, key, value))
        })
        .collect();
    Ok((entries, position))
}

/// The value of one entry of a tree that is not mirrored (audit, media).
pub(super) async fn entry(
    pool: &PgPool,
    tree: TreeId,
    key: Vec<u8>,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM gh_entries WHERE tree = $1 AND key = $2")
        .bind(tree_code(tree))
        .bind(key)
        .fetch_optional(pool)
        .await
}

/// Up to `limit` entries of `tree` after `after` and below `below` (either
/// open when `None`), in key order.
pub(super) async fn entries_between(
    pool: &PgPool,
    tree: TreeId,
    after: Option<Vec<u8>>,
    below: Option<Vec<u8>>,
    limit: i64,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key, value FROM gh_entries WHERE tree = $1 \
         AND ($2::bytea IS NULL OR key > $2) AND ($3::bytea IS NULL OR key < $3) \
         ORDER BY key LIMIT $4",
    )
    .bind(tree_code(tree))
    .bind(after)
    .bind(below)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Up to `limit` entries of `tree` below `before` (all when `None`), last first.
pub(super) async fn entries_before(
    pool: &PgPool,
    tree: TreeId,
    before: Option<Vec<u8>>,
    limit: i64,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT value FROM gh_entries WHERE tree = $1 AND ($2::bytea IS NULL OR key < $2) \
         ORDER BY key DESC LIMIT $3",
    )
    .bind(tree_code(tree))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The tree code `migrate-store` marks a finished, verified copy with.
pub(super) const COPY_DONE: i16 = -1;

/// Whether `migrate-store` began copying into this database and has not
/// finished (a daemon must not serve half a directory).
pub(super) async fn copy_unfinished(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let (started, done): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE tree >= 0), count(*) FILTER (WHERE tree = $1) \
         FROM gh_copy_progress",
    )
    .bind(COPY_DONE)
    .fetch_one(pool)
    .await?;
    Ok(started > 0 && done == 0)
}
