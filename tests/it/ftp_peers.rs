//! FTPS interoperability and attacks, against the running daemon: stock Python
//! ftplib, curl, lftp and rclone moving real trees byte for byte; clear data,
//! truncated uploads, strangers on passive ports and random bytes refused; and
//! 2,000 sessions from 50 clients without a failure.

use crate::ftp::{Run, curl, ftp_state, run, uploader, write_file};
use crate::harness::{Daemon, PASSWORD};
use std::path::Path;

/// The path of `peers/ftplib_client.py`.
pub fn script() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/peers/ftplib_client.py");
    script.display().to_string()
}

/// Runs a scenario of `peers/ftplib_client.py` as `login`.
pub async fn ftplib(d: &Daemon, scenario: &str, login: &str, extra: &[&str]) -> Run {
    ftplib_as(d, scenario, login, PASSWORD, extra).await
}

/// Runs a scenario as `login` with `password`.
pub async fn ftplib_as(
    d: &Daemon,
    scenario: &str,
    login: &str,
    password: &str,
    extra: &[&str],
) -> Run {
    let (host, port) = d.ftp.split_once(':').expect("host:port");
    let mut args: Vec<String> = vec![
        script(),
        scenario.into(),
        host.into(),
        port.into(),
        login.into(),
        password.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    run("python3", &args).await
}

pub fn assert_ok(run: &Run, what: &str) {
    assert!(
        run.code == 0 && run.stdout.contains("ok"),
        "{what}: exit {}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

/// A tree of files of assorted sizes (empty, small, a few MiB) in nested folders.
fn make_tree(root: &Path) {
    for (dir, files) in [
        ("", vec![("top.txt", 10usize), ("empty.bin", 0)]),
        ("day1", vec![("a.jpg", 700_000), ("b.jpg", 1_500_000)]),
        ("day1/night", vec![("c.raw", 3_000_001)]),
        ("day 2", vec![("with space.csv", 4_321)]),
    ] {
        let path = root.join(dir);
        std::fs::create_dir_all(&path).expect("tree dir");
        for (name, len) in files {
            write_file(&path, name, len);
        }
    }
}

/// Whether two trees hold the same files with the same bytes.
fn same_tree(a: &Path, b: &Path) -> Result<(), String> {
    let list = |root: &Path| -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read tree").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path
                        .strip_prefix(root)
                        .expect("inside")
                        .display()
                        .to_string();
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    };
    let (left, right) = (list(a), list(b));
    if left != right {
        return Err(format!("{left:?} != {right:?}"));
    }
    for rel in left {
        if std::fs::read(a.join(&rel)).ok() != std::fs::read(b.join(&rel)).ok() {
            return Err(format!("{rel} differs"));
        }
    }
    Ok(())
}

fn lftp_args(d: &Daemon, login: &str, commands: &str) -> Vec<String> {
    vec![
        "-u".into(),
        format!("{login},{PASSWORD}"),
        "-e".into(),
        format!(
            "set ftp:ssl-force true; set ftp:ssl-protect-data true; \
             set ssl:verify-certificate no; set net:max-retries 1; {commands}; bye"
        ),
        format!("ftp://{}", d.ftp),
    ]
}

/// An rclone config naming the daemon as remote `gh`.
async fn rclone_config(d: &Daemon, login: &str, dir: &Path) -> String {
    let obscured = run("rclone", &["obscure".into(), PASSWORD.into()]).await;
    let (host, port) = d.ftp.split_once(':').expect("host:port");
    let config = dir.join("rclone.conf");
    std::fs::write(
        &config,
        format!(
            "[gh]\ntype = ftp\nhost = {host}\nport = {port}\nuser = {login}\npass = {}\n\
             explicit_tls = true\nno_check_certificate = true\n",
            obscured.stdout.trim()
        ),
    )
    .expect("rclone config");
    config.display().to_string()
}

async fn rclone(config: &str, args: &[&str]) -> Run {
    let mut all: Vec<String> = vec!["--config".into(), config.into(), "-q".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    run("rclone", &all).await
}

#[tokio::test]
async fn python_ftplib_round_trips_byte_exact() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "station", None).await;
    assert_ok(&ftplib(&d, "roundtrip", "station", &[]).await, "ftplib");
    let state = ftp_state(&d, uid).await;
    assert_eq!(state["used_files"], 3, "{state}");
    assert_eq!(state["used_bytes"], 3 * 1024 * 1024 + 17 + 1000, "{state}");
}

#[tokio::test]
async fn lftp_mirrors_and_rclone_syncs_trees_both_ways() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "mirror", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let (tree, back) = (work.path().join("tree"), work.path().join("back"));
    make_tree(&tree);

    let commands = format!(
        "mirror -R {} /up; mirror /up {}",
        tree.display(),
        back.display()
    );
    let lftp = run("lftp", &lftp_args(&d, "mirror", &commands)).await;
    assert_eq!(lftp.code, 0, "lftp: {}", lftp.stderr);
    same_tree(&tree, &back).unwrap_or_else(|e| panic!("lftp round trip: {e}"));

    let config = rclone_config(&d, "mirror", work.path()).await;
    let tree_arg = tree.display().to_string();
    let copy = rclone(&config, &["copy", &tree_arg, "gh:rc"]).await;
    assert_eq!(copy.code, 0, "rclone copy: {}", copy.stderr);
    std::fs::remove_file(tree.join("day1/a.jpg")).expect("local delete");
    write_file(&tree.join("day1"), "new.jpg", 12_345);
    let sync = rclone(&config, &["sync", &tree_arg, "gh:rc"]).await;
    assert_eq!(sync.code, 0, "rclone sync: {}", sync.stderr);
    let check = rclone(&config, &["check", &tree_arg, "gh:rc"]).await;
    assert_eq!(check.code, 0, "rclone check: {}", check.stderr);
    let rback = work.path().join("rback");
    let down = rclone(&config, &["copy", "gh:rc", &rback.display().to_string()]).await;
    assert_eq!(down.code, 0, "rclone copy back: {}", down.stderr);
    same_tree(&tree, &rback).unwrap_or_else(|e| panic!("rclone round trip: {e}"));
    // A missing folder is a plain "not found" (550 before any 150), not a
    // protocol failure.
    let missing = rclone(&config, &["lsf", "gh:no-such-folder"]).await;
    assert_eq!(missing.code, 3, "rclone lsf missing: {}", missing.stderr);

    // Usage matches what is on disk after all of it.
    let before = ftp_state(&d, uid).await;
    d.bulk("ftp-rescan", serde_json::json!({ "ids": [uid] }))
        .await;
    let after = ftp_state(&d, uid).await;
    assert_eq!(
        (&before["used_bytes"], &before["used_files"]),
        (&after["used_bytes"], &after["used_files"])
    );
}

