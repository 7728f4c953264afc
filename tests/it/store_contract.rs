//! The store seam's promises, checked the same way on both stores (sled in
//! a temp dir, PostgreSQL in a private cluster): a unit commits whole or not
//! at all, sees its own writes, keeps unique indexes, hands out ids once,
//! pages the audit trail newest first, keeps images apart, and leaves no
//! index drift.

use crate::postgres::Cluster;
use chrono::{TimeZone, Utc};
use gatehouse::domain::audit::{AuditAction, AuditEntry};
use gatehouse::domain::names::Login;
use gatehouse::domain::user::{Status, User, UserType};
use gatehouse::store::{Decision, PostgresStore, Store, StoreError};

fn user(id: u64, login: &str) -> User {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let mut user = User::new(id, UserType::Local, Status::Active, now);
    user.login = Some(Login::parse(login).expect("login"));
    user
}

/// Every promise, on `store`.
fn keeps_its_promises(store: &(dyn Store + 'static)) {
    // Committed whole, and read back by id and by login (case-insensitively).
    let (_, commit) = store
        .write(|unit| {
            let first = unit.next_id("user")?;
            let second = unit.next_id("user")?;
            assert_eq!(second, first + 1, "ids are handed out once");
            unit.put_user(&user(first, "Ranger"))?;
            assert!(unit.user(first)?.is_some(), "a unit reads its own writes");
            unit.put_user(&user(second, "warden"))?;
            unit.append_audit(AuditEntry {
                id: 0,
                at: Utc::now(),
                actor: None,
                action: AuditAction::UserCreate,
                target: Some(first),
                details: serde_json::json!({}),
            })
        })
        .expect("commit");
    store.wait_durable(commit).expect("durable");
    let snapshot = store.snapshot();
    let ranger = snapshot
        .user_id_by_login("RANGER")
        .expect("read")
        .expect("indexed");
    assert!(snapshot.user(ranger).expect("read").is_some());

    // A unit that fails leaves nothing behind, not even its first write.
    let failed: Result<((), _), StoreError> = store.write(|unit| {
        unit.put_user(&user(900, "halfway"))?;
        unit.put_user(&user(901, "ranger"))
    });
    assert!(matches!(
        failed,
        Err(StoreError::Duplicate { field: "login" })
    ));
    let snapshot = store.snapshot();
    assert!(
        snapshot.user(900).expect("read").is_none(),
        "nothing half-applied"
    );
    assert!(
        snapshot
            .user_id_by_login("halfway")
            .expect("read")
            .is_none()
    );

    // A rollback decided by the unit writes nothing either.
    let commit = store
        .transact(&mut |unit| {
            let _ = unit.put_user(&user(902, "rolled"));
            Decision::Rollback
        })
        .expect("transact");
    store.wait_durable(commit).expect("durable");
    assert!(store.snapshot().user(902).expect("read").is_none());

    // The audit trail pages newest first.
    for n in 0..5 {
        let (_, commit) = store
            .write(|unit| {
                unit.append_audit(AuditEntry {
                    id: 0,
                    at: Utc::now(),
                    actor: None,
                    action: AuditAction::UserUpdate,
                    target: Some(n),
                    details: serde_json::json!({}),
                })
            })
            .expect("audit");
        store.wait_durable(commit).expect("durable");
    }
    let page = store.audit_page(None, 3).expect("audit page");
    assert_eq!(page.len(), 3);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let older = store.audit_page(Some(page[2].id), 10).expect("older page");
    assert_eq!(older.len(), 3, "the rest: two updates and the create");

    // Removing a user frees its login.
    let (_, commit) = store
        .write(|unit| {
            let ranger = unit.user(ranger)?.expect("ranger");
            unit.remove_user(&ranger)?;
            unit.put_user(&user(903, "ranger"))
        })
        .expect("login reused");
    store.wait_durable(commit).expect("durable");
    assert_eq!(store.verify().expect("verify"), Vec::<String>::new());
}

#[test]
fn the_sled_store_keeps_its_promises() {
    let dir = tempfile::tempdir().expect("dir");
    let store = gatehouse::store::sled::SledStore::open(dir.path(), 1 << 20).expect("open");
    keeps_its_promises(&store);
}

#[test]
fn the_postgres_store_keeps_its_promises() {
    let cluster = Cluster::start();
    let url = cluster.database();
    let options = crate::postgres::store_options(&url, 4);
    let store = PostgresStore::open(&options).expect("open");
    keeps_its_promises(&store);
    drop(store);
    // Opened again, the state is the database's, not a leftover in memory.
    let reopened = PostgresStore::open(&options).expect("reopen");
    let snapshot = reopened.snapshot();
    assert!(snapshot.user_id_by_login("warden").expect("read").is_some());
    assert!(
        snapshot
            .user_id_by_login("halfway")
            .expect("read")
            .is_none()
    );
    assert_eq!(reopened.verify().expect("verify"), Vec::<String>::new());
}

#[test]
fn a_postgres_mirror_notices_the_database_went_back_in_time() {
    let cluster = Cluster::start();
    let url = cluster.database();
    let options = crate::postgres::store_options(&url, 2);
    let put = |store: &(dyn Store + 'static), id: u64, login: &str| {
        let (_, commit) = store
            .write(|unit| unit.put_user(&user(id, login)))
            .expect("write");
        store.wait_durable(commit).expect("durable");
    };
    let first = PostgresStore::open(&options).expect("open");
    put(&first, 10, "kept");
    // A base backup here; the daemon then commits once more.
    crate::postgres::query(
        &url,
        "CREATE TABLE saved_entries AS SELECT * FROM gh_entries; \
         CREATE TABLE saved_commits AS SELECT * FROM gh_commits",
    );
    put(&first, 11, "lost");
    // The database is restored to the backup, and another daemon commits
    // over it, reaching the same commit number with other writes.
    crate::postgres::query(
        &url,
        "TRUNCATE gh_entries, gh_commits; \
         INSERT INTO gh_entries SELECT * FROM saved_entries; \
         INSERT INTO gh_commits SELECT * FROM saved_commits",
    );
    let second = PostgresStore::open(&options).expect("open");
    put(&second, 12, "other");
    // The first daemon's next unit sees its last commit is not the
    // database's any more, reloads, and writes over the real state.
    put(&first, 13, "after");
    let snapshot = first.snapshot();
    assert!(
        snapshot.user(11).expect("read").is_none(),
        "no phantom of the lost commit"
    );
    assert!(
        snapshot.user(12).expect("read").is_some(),
        "the other daemon's commit"
    );
    assert!(snapshot.user(13).expect("read").is_some());
    assert_eq!(first.verify().expect("verify"), Vec::<String>::new());
}

#[test]
fn acknowledged_postgres_commits_survive_a_database_crash() {
    let cluster = Cluster::start_private_for_crash();
    let url = cluster.database();
    let options = crate::postgres::store_options(&url, 8);
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(PostgresStore::open(&options).expect("open"));
    // Eight writers; each write counts once wait_durable returned for it.
    let writers: Vec<_> = (0..8u64)
        .map(|writer| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..40u64)
                    .map(|n| {
                        let id = 1_000 + writer * 100 + n;
                        let (_, commit) = store
                            .write(|unit| unit.put_user(&user(id, &format!("crash{id}"))))
                            .expect("write");
                        store.wait_durable(commit).expect("durable");
                        id
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let acknowledged: Vec<u64> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("writer"))
        .collect();
    cluster.crash_and_restart();
    drop(store);
    let reopened = PostgresStore::open(&options).expect("reopen after the crash");
    let snapshot = reopened.snapshot();
    let missing: Vec<u64> = acknowledged
        .iter()
        .copied()
        .filter(|id| snapshot.user(*id).ok().flatten().is_none())
        .collect();
    assert_eq!(acknowledged.len(), 320);
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
