//! Delivery against a real SMTP server (aiosmtpd): an SMTP outage with
//! retries, failures and the outbox routes; digests on the manual clock
//! across a daylight-saving change; STARTTLS and implicit TLS.

use crate::harness::code;
use crate::mail::{mailing_daemon, outbox, outbox_until};
use crate::smtp::{Smtp, free_port};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_mail_and_delivers_each_once() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let daemon = mailing_daemon(port, |config| config.mail.max_attempts = 3).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, entry) = daemon
            .post(
                "/api/v1/mail/test",
                &daemon.root,
                json!({ "to": format!("ops{n}@example.org") }),
            )
            .await;
        assert_eq!(status, 202, "{entry}");
        ids.push(entry["id"].as_u64().expect("id"));
    }
    // Nothing listens: each mail is tried, fails, and waits.
    let waiting = outbox_until(&daemon, "kind=test", |e| {
        e.iter().all(|m| m["attempts"] == 1)
    })
    .await;
    assert!(
        waiting
            .iter()
            .all(|m| m["status"] == "queued" && !m["last_error"].is_null()),
        "{waiting:?}"
    );
    let (status, cancelled) = daemon
        .delete(&format!("/api/v1/mail/outbox/{}", ids[4]), &daemon.root)
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled"))
    );
    let (status, again) = daemon
        .delete(&format!("/api/v1/mail/outbox/{}", ids[4]), &daemon.root)
        .await;
    assert_eq!((status, code(&again)), (409, "not_queued"));

    // Two more failed rounds: the third attempt gives up.
    for attempts in [2, 3] {
        daemon.clock.advance(chrono::Duration::seconds(3));
        outbox_until(&daemon, "kind=test", |e| {
            e.iter().take(4).all(|m| m["attempts"] == attempts)
        })
        .await;
    }
    let failed = outbox_until(&daemon, "kind=test&status=failed", |e| e.len() == 4).await;
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("gave up after 3 attempts"),
        "{failed:?}"
    );

    // The server comes up; retried mails go out, each exactly once.
    let smtp = Smtp::start(dir.path(), port);
    for id in &ids[..3] {
        let (status, entry) = daemon
            .post(
                &format!("/api/v1/mail/outbox/{id}/retry"),
                &daemon.root,
                json!({}),
            )
            .await;
        assert_eq!(
            (status, entry["status"].as_str()),
            (200, Some("queued")),
            "{entry}"
        );
    }
    let arrived = smtp.wait_for(3).await;
    outbox_until(&daemon, "kind=test&status=sent", |e| e.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arrived_later = smtp.arrived();
    assert_eq!(arrived_later.len(), 3, "{arrived:?}");
    let mut message_ids: Vec<String> = arrived_later.iter().map(|m| m.message_id.clone()).collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 3);
    assert!(
        smtp.to("ops4@example.org").is_empty(),
        "a cancelled mail never leaves"
    );
    assert!(
        smtp.to("ops3@example.org").is_empty(),
        "a failed mail stays failed until retried"
    );
    let (status, _) = daemon
        .post(
            &format!("/api/v1/mail/outbox/{}/retry", ids[0]),
            &daemon.root,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "a sent mail is not sent again");
    daemon.stop().await;
}

