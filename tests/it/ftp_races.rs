//! FTPS quota and sign-in promises under attack: uploads in flight that other
//! sessions cannot touch, sessions of one user racing over the same names,
//! REST far past the end, the file-count quota, lockouts answered with 421,
//! session caps, a remembered password forgotten when it changes, and homes
//! that reveal no login.

use crate::ftp::{ftp_state, home, uploader};
use crate::ftp_peers::{assert_ok, ftplib, ftplib_as};
use crate::harness::Daemon;
use serde_json::json;
use tokio::io::AsyncReadExt;

/// Asserts that the stored usage equals what is on disk (a rescan).
async fn usage_matches_disk(d: &Daemon, uid: u64) {
    let stored = ftp_state(d, uid).await;
    d.bulk("ftp-rescan", json!({ "ids": [uid] })).await;
    let disk = ftp_state(d, uid).await;
    assert_eq!(
        (&stored["used_bytes"], &stored["used_files"]),
        (&disk["used_bytes"], &disk["used_files"]),
        "stored usage {stored} differs from the disk {disk}"
    );
}

#[tokio::test]
async fn uploads_in_flight_are_untouchable_and_rest_past_the_end_is_refused() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "flight", Some(100)).await;
    assert_ok(&ftplib(&d, "in_flight", "flight", &[]).await, "in flight");
    usage_matches_disk(&d, uid).await;
    let sparse = std::fs::read_dir(home(&d, uid))
        .expect("home")
        .flatten()
        .any(|e| {
            e.metadata()
                .map(|m| m.len() > 10 * 1024 * 1024)
                .unwrap_or(true)
        });
    assert!(!sparse, "no sparse file was made by REST");
}

#[tokio::test]
async fn sessions_racing_over_the_same_names_keep_usage_exact() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "racers", Some(100)).await;
    assert_ok(&ftplib(&d, "racing", "racers", &["30"]).await, "racing");
    usage_matches_disk(&d, uid).await;
    crate::ftp::assert_nothing_staged(&d);
}

#[tokio::test]
async fn the_file_count_quota_holds() {
    let d = Daemon::start().await;
    let uid = d.user("counted").await;
    let reply = d
        .bulk(
            "create-ftp-accounts",
            json!({ "ids": [uid], "quota_files": 3 }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    assert_ok(
        &ftplib(&d, "file_quota", "counted", &[]).await,
        "file quota",
    );
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_files"], &state["quota_files"]),
        (&json!(3), &json!(3))
    );
    usage_matches_disk(&d, uid).await;
}

#[tokio::test]
async fn lockout_is_answered_with_421_and_sessions_are_capped() {
    let d = Daemon::start_with(|c| c.ftp.max_sessions_per_address = 3).await;
    uploader(&d, "locked", None).await;
    let allowed = d.config.signin.max_failures.to_string();
    assert_ok(
        &ftplib(&d, "lockout", "locked", &[&allowed]).await,
        "lockout",
    );

    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(&d.ftp)
            .await
            .expect("connect");
        let mut greeting = [0u8; 3];
        stream.read_exact(&mut greeting).await.expect("greeting");
        assert_eq!(&greeting, b"220");
        open.push(stream);
    }
    let mut fourth = tokio::net::TcpStream::connect(&d.ftp)
        .await
        .expect("connect");
    let mut reply = String::new();
    fourth.read_to_string(&mut reply).await.expect("reply");
    assert!(reply.starts_with("421"), "{reply}");
    drop(open);
    // The places come back once those sessions end.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut again = tokio::net::TcpStream::connect(&d.ftp)
        .await
        .expect("connect");
    let mut greeting = [0u8; 3];
    again.read_exact(&mut greeting).await.expect("greeting");
    assert_eq!(&greeting, b"220");
}

#[tokio::test]
async fn a_remembered_password_is_forgotten_when_it_or_the_account_changes() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "cached", None).await;
    assert_ok(&ftplib(&d, "sign_in", "cached", &[]).await, "first sign-in");
    let new_password = "another sound passphrase";
    let (status, body) = d
        .post(
            &format!("/api/v1/users/{uid}/password"),
            &d.root,
            json!({ "password": new_password }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // The old password was verified moments ago, but no longer is the password.
    let old = ftplib(&d, "sign_in", "cached", &["530"]).await;
    assert_ok(&old, "old password");
    let new = ftplib_as(&d, "sign_in", "cached", new_password, &["230"]).await;
    assert_ok(&new, "new password");
    let reply = d.bulk("deactivate", json!({ "ids": [uid] })).await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    let deactivated = ftplib_as(&d, "sign_in", "cached", new_password, &["530"]).await;
    assert_ok(&deactivated, "deactivated");
}

#[tokio::test]
async fn a_masked_uploader_leaves_no_login_in_paths_or_the_user_record() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "maskedname", None).await;
    assert_ok(&ftplib(&d, "sign_in", "maskedname", &[]).await, "sign-in");
    let reply = d.bulk("mask", json!({ "ids": [uid] })).await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    let (_, user) = d.get(&format!("/api/v1/users/{uid}"), &d.root).await;
    assert!(!user.to_string().contains("maskedname"), "{user}");
    let root = d.dir.path().join("data/ftp");
    let names: Vec<String> = std::fs::read_dir(&root)
        .expect("ftp root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("maskedname")), "{names:?}");
    assert!(home(&d, uid).is_dir());
}