#[tokio::test]
async fn required_session_reuse_admits_resuming_clients_and_refuses_strangers() {
    let d = Daemon::start_with(|c| c.ftp.require_tls_session_reuse = true).await;
    uploader(&d, "reuser", None).await;
    let work = tempfile::tempdir().expect("work dir");
    let file = write_file(work.path(), "curl.bin", 200_000);
    let file_arg = file.display().to_string();
    let up = curl(&d, "reuser", PASSWORD, true, &["-T", &file_arg, "FTP/"]).await;
    assert_eq!(up.code, 0, "curl upload: {}", up.stderr);
    let got = work.path().join("curl.back");
    let got_arg = got.display().to_string();
    let down = curl(
        &d,
        "reuser",
        PASSWORD,
        true,
        &["-o", &got_arg, "FTP/curl.bin"],
    )
    .await;
    assert_eq!(down.code, 0, "curl download: {}", down.stderr);
    assert_eq!(std::fs::read(&got).ok(), std::fs::read(&file).ok());

    let tree = work.path().join("tree");
    make_tree(&tree);
    let back = work.path().join("back");
    let commands = format!(
        "mirror -R {} /t; mirror /t {}",
        tree.display(),
        back.display()
    );
    let lftp = run("lftp", &lftp_args(&d, "reuser", &commands)).await;
    assert_eq!(lftp.code, 0, "lftp: {}", lftp.stderr);
    same_tree(&tree, &back).unwrap_or_else(|e| panic!("lftp with reuse: {e}"));

    assert_ok(
        &ftplib(&d, "roundtrip", "reuser", &["reuse"]).await,
        "ftplib session=",
    );
    assert_ok(
        &ftplib(&d, "refused_without_reuse", "reuser", &[]).await,
        "stock ftplib",
    );
    assert_ok(
        &ftplib(&d, "hijack", "reuser", &[]).await,
        "stranger on the passive port",
    );
}

#[tokio::test]
async fn no_clear_data_and_a_truncated_upload_leaves_nothing() {
    let d = Daemon::start().await;
    let uid = uploader(&d, "guard", Some(50)).await;
    assert_ok(&ftplib(&d, "protection", "guard", &[]).await, "protection");
    assert_ok(&ftplib(&d, "truncate", "guard", &[]).await, "truncation");
    let state = ftp_state(&d, uid).await;
    assert_eq!(
        (&state["used_bytes"], &state["used_files"]),
        (&1000.into(), &1.into()),
        "{state}"
    );
    crate::ftp::assert_nothing_staged(&d);
}

#[tokio::test]
async fn random_bytes_on_control_and_passive_ports_harm_nobody() {
    let d = Daemon::start().await;
    uploader(&d, "fuzzed", None).await;
    assert_ok(&ftplib(&d, "fuzz", "fuzzed", &["1000"]).await, "fuzz");
    assert_ok(
        &ftplib(&d, "roundtrip", "fuzzed", &[]).await,
        "still serving",
    );
}

#[tokio::test]
async fn two_thousand_sessions_from_fifty_clients_all_succeed() {
    let d =
        Daemon::start_with(|c| c.ftp.passive_ports = "30000-30999".parse().expect("ports")).await;
    let uid = uploader(&d, "trap", None).await;
    let load = ftplib(&d, "load", "trap", &["2000", "50"]).await;
    assert_ok(&load, "load");
    let state = ftp_state(&d, uid).await;
    assert_eq!(state["used_files"], 2000, "{state}");
    assert_eq!(state["used_bytes"], 2000 * 64 * 1024, "{state}");
}

#[tokio::test]
async fn active_mode_only_when_enabled_and_only_back_to_the_client() {
    let off = Daemon::start().await;
    uploader(&off, "passive", None).await;
    assert_ok(
        &ftplib(&off, "active", "passive", &["off"]).await,
        "active mode off",
    );
    let d = Daemon::start_with(|c| c.ftp.active_mode = true).await;
    uploader(&d, "active", None).await;
    assert_ok(
        &ftplib(&d, "active", "active", &["on"]).await,
        "active mode on",
    );
}
