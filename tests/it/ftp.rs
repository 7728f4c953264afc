//! FTPS with real clients (curl, lftp): TLS required, sign-in rules, homes,
//! isolation, path escapes, and quota accounting that stays exact.

use crate::harness::{Daemon, PASSWORD, id};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Exit code and stdout of a finished client.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn run(program: &str, args: &[String]) -> Run {
    let output = Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// curl over explicit FTPS (or plain FTP when `tls` is false) as `login`.
pub async fn curl(d: &Daemon, login: &str, password: &str, tls: bool, args: &[&str]) -> Run {
    let mut all: Vec<String> = vec![
        "-sS".into(),
        "-k".into(),
        "--user".into(),
        format!("{login}:{password}"),
    ];
    if tls {
        all.push("--ssl-reqd".into());
    }
    all.extend(
        args.iter()
            .map(|a| a.replace("FTP", &format!("ftp://{}", d.ftp))),
    );
    run("curl", &all).await
}

/// A user with an FTP account holding `quota_mb`; returns the id.
pub async fn uploader(d: &Daemon, login: &str, quota_mb: Option<u64>) -> u64 {
    let uid = d.user(login).await;
    let reply = d
        .bulk(
            "create-ftp-accounts",
            json!({ "ids": [uid], "quota_mb": quota_mb }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    uid
}

pub async fn ftp_state(d: &Daemon, uid: u64) -> Value {
    d.get(&format!("/api/v1/users/{uid}"), &d.root).await.1["ftp"].clone()
}

pub fn write_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// No upload part is left in any daemon's staging folder.
pub fn assert_nothing_staged(d: &Daemon) {
    let staging = d.dir.path().join("data/ftp/.staging");
    let folders: Vec<PathBuf> = std::fs::read_dir(&staging)
        .expect("staging")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(folders.iter().all(|path| path.is_dir()), "{folders:?}");
    let parts: Vec<PathBuf> = folders
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("staging folder").flatten())
        .map(|entry| entry.path())
        .collect();
    assert!(parts.is_empty(), "left staged: {parts:?}");
}

/// A user's home: named by user id, never by login.
pub fn home(d: &Daemon, uid: u64) -> PathBuf {
    d.dir.path().join("data/ftp").join(uid.to_string())
}

#[tokio::test]
async fn upload_list_download_rename_delete_keep_usage_exact() {
    let d = Daemon::start_with(|c| c.ftp.layout = vec!["incoming".into()]).await;
    let uid = uploader(&d, "ulla", Some(10)).await;
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["enabled"], &state["quota_mb"], &state["used_bytes"]),
        (&json!(true), &json!(10), &json!(0))
    );
    assert!(home(&d, uid).join("incoming").is_dir(), "layout created");
    let work = tempfile::tempdir().expect("work dir");
    let local = write_file(work.path(), "a.bin", 300_000);
    let up = curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &["-T", local.to_str().expect("path"), "FTP/incoming/"],
    )
    .await;
    assert_eq!(up.code, 0, "{}", up.stderr);
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(300_000), &json!(1))
    );
    let listing = curl(&d, "ulla", PASSWORD, true, &["FTP/incoming/"]).await;
    assert!(
        listing.stdout.contains("a.bin") && listing.stdout.contains("300000"),
        "{}",
        listing.stdout
    );

    let copy = work.path().join("copy.bin");
    let down = curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &["-o", copy.to_str().expect("path"), "FTP/incoming/a.bin"],
    )
    .await;
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(std::fs::read(&copy).ok(), std::fs::read(&local).ok());

    let smaller = write_file(work.path(), "b.bin", 100_000);
    curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &["-T", smaller.to_str().expect("path"), "FTP/incoming/b.bin"],
    )
    .await;
    let renamed = curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &[
            "-Q",
            "RNFR incoming/b.bin",
            "-Q",
            "RNTO incoming/a.bin",
            "FTP/",
        ],
    )
    .await;
    assert_eq!(renamed.code, 0, "{}", renamed.stderr);
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(100_000), &json!(1)),
        "rename over a file replaces it"
    );

    let overwrite = curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &["-T", local.to_str().expect("path"), "FTP/incoming/a.bin"],
    )
    .await;
    assert_eq!(overwrite.code, 0);
    assert_eq!(
        ftp_state(&d, uid).await["used_bytes"],
        300_000,
        "overwrite counts the new size only"
    );

    let deleted = curl(
        &d,
        "ulla",
        PASSWORD,
        true,
        &["-Q", "DELE incoming/a.bin", "FTP/"],
    )
    .await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(0), &json!(0))
    );
    let removed = curl(&d, "ulla", PASSWORD, true, &["-Q", "RMD incoming", "FTP/"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(!home(&d, uid).join("incoming").exists());
    d.stop().await;
}

#[tokio::test]
async fn append_and_resume_keep_usage_exact() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "res", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let full = write_file(work.path(), "full.bin", 2_500_000);
    let bytes = std::fs::read(&full).expect("read");
    let head = work.path().join("head.bin");
    std::fs::write(&head, &bytes[..1_000_000]).expect("write head");
    curl(
        &d,
        "res",
        PASSWORD,
        true,
        &["-T", head.to_str().expect("path"), "FTP/data.bin"],
    )
    .await;
    let resumed = curl(
        &d,
        "res",
        PASSWORD,
        true,
        &[
            "-C",
            "-",
            "-T",
            full.to_str().expect("path"),
            "FTP/data.bin",
        ],
    )
    .await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        std::fs::read(home(&d, uid).join("data.bin")).ok(),
        Some(bytes.clone())
    );
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(2_500_000), &json!(1))
    );

    let tail = write_file(work.path(), "tail.bin", 4096);
    let appended = curl(
        &d,
        "res",
        PASSWORD,
        true,
        &[
            "--append",
            "-T",
            tail.to_str().expect("path"),
            "FTP/data.bin",
        ],
    )
    .await;
    assert_eq!(appended.code, 0, "{}", appended.stderr);
    assert_eq!(
        std::fs::metadata(home(&d, uid).join("data.bin"))
            .map(|m| m.len())
            .ok(),
        Some(2_504_096)
    );
    assert_eq!(ftp_state(&d, uid).await["used_bytes"], 2_504_096);
    d.stop().await;
}

