//! Schema versions and the migrations between them. Each migration runs as one
//! unit of work when the store opens, before anything reads typed records.

use super::reads::RawRead;
use super::tx::Tx;
use super::{SledStore, TreeId, keys};
use crate::domain::names::Login;
use crate::domain::user::User;
use crate::store::{Decision, Store, StoreError, UserWrites};
use serde_json::Value;
use sled::IVec;

/// The schema this build writes; older stores are migrated on open.
pub const SCHEMA_VERSION: u64 = 2;

/// Rewrites stored records from one schema version to the next.
type Migration = fn(&SledStore, &Tx) -> Result<(), StoreError>;

/// Migrations from version N to N+1, indexed by N-1.
const MIGRATIONS: [Migration; 1] = [v2_logins_indexes_and_counters];

pub(super) fn run(store: &SledStore) -> Result<(), StoreError> {
    let found = store.schema_version();
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for version in found.max(1)..SCHEMA_VERSION {
        let migration = MIGRATIONS[(version - 1) as usize];
        step(store, |tx| migration(store, tx), version + 1)?;
    }
    if found == 0 {
        step(store, |_| Ok(()), SCHEMA_VERSION)?;
    }
    tracing::info!(from = found, to = SCHEMA_VERSION, "store schema migrated");
    Ok(())
}

/// Runs one migration and records the version it reaches, durably.
fn step(
    store: &SledStore,
    migration: impl Fn(&Tx) -> Result<(), StoreError>,
    reaches: u64,
) -> Result<(), StoreError> {
    let mut failure = None;
    let commit = store.run(&mut |tx| match migration(tx) {
        Ok(()) => {
            tx.set_schema_version(reaches);
            Decision::Commit
        }
        Err(error) => {
            failure = Some(error);
            Decision::Rollback
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => store.wait_durable(commit),
    }
}

/// Version 2: logins are NFKC-normalised and validated (a login that is no
/// longer valid, such as `..`, becomes `user-<id>`); the name indexes are
/// rebuilt with the new folding; the active-admin index and the audit counter
/// are created; users are rewritten in the compact encoding.
fn v2_logins_indexes_and_counters(store: &SledStore, tx: &Tx) -> Result<(), StoreError> {
    for tree in [
        TreeId::Logins,
        TreeId::Emails,
        TreeId::References,
        TreeId::ActiveAdmins,
    ] {
        tx.clear(tree);
    }
    for (key, raw) in tx.raw_scan(TreeId::Users, &[]) {
        let mut value: Value = serde_json::from_slice(&raw)?;
        let id = keys::decode_u64(&key);
        if let Some(login) = value.get("login").and_then(Value::as_str) {
            let migrated = Login::parse(login)
                .map(String::from)
                .unwrap_or_else(|_| format!("user-{id}"));
            value["login"] = Value::String(migrated);
        }
        let user: User = serde_json::from_value(value)?;
        tx.forget(TreeId::Users, &key);
        if let Err(StoreError::Duplicate { field }) = tx.put_user(&user) {
            tracing::warn!(user = id, field, "duplicate after normalisation: renamed");
            let mut renamed = user.clone();
            renamed.login = Login::parse(&format!("user-{id}")).ok();
            if field == "email" {
                renamed.email = None;
            }
            tx.put_user(&renamed)?;
        }
    }
    let audit = &store.trees[TreeId::Audit as usize];
    let next_audit = audit
        .last()?
        .map_or(1, |(key, _)| keys::decode_u64(&key) + 1);
    tx.set_counter("audit", next_audit);
    Ok(())
}

impl Tx<'_> {
    /// Stages the removal of a raw entry (so a rewrite does not read the old one).
    fn forget(&self, tree: TreeId, key: &IVec) {
        self.stage_raw(tree, key, None);
    }

    fn set_counter(&self, name: &str, next: u64) {
        let key = keys::counter(name);
        self.stage_raw(
            TreeId::Meta,
            key.as_bytes(),
            Some(IVec::from(&keys::id(next))),
        );
    }
}
