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
pub async fn outbox_until(
    daemon: &Daemon,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
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
async fn a_csv_import_sends_the_same_account_mails_as_the_api() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let smtp = Smtp::start(dir.path(), port);
    let daemon = mailing_daemon(port, |_| {}).await;
    let csv = "user.login,user.email,user.welcome_email\nkai,kai@example.org,true\n";
    let (status, report) = crate::exchange::import(&daemon, "add", false, csv).await;
    assert_eq!(status, 200, "{report}");
    let welcome = smtp.wait_for_mail("kai@example.org", "Welcome to").await;
    assert!(
        welcome.text.contains("Your login is kai."),
        "{}",
        welcome.text
    );
    daemon.stop().await;
}