#[tokio::test]
async fn abort_mid_transfer_keeps_nothing_partial() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "aborter", None).await;
    assert_ok(&ftplib(&d, "abort", "aborter", &[]).await, "abort");
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_files"], &state["used_bytes"]),
        (&json!(2), &json!(64 * 1024 * 1024 + 100_000))
    );
    usage_matches_disk(&d, uid).await;
}

/// Signs in with the scenario `signed_out`, runs `change` once it is in,
/// and expects the session's next command to end it with 421.
async fn session_ends_after(
    d: &Daemon,
    login: &str,
    change: impl std::future::Future<Output = ()>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (host, port) = d.ftp.split_once(':').expect("host:port");
    let mut child = tokio::process::Command::new("python3")
        .args([
            &crate::ftp_peers::script(),
            "signed_out",
            host,
            port,
            login,
            crate::harness::PASSWORD,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    assert_eq!(
        lines.next_line().await.ok().flatten().as_deref(),
        Some("ready")
    );
    change.await;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").await.expect("stdin");
    drop(stdin);
    let rest = lines.next_line().await.ok().flatten();
    let status = child.wait().await.expect("python3 ends");
    assert!(
        status.success() && rest.as_deref() == Some("ok"),
        "{login}: {rest:?}"
    );
}

#[tokio::test]
async fn deactivation_mask_and_password_change_end_open_ftp_sessions() {
    let d = Daemon::start().await;
    let ann = uploader(&d, "ann", None).await;
    session_ends_after(&d, "ann", async {
        let reply = d.bulk("deactivate", json!({ "ids": [ann] })).await;
        assert_eq!(reply["succeeded"], 1, "{reply}");
    })
    .await;
    let bob = uploader(&d, "bob", None).await;
    session_ends_after(&d, "bob", async {
        let (status, body) = d
            .post(
                &format!("/api/v1/users/{bob}/password"),
                &d.root,
                json!({ "password": "a different passphrase" }),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    })
    .await;
    let cy = uploader(&d, "cy", None).await;
    session_ends_after(&d, "cy", async {
        let reply = d.bulk("delete-ftp-accounts", json!({ "ids": [cy] })).await;
        assert_eq!(reply["succeeded"], 1, "{reply}");
    })
    .await;
}

#[tokio::test]
async fn a_client_that_never_reads_replies_is_dropped() {
    use tokio::io::AsyncWriteExt;
    let d = Daemon::start_with(|c| c.ftp.data_timeout = std::time::Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(&d.ftp)
        .await
        .expect("connect");
    let flood = b"HELP\r\n".repeat(10_000);
    let started = std::time::Instant::now();
    let mut dropped = false;
    while started.elapsed() < std::time::Duration::from_secs(30) {
        let write =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.write_all(&flood)).await;
        if let Ok(Err(_)) = write {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the server kept a session whose client never reads"
    );
}

#[tokio::test]
async fn a_connection_that_never_signs_in_is_closed() {
    let d =
        Daemon::start_with(|c| c.ftp.login_timeout = std::time::Duration::from_millis(500)).await;
    let mut stream = tokio::net::TcpStream::connect(&d.ftp)
        .await
        .expect("connect");
    let mut said = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_string(&mut said),
    )
    .await;
    assert!(read.is_ok(), "closed by the server");
    assert!(
        said.starts_with("220") && said.contains("421 Sign-in timeout"),
        "{said}"
    );
}

#[tokio::test]
async fn homes_named_by_login_move_to_their_user_id_at_start() {
    use gatehouse::store::Store;
    let d = Daemon::start().await;
    let uid = uploader(&d, "legacy", None).await;
    assert_ok(&ftplib(&d, "sign_in", "legacy", &[]).await, "sign-in");
    std::fs::write(home(&d, uid).join("old.txt"), b"from before").expect("file");
    // As an older version left it: the home named by login.
    let d = d
        .restart(|config| {
            let root = config.data_dir.join("ftp");
            std::fs::rename(root.join(uid.to_string()), root.join("legacy")).expect("rename");
            let store = crate::harness::open_store(config);
            let store: &dyn Store = &*store;
            let legacy = root.join("legacy").display().to_string();
            let (_, commit) = store
                .write(|unit| {
                    let mut user = unit.user(uid)?.expect("user");
                    user.ftp.home = Some(legacy.clone());
                    unit.put_user(&user)
                })
                .expect("write");
            store.wait_durable(commit).expect("durable");
        })
        .await;
    assert!(home(&d, uid).join("old.txt").is_file(), "moved to the id");
    assert!(!d.dir.path().join("data/ftp/legacy").exists());
    let state = ftp_state(&d, uid).await;
    assert!(
        state["home"]
            .as_str()
            .is_some_and(|h| h.ends_with(&format!("/{uid}"))),
        "{state}"
    );
    assert_ok(
        &ftplib(&d, "sign_in", "legacy", &[]).await,
        "sign-in after the move",
    );
}

#[tokio::test]
async fn undone_uploads_and_abor_racing_a_commit_keep_usage_exact() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "undone", Some(100)).await;
    assert_ok(
        &ftplib(&d, "undo_races", "undone", &["10"]).await,
        "undo races",
    );
    usage_matches_disk(&d, uid).await;
}