#[tokio::test]
async fn quota_stops_an_upload_mid_transfer_and_loses_nothing() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "tight", Some(1)).await;
    let work = tempfile::tempdir().expect("work dir");
    let first = write_file(work.path(), "first.bin", 600_000);
    assert_eq!(
        curl(
            &d,
            "tight",
            PASSWORD,
            true,
            &["-T", first.to_str().expect("path"), "FTP/"]
        )
        .await
        .code,
        0
    );
    let big = write_file(work.path(), "big.bin", 5_000_000);
    let refused = curl(
        &d,
        "tight",
        PASSWORD,
        true,
        &["-T", big.to_str().expect("path"), "FTP/"],
    )
    .await;
    // 70 when curl reads the 552 reply first, 55 when it sees the closed data connection first.
    assert!(
        [70, 55].contains(&refused.code),
        "{} {}",
        refused.code,
        refused.stderr
    );
    let entries: Vec<String> = std::fs::read_dir(home(&d, uid))
        .expect("home")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["first.bin"], "no partial file is left");
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(600_000), &json!(1))
    );
    let second = write_file(work.path(), "second.bin", 500_000);
    assert_ne!(
        curl(
            &d,
            "tight",
            PASSWORD,
            true,
            &["-T", second.to_str().expect("path"), "FTP/"]
        )
        .await
        .code,
        0,
        "600 kB + 500 kB > 1 MiB"
    );

    d.bulk(
        "create-ftp-accounts",
        json!({ "ids": [uid], "quota_mb": 0 }),
    )
    .await;
    let download = curl(
        &d,
        "tight",
        PASSWORD,
        true,
        &["-o", "/dev/null", "FTP/first.bin"],
    )
    .await;
    assert_eq!(
        download.code, 0,
        "a quota below usage still allows downloads"
    );
    assert_eq!(
        curl(
            &d,
            "tight",
            PASSWORD,
            true,
            &["-Q", "DELE first.bin", "FTP/"]
        )
        .await
        .code,
        0,
        "and deletes"
    );
    assert_eq!(ftp_state(&d, uid).await["used_bytes"], 0);
    d.stop().await;
}

#[tokio::test]
async fn sign_in_refusals() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "door", None).await;
    d.user("noftp").await;
    let plain = curl(&d, "door", PASSWORD, false, &["FTP/"]).await;
    assert_ne!(plain.code, 0, "plain-text login is refused");
    assert!(
        plain.stderr.contains("534") || plain.stderr.contains("denied"),
        "{}",
        plain.stderr
    );
    assert_eq!(curl(&d, "door", PASSWORD, true, &["FTP/"]).await.code, 0);
    assert_eq!(
        curl(&d, "door@example.org", PASSWORD, true, &["FTP/"])
            .await
            .code,
        0,
        "email works as username"
    );
    let wrong = curl(&d, "door", "not the password", true, &["FTP/"]).await;
    assert_eq!(wrong.code, 67, "{}", wrong.stderr);
    assert_eq!(
        curl(&d, "noftp", PASSWORD, true, &["FTP/"]).await.code,
        67,
        "no FTP account"
    );
    d.bulk("deactivate", json!({ "ids": [uid] })).await;
    assert_eq!(
        curl(&d, "door", PASSWORD, true, &["FTP/"]).await.code,
        67,
        "inactive user"
    );
    d.stop().await;
}

