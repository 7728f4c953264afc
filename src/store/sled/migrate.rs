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

use super::SCHEMA_VERSION;

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
/// longer valid, such as `..`, becomes `user-<id>` and loses its FTP home,
/// which was named by it); the name indexes are
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
            let migrated = match Login::parse(login) {
                Ok(valid) => String::from(valid),
                Err(_) => {
                    // Its FTP home was named by the login (`..` named the
                    // parent of the FTP root): the account is switched off and
                    // must be created anew under the new name.
                    tracing::warn!(user = id, "invalid login renamed; FTP account disabled");
                    if let Some(ftp) = value.get_mut("ftp").and_then(Value::as_object_mut) {
                        ftp.insert("enabled".into(), Value::Bool(false));
                        ftp.insert("home".into(), Value::Null);
                    }
                    format!("user-{id}")
                }
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IdCounter, UserReads};

    /// Writes a store as schema version 1 left it: users with every field
    /// spelled out, a login (`..`) that is no longer valid, and audit ids from
    /// sled's own generator.
    fn version_one_store(dir: &std::path::Path) -> Result<(), sled::Error> {
        let db = sled::open(dir.join("store"))?;
        let users = db.open_tree("users")?;
        let logins = db.open_tree("idx_login")?;
        let user = |id: u64, login: &str, roles: &str| {
            format!(
                r#"{{"id":{id},"type":"local","status":"active","archived_at":null,"login":"{login}",
                "email":null,"first_name":null,"require_password_change":false,"address":{{}},
                "created_at":"2026-01-05T09:00:00Z","updated_at":"2026-01-05T09:00:00Z",
                "groups":[],"automatic_groups":[],"system_roles":{roles},"access":[]}}"#
            )
        };
        let dot_dot = user(7, "..", "[]").replace(
            r#""access":[]"#,
            r#""access":[],"ftp":{"enabled":true,"quota_mb":null,"used_bytes":0,"used_files":0,"home":"/srv/ftp/.."}"#,
        );
        users.insert(keys::id(7), dot_dot.as_bytes())?;
        users.insert(keys::id(8), user(8, "Ａda", r#"["admin"]"#).as_bytes())?;
        logins.insert("..", &keys::id(7))?;
        logins.insert("ａda", &keys::id(8))?;
        db.open_tree("audit")?.insert(keys::id(41), &b"{}"[..])?;
        db.open_tree("meta")?
            .insert(keys::SCHEMA_VERSION, &keys::id(1))?;
        db.flush()?;
        Ok(())
    }

    #[test]
    fn version_one_migrates_logins_indexes_and_counters() {
        let dir = tempfile::tempdir();
        let dir = dir
            .as_ref()
            .map(|d| d.path().to_owned())
            .unwrap_or_default();
        assert!(version_one_store(&dir).is_ok());
        let store = match SledStore::open(&dir, 1 << 20) {
            Ok(store) => store,
            Err(error) => panic!("migration failed: {error}"),
        };
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        let snapshot = store.snapshot.load_full();
        let login = |id| {
            snapshot
                .user(id)
                .ok()
                .flatten()
                .and_then(|u| u.login)
                .map(String::from)
        };
        assert_eq!(login(7).as_deref(), Some("user-7"));
        let ftp = snapshot.user(7).ok().flatten().map(|u| u.ftp);
        assert_eq!(ftp.map(|f| (f.enabled, f.home)), Some((false, None)));
        assert_eq!(login(8).as_deref(), Some("Ada"), "NFKC-normalised");
        assert_eq!(snapshot.user_id_by_login("USER-7").ok().flatten(), Some(7));
        assert_eq!(snapshot.user_id_by_login("ada").ok().flatten(), Some(8));
        assert_eq!(snapshot.user_id_by_login("..").ok().flatten(), None);
        assert_eq!(snapshot.active_admins().ok(), Some(vec![8]));
        let mut next_audit = 0;
        let commit = store.run(&mut |tx| {
            next_audit = tx.next_id("audit").unwrap_or_default();
            Decision::Commit
        });
        assert!(commit.is_ok());
        assert_eq!(next_audit, 42, "audit ids continue after sled's");
        let stored = store.trees[TreeId::Users as usize].get(keys::id(7));
        let stored = stored
            .ok()
            .flatten()
            .map(|raw| raw.len())
            .unwrap_or(usize::MAX);
        assert!(
            stored < 150,
            "users are rewritten compactly ({stored} bytes)"
        );
    }
}
