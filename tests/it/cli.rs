//! The admin CLI against the running daemon: the real binary with its URL and
//! token from the environment, tables and JSON, per-id results of bulk
//! actions, the API's own refusals, and shell completions.

use crate::harness::{Daemon, PASSWORD};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cli(d: &Daemon, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_URL", &d.base)
        .env("GATEHOUSE_TOKEN", &d.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_cli_drives_the_running_daemon() {
    let d = Daemon::start().await;
    let created = stdout(&cli(
        &d,
        &[
            "users",
            "create",
            "--login",
            "cli1",
            "--email",
            "cli1@example.org",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert!(
        created
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("cli1") && l.contains("active")),
        "{created}"
    );
    assert_eq!(
        d.login("cli1", PASSWORD).await.0,
        200,
        "the password came through standard input"
    );
    let pending = stdout(&cli(&d, &["users", "create", "--login", "cli2"], None));
    assert!(pending.contains("pending"), "{pending}");

    let again = cli(&d, &["users", "create", "--login", "cli1"], None);
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(
        message.contains("409 duplicate") && message.contains("login"),
        "{message}"
    );

    let listed: Value = serde_json::from_str(&stdout(&cli(
        &d,
        &["users", "list", "--search", "cli", "--json"],
        None,
    )))
    .expect("json");
    let logins: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["login"].as_str())
        .collect();
    assert_eq!(logins, ["cli1", "cli2"]);
    let shown = stdout(&cli(&d, &["users", "show", "cli2"], None));
    assert!(shown.starts_with("ID") && shown.contains("cli2"), "{shown}");

    let results = stdout(&cli(&d, &["users", "deactivate", "cli1", "999999"], None));
    assert!(results.contains(" ok"), "{results}");
    let missing = cli(&d, &["users", "deactivate", "nobody-here"], None);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user with login `nobody-here`"));
    let roles = stdout(&cli(
        &d,
        &["users", "set-roles", "cli2", "--role", "auditor", "--json"],
        None,
    ));
    let roles: Value = serde_json::from_str(&roles).expect("json");
    assert_eq!(
        roles["results"][0]["user"]["system_roles"][0], "auditor",
        "{roles}"
    );

    stdout(&cli(&d, &["groups", "create", "field-team"], None));
    assert!(stdout(&cli(&d, &["groups", "list"], None)).contains("field-team"));
    let ftp = stdout(&cli(
        &d,
        &[
            "ftp",
            "create-accounts",
            "cli2",
            "--quota-mb",
            "5",
            "--activate",
        ],
        None,
    ));
    assert!(ftp.contains(" ok"), "{ftp}");

    let no_token = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["users", "list"])
        .env("GATEHOUSE_URL", &d.base)
        .env_remove("GATEHOUSE_TOKEN")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("no API token"));
    let completions = stdout(&cli(&d, &["completions", "bash"], None));
    assert!(completions.contains("_gatehouse") && completions.contains("set-roles"));
    d.stop().await;
}