#[tokio::test]
async fn homes_are_isolated_and_paths_cannot_escape() {
    let d = Daemon::start().await;
    let alpha = uploader(&d, "alpha", None).await;
    let beta = uploader(&d, "beta", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let secret = write_file(work.path(), "secret.txt", 1000);
    curl(
        &d,
        "beta",
        PASSWORD,
        true,
        &["-T", secret.to_str().expect("path"), "FTP/"],
    )
    .await;
    std::os::unix::fs::symlink("/etc", home(&d, alpha).join("etc-link")).expect("symlink");

    let listing = curl(&d, "alpha", PASSWORD, true, &["FTP/"]).await;
    assert!(!listing.stdout.contains("secret.txt"), "{}", listing.stdout);
    assert!(
        !listing.stdout.contains("etc-link"),
        "a symlink is never listed, so its target is never shown: {}",
        listing.stdout
    );
    for path in [
        format!("FTP/../{beta}/secret.txt"),
        format!("FTP/%2E%2E/{beta}/secret.txt"),
        format!("FTP/%2F..%2F{beta}%2Fsecret.txt"),
        "FTP/etc-link/hostname".to_owned(),
    ] {
        let path = path.as_str();
        let attempt = curl(&d, "alpha", PASSWORD, true, &["-o", "/dev/null", path]).await;
        assert_ne!(attempt.code, 0, "{path} must not be readable");
    }
    let escape = write_file(work.path(), "escape.txt", 10);
    for target in ["FTP/%2E%2E/escape.txt", "FTP/etc-link/escape.txt"] {
        curl(
            &d,
            "alpha",
            PASSWORD,
            true,
            &["-T", escape.to_str().expect("path"), target],
        )
        .await;
    }
    assert!(!d.dir.path().join("data/ftp/escape.txt").exists());
    assert!(!Path::new("/etc/escape.txt").exists());
    d.stop().await;
}

#[tokio::test]
async fn lftp_session_and_rescan() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "lf", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let file = write_file(work.path(), "report.csv", 12_345);
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; \
         mkdir sub; put {} -o sub/report.csv; mv sub/report.csv sub/final.csv; ls sub; bye",
        file.display()
    );
    let session = run(
        "lftp",
        &[
            "-u".into(),
            format!("lf,{PASSWORD}"),
            "-e".into(),
            script,
            format!("ftp://{}", d.ftp),
        ],
    )
    .await;
    assert_eq!(session.code, 0, "{} {}", session.stdout, session.stderr);
    assert!(session.stdout.contains("final.csv"), "{}", session.stdout);
    assert_eq!(ftp_state(&d, uid).await["used_bytes"], 12_345);

    std::fs::write(home(&d, uid).join("dropped-in.bin"), vec![7u8; 5000]).expect("outside write");
    let (status, user) = d
        .post(
            &format!("/api/v1/users/{uid}/ftp/rescan"),
            &d.root,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&user["ftp"]["used_bytes"], &user["ftp"]["used_files"]),
        (&json!(17_345), &json!(2))
    );
    let reply = d.bulk("delete-ftp-accounts", json!({ "ids": [uid] })).await;
    assert_eq!(reply["results"][0]["user"]["ftp"]["enabled"], false);
    assert!(!home(&d, uid).exists(), "the home is removed");
    assert_eq!(curl(&d, "lf", PASSWORD, true, &["FTP/"]).await.code, 67);
    d.stop().await;
}

#[tokio::test]
async fn allowed_groups_and_api_tokens_as_ftp_passwords() {
    let d = Daemon::start_with(|c| {
        c.ftp.allowed_groups = vec!["uploaders".into()];
        c.ftp.default_quota_mb = Some(3);
    })
    .await;
    d.post("/api/v1/groups", &d.root, json!({ "name": "uploaders" }))
        .await;
    let member = id(&d
        .create(json!({ "login": "member", "password": PASSWORD, "groups": ["uploaders"] }))
        .await);
    assert_eq!(curl(&d, "member", PASSWORD, true, &["FTP/"]).await.code, 0);
    let state = ftp_state(&d, member).await;
    assert_eq!(
        (&state["enabled"], &state["quota_mb"]),
        (&json!(true), &json!(3))
    );
    assert!(home(&d, member).is_dir());

    let (_, issued) = d
        .post(
            &format!("/api/v1/users/{member}/api-token"),
            &d.root,
            json!({}),
        )
        .await;
    let token = issued["token"].as_str().expect("token").to_owned();
    d.patch(
        &format!("/api/v1/users/{member}"),
        &d.root,
        json!({ "type": "sso" }),
    )
    .await;
    assert_eq!(
        curl(&d, "member", PASSWORD, true, &["FTP/"]).await.code,
        67,
        "SSO users sign in with their API token"
    );
    assert_eq!(curl(&d, "member", &token, true, &["FTP/"]).await.code, 0);
    d.stop().await;
}

