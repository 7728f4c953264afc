//! Mail against a real SMTP server (aiosmtpd): account mails with working
//! links, the password-reset request, mail to selected users, an SMTP outage,
//! digests on the manual clock, and the outbox routes.

use crate::harness::{Daemon, PASSWORD, code, id};
use crate::smtp::{Smtp, free_port};
use serde_json::{Value, json};
use std::time::Duration;

/// A daemon mailing through `port`, polling its outbox often, retrying after
/// a second of (manual) clock time.
pub async fn mailing_daemon(
    port: u16,
    adjust: impl FnOnce(&mut gatehouse::config::Config),
) -> Daemon {
    Daemon::start_with(|config| {
        config.mail.smtp_url = Some(Smtp::url(port));
        config.mail.poll_interval = Duration::from_millis(50);
        config.mail.retry_initial = Duration::from_secs(1);
        config.mail.retry_max = Duration::from_secs(2);
        config.mail.from = "Gatehouse <noreply@gatehouse.example.org>".into();
        config.registration.enabled = true;
        adjust(config);
    })
    .await
}

/// The outbox entries matching `query` (e.g. "kind=message").
pub async fn outbox(daemon: &Daemon, query: &str) -> Vec<Value> {
    let (status, page) = daemon
        .get(
            &format!("/api/v1/mail/outbox?limit=1000&{query}"),
            &daemon.root,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// Waits until the outbox entries matching `query` satisfy `done`.
async fn outbox_until(daemon: &Daemon, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let entries = outbox(daemon, query).await;
        if done(&entries) {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "outbox {query} never settled: {:?}",
        outbox(daemon, query).await
    );
}

async fn user_until(daemon: &Daemon, user: u64, field: &str) -> Value {
    for _ in 0..600 {
        let (_, body) = daemon
            .get(&format!("/api/v1/users/{user}"), &daemon.root)
            .await;
        if !body[field].is_null() {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{field} never set on user {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_mails_arrive_with_working_links() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;

    // Created without a password: pending, and the activation link is mailed.
    let nora = daemon
        .create(json!({ "login": "nora", "email": "nora@example.org", "welcome_email": true }))
        .await;
    assert_eq!(nora["status"], "pending");
    let nora = id(&nora);
    let activation = smtp
        .wait_for_mail("nora@example.org", "Activate your account")
        .await;
    assert!(
        activation
            .text
            .contains("https://gatehouse.example.org/activate?token=gh_act_")
    );
    // minijinja escapes `/` as `&#x2f;` in HTML, which browsers read back.
    let html = activation.html.replace("&#x2f;", "/");
    assert!(
        html.contains("<a href=\"https://gatehouse.example.org/activate?token=gh_act_"),
        "{html}"
    );
    assert!(
        activation.message_id.ends_with("@gatehouse.example.org>"),
        "{}",
        activation.message_id
    );
    let (status, body) = daemon
        .public_post(
            "/api/v1/activate",
            json!({ "token": activation.token(), "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.login("nora", PASSWORD).await.0, 200);
    let (status, _) = daemon
        .public_post(
            "/api/v1/activate",
            json!({ "token": activation.token(), "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 400, "an activation link works once");

    smtp.wait_for_mail("nora@example.org", "Welcome to gatehouse.example.org")
        .await;
    let welcomed = user_until(&daemon, nora, "welcome_email_sent_at").await;
    assert_eq!(welcomed["welcome_email"], true);

    // The confirmation flag mails a link that confirms the address.
    let (status, body) = daemon
        .patch(
            &format!("/api/v1/users/{nora}"),
            &daemon.root,
            json!({ "confirm_email": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let confirmation = smtp
        .wait_for_mail("nora@example.org", "Confirm your email")
        .await;
    let (status, body) = daemon
        .public_post(
            "/api/v1/confirm-email",
            json!({ "token": confirmation.token() }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["email_confirmed_at"].is_null(), "{body}");
    user_until(&daemon, nora, "confirm_email_sent_at").await;

    // Notices: password set by an admin, 2FA reset, address changed (to the old one).
    let (status, _) = daemon
        .post(
            &format!("/api/v1/users/{nora}/password"),
            &daemon.root,
            json!({ "password": "another sound passphrase" }),
        )
        .await;
    assert_eq!(status, 204);
    smtp.wait_for_mail("nora@example.org", "Your password was changed")
        .await;
    let (status, _) = daemon
        .delete(&format!("/api/v1/users/{nora}/2fa"), &daemon.root)
        .await;
    assert_eq!(status, 200);
    smtp.wait_for_mail("nora@example.org", "two-factor sign-in was reset")
        .await;
    let (status, _) = daemon
        .patch(
            &format!("/api/v1/users/{nora}"),
            &daemon.root,
            json!({ "email": "nora.new@example.org" }),
        )
        .await;
    assert_eq!(status, 200);
    let changed = smtp
        .wait_for_mail("nora@example.org", "email address was changed")
        .await;
    assert!(
        changed.text.contains("nora.new@example.org"),
        "{}",
        changed.text
    );
    daemon.bulk("deactivate", json!({ "ids": [nora] })).await;
    smtp.wait_for_mail("nora.new@example.org", "was deactivated")
        .await;

    // A registration approved by an admin.
    let (status, body) = daemon
        .public_post(
            "/api/v1/register",
            json!({ "login": "omar", "email": "omar@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    daemon.bulk("activate", json!({ "ids": [id(&body)] })).await;
    smtp.wait_for_mail("omar@example.org", "Your account was approved")
        .await;

    // Every mail went out once, from the configured sender.
    let all = smtp.arrived();
    let mut ids: Vec<&str> = all.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no duplicates");
    let sent = outbox_until(&daemon, "status=sent", |e| e.len() == all.len()).await;
    assert!(
        sent.iter()
            .all(|e| e["attempts"] == 1 && e["last_error"].is_null())
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_requests_answer_alike_and_mail_only_active_users() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;
    let ada = daemon.user("ada").await;
    let bob = daemon.user("bob").await;
    daemon.bulk("deactivate", json!({ "ids": [bob] })).await;
    smtp.wait_for_mail("bob@example.org", "deactivated").await;

    let mut answers = Vec::new();
    for name in [
        "nobody",
        "bob",
        "ada@example.org",
        "bob@example.org",
        "NOBODY@example.org",
    ] {
        let reply = daemon
            .public_post("/api/v1/password-reset/request", json!({ "login": name }))
            .await;
        answers.push(reply);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 202);

    let reset = smtp
        .wait_for_mail("ada@example.org", "Reset your password")
        .await;
    assert!(
        reset
            .text
            .contains("https://gatehouse.example.org/reset-password?token=gh_rst_")
    );
    let (status, body) = daemon
        .public_post(
            "/api/v1/password-reset",
            json!({ "token": reset.token(), "password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.login("ada", "a brand new passphrase").await.0, 200);
    assert_eq!(daemon.login("ada", PASSWORD).await.0, 401);
    smtp.wait_for_mail("ada@example.org", "Your password was changed")
        .await;

    // Bob's requests were handled (audited as not queued) and mailed nothing.
    let mut bob_requests = Vec::new();
    for _ in 0..200 {
        let (_, audit) = daemon.get("/api/v1/audit?limit=200", &daemon.root).await;
        bob_requests = audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["action"] == "user.request_password_reset" && e["target"] == bob)
            .map(|e| e["details"]["queued"].clone())
            .collect();
        if bob_requests.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bob_requests, [json!(false), json!(false)]);
    assert!(
        smtp.to("bob@example.org")
            .iter()
            .all(|m| !m.subject.contains("Reset"))
    );

    // Three links per user and hour; further requests are answered the same and dropped.
    for _ in 0..4 {
        let reply = daemon
            .public_post("/api/v1/password-reset/request", json!({ "login": "ada" }))
            .await;
        assert_eq!(reply, answers[0]);
    }
    let resets = outbox_until(&daemon, &format!("kind=password_reset&user={ada}"), |e| {
        e.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        outbox(&daemon, &format!("kind=password_reset&user={ada}"))
            .await
            .len(),
        3,
        "{resets:?}"
    );

    let (status, body) = daemon
        .public_post("/api/v1/password-reset/request", json!({}))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("login"),
        "{body}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_routes_say_so_when_mail_is_off() {
    let daemon = Daemon::start().await;
    let user = daemon.user("pia").await;
    let cases = [
        ("/api/v1/password-reset/request", json!({ "login": "pia" })),
        ("/api/v1/mail/test", json!({ "to": "pia@example.org" })),
        (
            "/api/v1/users/actions/send-email",
            json!({ "ids": [user], "subject": "s", "body": "b" }),
        ),
    ];
    for (path, body) in cases {
        let (status, reply) = daemon.post(path, &daemon.root, body).await;
        assert_eq!(
            (status, code(&reply)),
            (409, "mail_disabled"),
            "{path}: {reply}"
        );
    }
    // Without mail, a user created without a password is still pending; the
    // admin hands out the activation link, as before.
    let created = daemon
        .create(json!({ "login": "quinn", "email": "quinn@example.org" }))
        .await;
    assert_eq!(created["status"], "pending");
    let (status, issued) = daemon
        .post(
            &format!("/api/v1/users/{}/activation-token", id(&created)),
            &daemon.root,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    assert!(
        issued["link"]
            .as_str()
            .unwrap_or("")
            .contains("/activate?token=")
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_email_reports_each_recipient() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;
    let ann = daemon.user("ann").await;
    let ben = daemon.user("ben").await;
    let cat = id(&daemon
        .create(json!({ "login": "cat", "password": PASSWORD }))
        .await);
    let dan = daemon.user("dan").await;
    let eve = daemon.user("eve").await;
    daemon.bulk("mask", json!({ "ids": [dan] })).await;
    daemon.bulk("delete", json!({ "ids": [eve] })).await;
    let (status, body) = daemon
        .patch(
            &format!("/api/v1/users/{ben}"),
            &daemon.root,
            json!({ "mail_schedule": { "preset": "never" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, reply) = daemon
        .post(
            "/api/v1/users/actions/send-email",
            &daemon.root,
            json!({ "ids": [ann, ben, cat, dan, eve, 999], "subject": "Field day on Friday", "body": "Bring <boots>.\nSee you." }),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let results: Vec<(u64, String)> = reply["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap_or(0),
                r["result"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        (ann, "queued"),
        (ben, "schedule_never"),
        (cat, "no_address"),
        (dan, "masked"),
        (eve, "deleted"),
        (999, "error"),
    ];
    assert_eq!(
        results,
        expected.map(|(id, r)| (id, r.to_owned())).to_vec(),
        "{reply}"
    );
    assert_eq!(reply["queued"], 1);

    let mail = smtp
        .wait_for_mail("ann@example.org", "Field day on Friday")
        .await;
    assert!(mail.text.contains("Bring <boots>."), "{}", mail.text);
    assert!(mail.html.contains("Bring &lt;boots&gt;."), "{}", mail.html);

    let bad = [
        (
            json!({ "ids": [ann], "subject": "two\nlines", "body": "b" }),
            "subject",
        ),
        (json!({ "ids": [ann], "subject": "s", "body": " " }), "body"),
        (json!({ "ids": [], "subject": "s", "body": "b" }), "ids"),
        (json!({ "ids": [ann], "subject": "s" }), "body"),
    ];
    for (body, field) in bad {
        let (status, reply) = daemon
            .post("/api/v1/users/actions/send-email", &daemon.root, body)
            .await;
        assert_eq!(status, 400, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(field),
            "{field}: {reply}"
        );
    }
    let (_, staff) = daemon.user_with_roles("staff", &["user_manager"]).await;
    let (status, _) = daemon
        .post(
            "/api/v1/users/actions/send-email",
            &staff,
            json!({ "ids": [ann], "subject": "s", "body": "b" }),
        )
        .await;
    assert_eq!(status, 403, "mail to users is for admins");
    let (status, _) = daemon.get("/api/v1/mail/outbox", &staff).await;
    assert_eq!(status, 403);
    daemon.stop().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_notifications_go_out_as_one_digest_at_the_slot() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;
    let ida = daemon.user("ida").await;
    // The clock starts at 2026-01-05 09:00 UTC (10:00 in Berlin).
    let (status, body) = daemon
        .patch(
            &format!("/api/v1/users/{ida}"),
            &daemon.root,
            json!({ "mail_schedule": { "preset": "daily", "hour": 9, "timezone": "Europe/Berlin" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
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

    for password in ["first sound passphrase", "second sound passphrase"] {
        let (status, _) = daemon
            .post(
                &format!("/api/v1/users/{ida}/password"),
                &daemon.root,
                json!({ "password": password }),
            )
            .await;
        assert_eq!(status, 204);
    }
    let (status, _) = daemon
        .delete(&format!("/api/v1/users/{ida}/2fa"), &daemon.root)
        .await;
    assert_eq!(status, 200);
    let held = outbox(&daemon, &format!("user={ida}&status=queued")).await;
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(
        held.iter()
            .all(|m| m["hold_until"] == "2026-01-06T08:00:00Z"),
        "{held:?}"
    );

    // A reset link is never held.
    daemon
        .public_post("/api/v1/password-reset/request", json!({ "login": "ida" }))
        .await;
    smtp.wait_for_mail("ida@example.org", "Reset your password")
        .await;

    daemon
        .clock
        .advance(chrono::Duration::hours(22) + chrono::Duration::minutes(59));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        smtp.to("ida@example.org").len(),
        1,
        "nothing before the slot"
    );
    daemon.clock.advance(chrono::Duration::minutes(1));
    let digest = smtp
        .wait_for_mail("ida@example.org", "3 notifications")
        .await;
    assert_eq!(
        digest
            .text
            .matches("== Your password was changed ==")
            .count(),
        2,
        "{}",
        digest.text
    );
    assert!(
        digest
            .text
            .contains("== Your two-factor sign-in was reset ==")
    );
    let parts = outbox(&daemon, &format!("user={ida}&status=digested")).await;
    assert_eq!(parts.len(), 3);
    assert!(
        parts
            .iter()
            .all(|p| p["digest"] == parts[0]["digest"] && !p["sent_at"].is_null())
    );

    // Across the change to summer time the slot stays at 09:00 in Berlin:
    // 2026-03-29 07:00 UTC instead of 08:00.
    daemon
        .clock
        .advance(chrono::Duration::days(81) + chrono::Duration::hours(12));
    let (status, _) = daemon
        .post(
            &format!("/api/v1/users/{ida}/password"),
            &daemon.root,
            json!({ "password": "third sound passphrase" }),
        )
        .await;
    assert_eq!(status, 204);
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
