//! The outbox under SIGKILL: the real binary queues a mail to 100 users, is
//! killed right after answering, and once restarted delivers every one of
//! them; a mail in flight at the kill may arrive twice, but under the same
//! Message-ID, so the receiver can tell.

use crate::process::Process;
use crate::smtp::{Smtp, free_port};
use reqwest::Client;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const RECIPIENTS: usize = 100;

async fn call(client: &Client, base: &str, token: &str, path: &str, body: Option<Value>) -> Value {
    let request = match body {
        Some(body) => client.post(format!("{base}{path}")).json(&body),
        None => client.get(format!("{base}{path}")),
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_queue_loses_no_mail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let url = Smtp::url(port);
    let env = [
        ("GATEHOUSE_MAIL__SMTP_URL", url.as_str()),
        ("GATEHOUSE_MAIL__POLL_INTERVAL", "50ms"),
        ("GATEHOUSE_MAIL__CONCURRENCY", "2"),
    ];
    let client = Client::new();

    let process = Process::start_with(&data_dir, "warn", &env);
    let token = std::fs::read_to_string(data_dir.join("root.token")).expect("root token");
    let token = token.trim();
    let mut ids = Vec::new();
    for n in 0..RECIPIENTS {
        let user = call(
            &client,
            &process.base,
            token,
            "/api/v1/users",
            Some(json!({ "login": format!("field{n}"), "email": format!("field{n}@example.org"), "password": "a sound passphrase" })),
        )
        .await;
        ids.push(user["id"].as_u64().expect("id"));
    }
    let reply = call(
        &client,
        &process.base,
        token,
        "/api/v1/users/actions/send-email",
        Some(
            json!({ "ids": ids, "subject": "Station check", "body": "Please check your station." }),
        ),
    )
    .await;
    drop(process); // SIGKILL right after the 2xx
    assert_eq!(reply["queued"], RECIPIENTS, "{reply}");
    let before_restart = smtp.arrived().len();

    let process = Process::start_with(&data_dir, "warn", &env);
    let arrived = smtp.wait_for(RECIPIENTS).await;
    let mut sent = Vec::new();
    for _ in 0..600 {
        let page = call(
            &client,
            &process.base,
            token,
            "/api/v1/mail/outbox?kind=message&limit=1000",
            None,
        )
        .await;
        sent = page["entries"].as_array().cloned().unwrap_or_default();
        if sent.iter().all(|e| e["status"] == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), RECIPIENTS);
    assert!(sent.iter().all(|e| e["status"] == "sent"), "{sent:?}");
    let expected: BTreeSet<String> = sent
        .iter()
        .map(|e| e["message_id"].as_str().expect("message id").to_owned())
        .collect();
    let got: BTreeSet<String> = arrived.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(
        got, expected,
        "every queued mail arrived, under its own Message-ID"
    );
    let recipients: BTreeSet<&str> = arrived.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(recipients.len(), RECIPIENTS);
    // Only mails in flight at the kill (two sending, two done but not yet
    // recorded) may come twice.
    assert!(
        arrived.len() - RECIPIENTS <= 4,
        "{} duplicates",
        arrived.len() - RECIPIENTS
    );
    eprintln!(
        "{before_restart} mails out before the kill; {} duplicates",
        arrived.len() - RECIPIENTS
    );
}