#[tokio::test]
async fn cli_rescan_recomputes_usage_of_a_stopped_daemon() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "offline", None).await;
    std::fs::write(home(&d, uid).join("copied-in.bin"), vec![1u8; 4321]).expect("outside write");
    let d = d
        .restart(|config| {
            let status = crate::harness::offline_cli(config)
                .args(["ftp", "rescan"])
                .output()
                .expect("gatehouse runs");
            let stdout = String::from_utf8_lossy(&status.stdout);
            assert!(
                status.status.success() && stdout.contains("rescanned 1 FTP accounts"),
                "{stdout}"
            );
        })
        .await;
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&json!(4321), &json!(1))
    );
    d.stop().await;
}

/// Two uploads race for the last quota bytes, ten times over: never both get
/// in, and the stored usage always equals what is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_cannot_both_take_the_last_quota_bytes() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "racer", Some(1)).await;
    let work = tempfile::tempdir().expect("work dir");
    let files = [
        write_file(work.path(), "left.bin", 700_000),
        write_file(work.path(), "right.bin", 700_000),
    ];
    for round in 0..10 {
        let upload = |file: &PathBuf| {
            let file = file.to_str().expect("path").to_owned();
            let d = &d;
            async move { curl(d, "racer", PASSWORD, true, &["-T", &file, "FTP/"]).await }
        };
        let (left, right) = tokio::join!(upload(&files[0]), upload(&files[1]));
        let landed: Vec<String> = std::fs::read_dir(home(&d, uid))
            .expect("home")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let on_disk: u64 = landed.len() as u64 * 700_000;
        let state = ftp_state(&d, uid).await;
        assert!(
            landed.len() <= 1,
            "round {round}: both uploads passed a 1 MiB quota: {landed:?} ({} / {})",
            left.code,
            right.code
        );
        assert_eq!(
            (state["used_bytes"].as_u64(), state["used_files"].as_u64()),
            (Some(on_disk), Some(landed.len() as u64)),
            "round {round}: usage matches the disk"
        );
        for name in &landed {
            let delete = format!("DELE {name}");
            assert_eq!(
                curl(&d, "racer", PASSWORD, true, &["-Q", &delete, "FTP/"])
                    .await
                    .code,
                0
            );
        }
    }
    d.stop().await;
}

/// An obligation (password change, 2FA enrolment) pending on the account
/// refuses FTPS sign-in until it is met, with the right password too.
#[tokio::test]
async fn ftps_refuses_sign_in_while_an_obligation_is_pending() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "obliged", None).await;
    let (status, _) = d
        .patch(
            &format!("/api/v1/users/{uid}"),
            &d.root,
            json!({ "require_password_change": true }),
        )
        .await;
    assert_eq!(status, 200);
    let refused = curl(&d, "obliged", PASSWORD, true, &["FTP/"]).await;
    assert_eq!(refused.code, 67, "login denied: {}", refused.stderr);
    let (status, _) = d
        .patch(
            &format!("/api/v1/users/{uid}"),
            &d.root,
            json!({ "require_password_change": false }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(curl(&d, "obliged", PASSWORD, true, &["FTP/"]).await.code, 0);
    d.stop().await;
}

/// Everything the daemon keeps is private to its user: the data directory,
/// store, key and token files, FTP homes and uploaded files.
#[tokio::test]
async fn the_data_directory_homes_and_uploads_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start().await;
    let uid = uploader(&d, "priv", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let file = write_file(work.path(), "private.bin", 1000);
    let upload = curl(
        &d,
        "priv",
        PASSWORD,
        true,
        &["-T", file.to_str().expect("path"), "FTP/"],
    )
    .await;
    assert_eq!(upload.code, 0, "{}", upload.stderr);
    let data = d.dir.path().join("data");
    let mode = |path: PathBuf| {
        std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut private_dirs = vec![data.clone(), home(&d, uid)];
    if !crate::harness::on_postgres() {
        private_dirs.push(data.join("store"));
    }
    for dir in private_dirs {
        assert_eq!(mode(dir.clone()), 0o700, "{}", dir.display());
    }
    for file in [
        data.join("root.token"),
        data.join("secret.key"),
        home(&d, uid).join("private.bin"),
    ] {
        assert_eq!(mode(file.clone()), 0o600, "{}", file.display());
    }
    d.stop().await;
}
