//! Backups: taken from the running daemon in the middle of a 10,000-user
//! import, restored into an empty directory and verified; taken offline;
//! refused when damaged or aimed at a used directory; root's alone; and
//! `gatehouse verify` finding an index that drifted.

use crate::harness::{Daemon, id};
use crate::process::Process;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

const IMPORTED: usize = 10_000;

fn gatehouse(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_DATA_DIR", data_dir)
        .output()
        .expect("gatehouse runs")
}

fn ok(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// Users whose login starts with `bulk` on a running process.
async fn bulk_users(process: &Process, token: &str) -> usize {
    let client = reqwest::Client::new();
    let mut count = 0;
    let mut cursor: Option<u64> = None;
    loop {
        let mut query = vec![("q", "bulk".to_owned()), ("limit", "1000".to_owned())];
        query.extend(cursor.map(|c| ("cursor", c.to_string())));
        let page: Value = client
            .get(format!("{}/api/v1/users", process.base))
            .query(&query)
            .bearer_auth(token)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        count += page["users"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = Some(next),
            None => return count,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_an_import_restores_to_a_consistent_state() {
    let d = Daemon::start().await;
    let mut csv = String::from("user.login,user.email\n");
    for n in 0..IMPORTED {
        csv.push_str(&format!("bulk{n},bulk{n}@example.org\n"));
    }
    let import = {
        let (base, root) = (d.base.clone(), d.root.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/users/import?mode=add"))
                .bearer_auth(root)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .expect("import")
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("live.backup");
    let token_file = dir.path().join("root.token");
    std::fs::write(&token_file, &d.root).expect("token file");
    let taken = gatehouse(
        dir.path(),
        &[
            "backup",
            "--out",
            file.to_str().expect("path"),
            "--url",
            &d.base,
            "--token-file",
            token_file.to_str().expect("path"),
        ],
    );
    ok(&taken);
    assert_eq!(import.await.expect("import task"), 200);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let restored = dir.path().join("restored");
    ok(&gatehouse(
        &restored,
        &["restore", file.to_str().expect("path")],
    ));
    ok(&gatehouse(&restored, &["verify"]));
    let process = Process::start(&restored, "warn");
    let count = bulk_users(&process, &d.root).await;
    assert!(
        count == 0 || count == IMPORTED,
        "the import is all or nothing in the backup: {count}"
    );
    eprintln!("the backup held {count} of the {IMPORTED} imported users");
    drop(process);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_backups_restore_whole_and_damage_is_refused() {
    let d = Daemon::start().await;
    let kept = id(&d.create(json!({ "login": "kept", "email": "kept@example.org", "password": crate::harness::PASSWORD })).await);
    let (_, admin_token) = d.user_with_roles("ops", &["admin"]).await;
    let (status, _) = d.get("/api/v1/backup", &admin_token).await;
    assert_eq!(status, 403, "a backup holds the sealing key: root's alone");
    let root = d.root.clone();
    let config = d.config.clone();
    let (dir, _cluster) = d.stop_keeping_store().await;
    let data = dir.path().join("data");
    let file = dir.path().join("offline.backup");
    let taken = crate::harness::offline_cli(&config)
        .args(["backup", "--out", file.to_str().expect("path")])
        .output()
        .expect("gatehouse runs");
    ok(&taken);

    // Restoring over a used data directory is refused (on PostgreSQL the
    // data directory holds no store to restore over).
    if !crate::harness::on_postgres() {
        let refused = gatehouse(&data, &["restore", file.to_str().expect("path")]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("empty data directory"));
    }
    // A damaged file is refused before anything is written.
    let mut bytes = std::fs::read(&file).expect("backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    let damaged = dir.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).expect("write");
    let elsewhere = dir.path().join("elsewhere");
    let refused = gatehouse(&elsewhere, &["restore", damaged.to_str().expect("path")]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("damaged"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!elsewhere.join("store").exists(), "nothing written");

    let restored = dir.path().join("restored");
    ok(&gatehouse(
        &restored,
        &["restore", file.to_str().expect("path")],
    ));
    let process = Process::start(&restored, "warn");
    let client = reqwest::Client::new();
    let user: Value = client
        .get(format!("{}/api/v1/users/{kept}", process.base))
        .bearer_auth(&root)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(user["login"], "kept");
    let login = client
        .post(format!("{}/api/v1/login", process.base))
        .json(&json!({ "login": "kept", "password": crate::harness::PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "passwords came along");
    let audit = process.get_json("/api/v1/audit?limit=5", &root).await;
    let entries = audit["entries"].as_array().expect("entries");
    let audited = entries.iter().any(|e| e["action"] == "store.backup");
    assert!(audited, "a backup is audited: {audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_an_index_that_drifted() {
    let d = Daemon::start().await;
    d.user("real").await;
    let dir = d.stop().await;
    let data = dir.path().join("data");
    ok(&gatehouse(&data, &["verify"]));
    {
        let db = sled::open(data.join("store")).expect("store");
        let logins = db.open_tree("idx_login").expect("tree");
        logins
            .insert("ghost", &999u64.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }
    // sled lets go of its lock a moment after the drop.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let found = gatehouse(&data, &["verify"]);
    assert!(!found.status.success(), "drift makes verify fail");
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert!(stdout.contains("`ghost` -> 999"), "{stdout}");
}