/// Sends a message to `ids` as root; returns the per-id results.
async fn message(daemon: &crate::harness::Daemon, ids: &[u64], subject: &str) -> serde_json::Value {
    let (status, reply) = daemon
        .post(
            "/api/v1/users/actions/send-email",
            &daemon.root,
            json!({ "ids": ids, "subject": subject, "body": format!("{subject}, in full.") }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_notifications_go_out_as_one_digest_at_the_slot() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;
    let ida = daemon.user("ida").await;
    let jon = daemon.user("jon").await;
    // The clock starts at 2026-01-05 09:00 UTC (10:00 in Berlin).
    let schedule =
        json!({ "mail_schedule": { "preset": "daily", "hour": 9, "timezone": "Europe/Berlin" } });
    for user in [ida, jon] {
        let (status, body) = daemon
            .patch(
                &format!("/api/v1/users/{user}"),
                &daemon.root,
                schedule.clone(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = daemon
        .patch(
            &format!("/api/v1/users/{ida}"),
            &daemon.root,
            json!({ "mail_schedule": { "preset": "daily", "hour": 25 } }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("mail_schedule.hour"),
        "{body}"
    );

    message(&daemon, &[ida, jon], "Trap check moved to Friday").await;
    message(&daemon, &[ida], "Bring spare batteries").await;
    let (status, _) = daemon
        .patch(
            &format!("/api/v1/users/{ida}"),
            &daemon.root,
            json!({ "welcome_email": true }),
        )
        .await;
    assert_eq!(status, 200);
    let held = outbox(&daemon, &format!("user={ida}&status=queued")).await;
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(
        held.iter()
            .all(|m| m["hold_until"] == "2026-01-06T08:00:00Z"),
        "{held:?}"
    );

    // Security mails are never held: a reset link, a password-change alert.
    daemon
        .public_post("/api/v1/password-reset/request", json!({ "login": "ida" }))
        .await;
    smtp.wait_for_mail("ida@example.org", "Reset your password")
        .await;
    let (status, _) = daemon
        .post(
            &format!("/api/v1/users/{ida}/password"),
            &daemon.root,
            json!({ "password": "another sound passphrase" }),
        )
        .await;
    assert_eq!(status, 204);
    smtp.wait_for_mail("ida@example.org", "Your password was changed")
        .await;

    // Jon is masked before the slot: his held mail is cancelled and scrubbed.
    daemon.bulk("mask", json!({ "ids": [jon] })).await;
    let jons = outbox(&daemon, &format!("user={jon}")).await;
    assert!(
        jons.iter()
            .all(|m| m["status"] == "cancelled" && m["to"] == format!("masked-{jon}@invalid")),
        "{jons:?}"
    );

    daemon
        .clock
        .advance(chrono::Duration::hours(22) + chrono::Duration::minutes(59));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        smtp.to("ida@example.org").len(),
        2,
        "nothing held goes before the slot"
    );
    daemon.clock.advance(chrono::Duration::minutes(1));
    let digest = smtp
        .wait_for_mail("ida@example.org", "3 notifications")
        .await;
    for subject in [
        "Trap check moved to Friday",
        "Bring spare batteries",
        "Welcome to gatehouse.example.org",
    ] {
        assert!(
            digest.text.contains(&format!("== {subject} ==")),
            "{subject}: {}",
            digest.text
        );
    }
    assert!(digest.text.contains("Bring spare batteries, in full."));
    let parts = outbox(&daemon, &format!("user={ida}&status=digested")).await;
    assert_eq!(parts.len(), 3);
    assert!(
        parts
            .iter()
            .all(|p| p["digest"] == parts[0]["digest"] && !p["sent_at"].is_null())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        smtp.to("jon@example.org").is_empty(),
        "a masked user's held mail never leaves"
    );

    // Across the change to summer time the slot stays at 09:00 in Berlin:
    // 2026-03-29 07:00 UTC instead of 08:00.
    daemon
        .clock
        .advance(chrono::Duration::days(81) + chrono::Duration::hours(12));
    message(&daemon, &[ida], "Spring survey").await;
    let held = outbox(&daemon, &format!("user={ida}&status=queued")).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["hold_until"], "2026-03-29T07:00:00Z", "{held:?}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_starttls_and_implicit_tls_to_a_trusted_server_only() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("smtp.crt"), dir.path().join("smtp.key"));
    gatehouse::tls::generate_self_signed(&cert, &key).expect("certificate");
    let (cert_arg, key_arg) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let (starttls_port, smtps_port) = (free_port(), free_port());
    let starttls_dir = dir.path().join("starttls");
    let smtps_dir = dir.path().join("smtps");
    // aiosmtpd refuses mail before STARTTLS (require_starttls) on this one.
    let starttls = Smtp::start_with(
        &starttls_dir,
        starttls_port,
        &["--tlscert", cert_arg, "--tlskey", key_arg],
    );
    let smtps = Smtp::start_with(
        &smtps_dir,
        smtps_port,
        &["--smtpscert", cert_arg, "--smtpskey", key_arg],
    );
    let cases = [
        (
            format!("smtp://127.0.0.1:{starttls_port}?tls=starttls"),
            &starttls,
        ),
        (format!("smtps://127.0.0.1:{smtps_port}"), &smtps),
    ];
    for (url, server) in cases {
        let trusting = {
            let (url, cert) = (url.clone(), cert.clone());
            mailing_daemon(0, move |config| {
                config.mail.smtp_url = Some(url);
                config.mail.ca_file = Some(cert);
            })
            .await
        };
        let to = format!("tls{}@example.org", server.arrived().len());
        let (status, _) = trusting
            .post("/api/v1/mail/test", &trusting.root, json!({ "to": to }))
            .await;
        assert_eq!(status, 202);
        server.wait_for_mail(&to, "Test mail").await;
        trusting.stop().await;

        // Without the CA the server's certificate is not trusted: no mail leaves.
        let untrusting = {
            let url = url.clone();
            mailing_daemon(0, move |config| config.mail.smtp_url = Some(url)).await
        };
        let (status, _) = untrusting
            .post(
                "/api/v1/mail/test",
                &untrusting.root,
                json!({ "to": "nobody@example.org" }),
            )
            .await;
        assert_eq!(status, 202);
        let refused = outbox_until(&untrusting, "kind=test", |e| {
            e.iter().all(|m| m["attempts"] == 1)
        })
        .await;
        let error = refused[0]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_lowercase();
        assert!(
            error.contains("certificate") || error.contains("issuer"),
            "{url}: {error}"
        );
        assert!(server.to("nobody@example.org").is_empty());
        untrusting.stop().await;
    }
}
