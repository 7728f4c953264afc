//! Mail benchmark (issue: mail outbox). Against a local aiosmtpd (Maildir
//! handler, as the tests use), in one run:
//! - baseline: Python's smtplib on as many connections as the daemon uses,
//!   sending 2,000 mails of the same size straight to the server: the rate
//!   this SMTP server takes mail at on this machine;
//! - gatehouse: an in-process daemon with 10,000 imported users; one
//!   `POST /api/v1/users/actions/send-email` to all of them, timed from the
//!   request until the 10,000th message file lands in the Maildir. Reported:
//!   the time to queue (the request), mails/s end to end, the ratio to the
//!   baseline, and the process's RSS before and its peak during the send
//!   (VmHWM, reset through /proc/self/clear_refs before the send).
//!
//! Run: `cargo bench --bench mail` (about a minute on 2 cores). Needs
//! `/usr/bin/python3 -m aiosmtpd` (Debian: python3-aiosmtpd).

#[path = "../tests/it/process.rs"]
#[allow(dead_code)]
mod process;

#[path = "../tests/it/smtp.rs"]
#[allow(dead_code)]
mod smtp;

mod common;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

const USERS: usize = 10_000;
const BASELINE_MAILS: usize = 2_000;
const CONCURRENCY: usize = 4;

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0.0)
}

fn maildir_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("mail/new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn wait_for_files(dir: &std::path::Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(900);
    while maildir_count(dir) < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} mails arrived",
            maildir_count(dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An independent client's rate: Python's smtplib on CONCURRENCY threads,
/// one connection each, sending BASELINE_MAILS of the same size.
async fn baseline(port: u16, dir: &std::path::Path) -> f64 {
    let script = format!(
        r#"
import smtplib, threading
from email.message import EmailMessage
def run(first):
    s = smtplib.SMTP("127.0.0.1", {port})
    for n in range(first, {BASELINE_MAILS}, {CONCURRENCY}):
        m = EmailMessage(); m["From"] = "bench@example.org"; m["To"] = f"base{{n}}@example.org"
        m["Subject"] = "Station check"; m.set_content("Please check your station before Friday.\n" * 3)
        s.send_message(m)
    s.quit()
threads = [threading.Thread(target=run, args=(i,)) for i in range({CONCURRENCY})]
[t.start() for t in threads]; [t.join() for t in threads]
"#
    );
    let started = Instant::now();
    let status = tokio::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .status()
        .await
        .expect("python3 runs");
    assert!(status.success());
    wait_for_files(dir, BASELINE_MAILS).await;
    BASELINE_MAILS as f64 / started.elapsed().as_secs_f64()
}

async fn user_ids(client: &reqwest::Client, base: &str, root: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let mut query = vec![("q", "bench".to_owned()), ("limit", "1000".to_owned())];
        query.extend(cursor.map(|cursor| ("cursor", cursor.to_string())));
        let request = client.get(format!("{base}/api/v1/users")).query(&query);
        let page: Value = request
            .bearer_auth(root)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        ids.extend(
            page["users"]
                .as_array()
                .expect("users")
                .iter()
                .filter_map(|u| u["id"].as_u64()),
        );
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let base_dir = tempfile::tempdir().expect("dir");
    let base_port = smtp::free_port();
    let base_smtp = smtp::Smtp::start(base_dir.path(), base_port);
    let baseline_rate = baseline(base_port, base_dir.path()).await;
    drop(base_smtp);

    let mail_dir = tempfile::tempdir().expect("dir");
    let port = smtp::free_port();
    let _smtp = smtp::Smtp::start(mail_dir.path(), port);
    let daemon = common::start(|config| {
        config.mail.smtp_url = Some(smtp::Smtp::url(port));
        config.mail.concurrency = CONCURRENCY;
    })
    .await;
    let client = reqwest::Client::new();
    let mut csv = String::from("user.login,user.email,user.first_name\n");
    for n in 0..USERS {
        csv.push_str(&format!("bench{n},bench{n}@example.org,Bench {n}\n"));
    }
    let imported = client
        .post(format!("{}/api/v1/users/import?mode=add", daemon.base))
        .bearer_auth(&daemon.root)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    assert!(
        imported.status().is_success(),
        "import: {}",
        imported.text().await.unwrap_or_default()
    );
    let ids = user_ids(&client, &daemon.base, &daemon.root).await;
    assert_eq!(ids.len(), USERS);

    let rss_before = status_kib("VmRSS:") / 1024.0;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let reply: Value = client
        .post(format!("{}/api/v1/users/actions/send-email", daemon.base))
        .bearer_auth(&daemon.root)
        .json(&json!({ "ids": ids, "subject": "Station check", "body": "Please check your station before Friday.\n".repeat(3) }))
        .send()
        .await
        .expect("send-email")
        .json()
        .await
        .expect("json");
    let queued_in = started.elapsed();
    assert_eq!(reply["queued"], USERS, "{}", reply["results"][0]);
    wait_for_files(mail_dir.path(), USERS).await;
    let total = started.elapsed();
    let peak = status_kib("VmHWM:") / 1024.0;
    let rate = USERS as f64 / total.as_secs_f64();

    println!("| part | mails | time | mails/s | memory |");
    println!("|---|---|---|---|---|");
    println!(
        "| baseline: Python smtplib straight to aiosmtpd, {CONCURRENCY} connections | {BASELINE_MAILS} | {:.1} s | {baseline_rate:.0} | |",
        BASELINE_MAILS as f64 / baseline_rate
    );
    println!(
        "| send-email request (10,000 outbox entries written) | {USERS} | {:.2} s | {:.0} queued/s | |",
        queued_in.as_secs_f64(),
        USERS as f64 / queued_in.as_secs_f64()
    );
    println!(
        "| send-email to delivered (outbox, {CONCURRENCY} at once) | {USERS} | {:.1} s | {rate:.0} | RSS {rss_before:.0} MiB before, peak {peak:.0} MiB |",
        total.as_secs_f64()
    );
    println!("ratio to baseline: {:.2}", rate / baseline_rate);
    daemon.running.shutdown().await.expect("shutdown");
}
