//! `gatehouse migrate-store`: an install on sled copied into PostgreSQL, a
//! copy that stopped half-way resumed, a tampered copy caught by the check,
//! and a daemon on the copy serving what the sled daemon served.

use crate::harness::{Daemon, PASSWORD, id};
use crate::postgres::{Cluster, query};
use serde_json::json;
use std::sync::Arc;

/// Runs `gatehouse migrate-store` from `data_dir` to `url`: (success, stdout, stderr).
fn migrate(data_dir: &std::path::Path, url: &str) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["migrate-store", "--from"])
        .arg(format!("sled:{}", data_dir.display()))
        .arg("--to")
        .arg(format!("postgres:{url}"))
        .output()
        .expect("gatehouse runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_sled_install_moves_to_postgres_resuming_and_verified() {
    let sled = Daemon::start_on_sled().await;
    for n in 0..30 {
        sled.user(&format!("station{n:02}")).await;
    }
    let (status, _) = sled
        .post("/api/v1/groups", &sled.root, json!({ "name": "rangers" }))
        .await;
    assert_eq!(status, 201);
    let (status, project) = sled
        .post("/api/v1/projects", &sled.root, json!({ "name": "Kiwi" }))
        .await;
    assert_eq!(status, 201, "{project}");
    let audit_before = sled.get("/api/v1/audit?limit=500", &sled.root).await.1;
    let users_before = sled.get("/api/v1/users?limit=500", &sled.root).await.1;
    let config = sled.config.clone();
    let _dir = sled.stop().await;

    let cluster = Arc::new(Cluster::start());
    let url = cluster.database();
    let (ok, stdout, stderr) = migrate(&config.data_dir, &url);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("every index matches"), "{stderr}");

    // As if the copy had stopped half-way through the users: the rest of the
    // users and every later tree missing, the progress pointing at the last
    // user written.
    query(
        &url,
        "UPDATE gh_copy_progress SET last_key = (SELECT key FROM gh_entries WHERE tree = 0 \
         ORDER BY key OFFSET 11 LIMIT 1) WHERE tree = 0; \
         DELETE FROM gh_entries WHERE tree = 0 AND key > (SELECT last_key FROM gh_copy_progress WHERE tree = 0); \
         DELETE FROM gh_entries WHERE tree > 0; DELETE FROM gh_copy_progress WHERE tree <> 0",
    );
    // No daemon serves half a directory.
    let options = crate::postgres::store_options(&url, 2);
    let refused = crate::postgres::refusal(options).await;
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("has not finished")),
        "{refused:?}"
    );
    let (ok, stdout, stderr) = migrate(&config.data_dir, &url);
    assert!(ok, "{stdout}{stderr}");
    // "N entries in the sled store, M copied by this run"
    let counts: Vec<u64> = stderr
        .lines()
        .find(|line| line.contains("entries in the sled store"))
        .unwrap_or_else(|| panic!("no counts in {stderr}"))
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (entries, copied) = (counts[0], counts[1]);
    assert!(
        copied > 0 && copied < entries,
        "the second run resumed: {stderr}"
    );

    // A copy that differs from its source is reported, and fails the run.
    query(
        &url,
        "UPDATE gh_entries SET value = value || '\\x20'::bytea \
         WHERE tree = 0 AND key = (SELECT key FROM gh_entries WHERE tree = 0 ORDER BY key DESC LIMIT 1)",
    );
    let (ok, stdout, _) = migrate(&config.data_dir, &url);
    assert!(!ok && stdout.contains("users: "), "{stdout}");
    query(
        &url,
        "UPDATE gh_entries SET value = substring(value FROM 1 FOR length(value) - 1) \
         WHERE tree = 0 AND key = (SELECT key FROM gh_entries WHERE tree = 0 ORDER BY key DESC LIMIT 1)",
    );
    // A failed check left the copy unfinished; run again, it verifies.
    let (ok, stdout, stderr) = migrate(&config.data_dir, &url);
    assert!(
        ok && stderr.contains(", 0 copied by this run"),
        "{stdout}{stderr}"
    );

    // A daemon on the copy serves the same directory.
    let pg = Daemon::start_on(cluster.clone(), |c| {
        c.data_dir = config.data_dir.clone();
        c.postgres.url = Some(gatehouse::config::Secret::new(url.clone()));
    })
    .await;
    let users_after = pg.get("/api/v1/users?limit=500", &pg.root).await.1;
    assert!(
        users_after["users"] == users_before["users"],
        "the users differ after the copy"
    );
    let audit_after = pg.get("/api/v1/audit?limit=500", &pg.root).await.1;
    assert!(
        audit_after["entries"] == audit_before["entries"]
            && audit_before["entries"]
                .as_array()
                .is_some_and(|e| e.len() > 30),
        "the audit trail differs after the copy"
    );
    assert_eq!(pg.login("station07", PASSWORD).await.0, 200);
    let created = pg.user("newcomer").await;
    assert!(
        users_before["users"]
            .as_array()
            .expect("users")
            .iter()
            .all(|u| id(u) < created),
        "ids go on from the copied counters"
    );
    assert_eq!(pg.get("/api/v1/groups", &pg.root).await.0, 200);
    // The copy is now a live directory: no second copy lands on it.
    let (ok, _, stderr) = migrate(&config.data_dir, &url);
    assert!(
        !ok && stderr.contains("already holds a directory"),
        "{stderr}"
    );
    pg.stop().await;
}
