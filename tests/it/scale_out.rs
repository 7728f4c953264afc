//! Several daemons on one PostgreSQL database, as behind a load balancer:
//! what one daemon commits holds on the other (uniqueness, ids, a
//! deactivation within a second), and the scheduled jobs move to the other
//! daemon when their leader is killed.

use crate::harness::{Daemon, PASSWORD, code, id};
use crate::postgres::{Cluster, query};
use crate::process::Process;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The promise: a change on one daemon is seen by the other within a second.
const PROPAGATION: Duration = Duration::from_secs(1);

#[tokio::test]
async fn two_daemons_on_one_database_agree() {
    let cluster = Arc::new(Cluster::start());
    let a = Daemon::start_on(cluster, |_| {}).await;
    let b = a.beside().await;

    // A user created on one daemon signs in on the other.
    let alice = a.user("alice").await;
    let started = Instant::now();
    let session = loop {
        let (status, reply) = b.login("alice", PASSWORD).await;
        if status == 200 {
            break reply["token"].as_str().expect("session token").to_owned();
        }
        assert!(
            started.elapsed() < PROPAGATION,
            "alice not on b: {status} {reply}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(b.get("/api/v1/me", &session).await.0, 200);
    assert_eq!(
        a.get("/api/v1/me", &session).await.0,
        200,
        "one session store"
    );

    // Deactivated on a, she is refused on b within a second.
    a.bulk("deactivate", json!({ "ids": [alice] })).await;
    let deactivated = Instant::now();
    while b.get("/api/v1/me", &session).await.0 != 401 {
        assert!(
            deactivated.elapsed() < PROPAGATION,
            "b still takes the session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.login("alice", PASSWORD).await.0, 401);

    // The same login asked for on both daemons at once: exactly one wins.
    let attempts = (0..16).map(|n| {
        let daemon = if n % 2 == 0 { &a } else { &b };
        daemon.call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(&daemon.root),
            Some(json!({ "login": "contested", "password": PASSWORD })),
        )
    });
    let replies = futures_util::future::join_all(attempts).await;
    let created = replies.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 1, "{replies:?}");
    for (status, reply) in replies.iter().filter(|(status, _)| *status != 201) {
        assert_eq!((*status, code(reply)), (409, "duplicate"), "{reply}");
    }

    // Users created on both at once get distinct ids, and both list them all.
    let creations = (0..20).map(|n| {
        let daemon = if n % 2 == 0 { &a } else { &b };
        daemon.call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(&daemon.root),
            Some(json!({ "login": format!("field{n}"), "password": PASSWORD })),
        )
    });
    let ids: BTreeSet<u64> = futures_util::future::join_all(creations)
        .await
        .iter()
        .map(|(status, user)| {
            assert_eq!(*status, 201, "{user}");
            id(user)
        })
        .collect();
    assert_eq!(ids.len(), 20, "no id handed out twice");
    let settled = Instant::now();
    while listed(&a).await != ids || listed(&b).await != ids {
        assert!(settled.elapsed() < PROPAGATION, "the lists differ");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = a.database_url();
    let logins = query(
        &url,
        "SELECT count(*) FROM gh_entries WHERE tree = 1 AND key LIKE 'field%'",
    );
    assert_eq!(logins, "20", "the database holds the login index");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_daemon_without_the_directory_sealing_key_is_refused() {
    let a = Daemon::start_on(Arc::new(Cluster::start()), |_| {}).await;
    let (_dir, config) = a.beside_config();
    // Forgotten: the daemon would make a key of its own.
    std::fs::remove_file(config.data_dir.join("secret.key")).expect("remove");
    let clock = Arc::new(gatehouse::domain::clock::SystemClock);
    let refused = gatehouse::app::start(&config, clock)
        .await
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("secret.key is not the key")),
        "{refused:?}"
    );
    a.stop().await;
}

#[tokio::test]
async fn a_lockout_earned_on_one_daemon_holds_on_the_other() {
    let a = Daemon::start_on(Arc::new(Cluster::start()), |c| c.signin.max_failures = 3).await;
    let b = a.beside().await;
    a.user("bob").await;
    // Failures alternate between the daemons, as a balancer would send them.
    for n in 0..3 {
        let daemon = if n % 2 == 0 { &a } else { &b };
        assert_eq!(daemon.login("bob", "guess").await.0, 401, "guess {n}");
    }
    for daemon in [&a, &b] {
        let (status, reply) = daemon.login("bob", PASSWORD).await;
        assert_ne!(status, 200, "locked on every daemon: {reply}");
    }
    // A success elsewhere forgives: after the lock, the right password works
    // on one daemon and the other starts bob afresh too.
    for daemon in [&a, &b] {
        daemon.clock.advance(chrono::Duration::minutes(10));
    }
    assert_eq!(b.login("bob", PASSWORD).await.0, 200);
    assert_eq!(a.login("bob", "guess").await.0, 401);
    assert_eq!(
        a.login("bob", PASSWORD).await.0,
        200,
        "one failure after a success"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn uploads_of_one_user_on_two_daemons_stay_within_the_quota() {
    let a = Daemon::start_on(Arc::new(Cluster::start()), |_| {}).await;
    let b = a.beside().await;
    let uid = crate::ftp::uploader(&a, "carol", Some(30)).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = crate::ftp::write_file(dir.path(), "survey.bin", 20 * 1024 * 1024);
    let file = file.to_str().expect("path");
    let mut completed = 0;
    for round in 0..3 {
        let name = format!("FTP/round{round}.bin");
        let args = ["-T", file, name.as_str()];
        let upload = |daemon| crate::ftp::curl(daemon, "carol", PASSWORD, true, &args);
        let (on_a, on_b) = tokio::join!(upload(&a), upload(&b));
        let passed = [&on_a, &on_b].iter().filter(|run| run.code == 0).count();
        assert!(
            passed <= 1,
            "round {round}: both 20 MB uploads passed a 30 MB quota"
        );
        completed += passed;
        let used = crate::ftp::ftp_state(&a, uid).await["used_bytes"]
            .as_u64()
            .expect("used bytes");
        assert!(used <= 30 * 1024 * 1024, "round {round}: {used} bytes used");
        // Start the next round empty.
        let home = crate::ftp::home(&a, uid);
        for entry in std::fs::read_dir(&home).expect("home").flatten() {
            std::fs::remove_file(entry.path()).expect("remove");
        }
        a.bulk("ftp-rescan", json!({ "ids": [uid] })).await;
    }
    assert!(completed > 0, "uploads that fit go through");
    let url = a.database_url();
    assert_eq!(
        query(&url, "SELECT count(*) FROM gh_quota_holds WHERE bytes > 0"),
        "0",
        "every hold was given back"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_database_is_reached_over_tls_when_the_url_asks() {
    let cluster = Arc::new(Cluster::start_with_tls());
    let root = cluster.certificate();
    let verified = format!("sslmode=verify-full&sslrootcert={}", root.display());
    let d = Daemon::start_on(cluster.clone(), |c| {
        let url = c.postgres.url.as_ref().expect("url").expose();
        c.postgres.url = Some(gatehouse::config::Secret::new(format!("{url}?{verified}")));
    })
    .await;
    d.user("tls").await;
    let url = d.database_url();
    let database = url
        .split('?')
        .next()
        .and_then(|base| base.rsplit('/').next())
        .expect("database name");
    let plain = query(
        &url.replace(&verified, "sslmode=require"),
        &format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{database}' AND a.pid <> pg_backend_pid()"
        ),
    );
    let (tls, clear) = plain.split_once('|').expect("two counts");
    assert!(tls.parse::<u32>().is_ok_and(|n| n > 0), "{plain}");
    assert_eq!(clear, "0", "no connection of the daemon is in the clear");
    d.stop().await;

    // A certificate the URL does not trust is refused: the daemon does not start.
    let other = tempfile::tempdir().expect("dir");
    let (stranger, key) = (
        other.path().join("other.crt"),
        other.path().join("other.key"),
    );
    gatehouse::tls::generate_self_signed(&stranger, &key).expect("certificate");
    let options = crate::postgres::store_options(
        &url.replace(&root.display().to_string(), &stranger.display().to_string()),
        1,
    );
    let refused = crate::postgres::refusal(options).await;
    assert!(
        refused.is_some(),
        "an untrusted server certificate was accepted"
    );
}

/// `gatehouse_scheduler_leader` of a daemon's `/metrics`.
async fn leads(process: &Process) -> bool {
    let text = reqwest::get(format!("{}/metrics", process.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .any(|line| line.trim() == "gatehouse_scheduler_leader 1")
}

/// Waits until exactly one of `processes` leads; its index.
async fn leader_among(processes: &[&Process]) -> usize {
    let started = Instant::now();
    loop {
        let mut leading = Vec::new();
        for (n, process) in processes.iter().enumerate() {
            if leads(process).await {
                leading.push(n);
            }
        }
        if let [one] = leading[..] {
            return one;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "leaders: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn killing_the_leader_hands_the_schedule_to_the_other_daemon() {
    let cluster = Cluster::start();
    let url = cluster.database();
    let mail_dir = tempfile::tempdir().expect("dir");
    let smtp_port = crate::smtp::free_port();
    let smtp = crate::smtp::Smtp::start(mail_dir.path(), smtp_port);
    let smtp_url = crate::smtp::Smtp::url(smtp_port);
    let env = [
        ("GATEHOUSE_STORE__BACKEND", "postgres"),
        ("GATEHOUSE_POSTGRES__URL", url.as_str()),
        ("GATEHOUSE_MAIL__SMTP_URL", smtp_url.as_str()),
        ("GATEHOUSE_MAIL__POLL_INTERVAL", "50ms"),
    ];
    let (first_dir, second_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let first = Process::start_with(first_dir.path(), "warn", &env);
    for file in ["secret.key", "root.token"] {
        std::fs::copy(first_dir.path().join(file), second_dir.path().join(file))
            .expect("shared secret files");
    }
    let second = Process::start_with(second_dir.path(), "warn", &env);
    let root = std::fs::read_to_string(first_dir.path().join("root.token")).expect("token");
    let root = root.trim();

    let mut daemons = [Some(first), Some(second)];
    let present: Vec<&Process> = daemons.iter().flatten().collect();
    let leader = leader_among(&present).await;
    // Mail queued through the daemon that does not lead goes out once: only
    // the leader sends.
    let follower = present[1 - leader];
    let before = mail_to_rangers(follower, root, "before", 0..10).await;
    wait_for_tagged(&smtp, "before", before).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tagged(&smtp, "before").len(), before, "each mail sent once");

    drop(daemons[leader].take()); // SIGKILL
    let survivor = daemons[1 - leader].as_ref().expect("the other daemon");
    let started = Instant::now();
    while !leads(survivor).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the survivor never took the schedule"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The schedule runs on the survivor now: its outbox is sent.
    let after = mail_to_rangers(survivor, root, "after", 10..20).await;
    wait_for_tagged(&smtp, "after", after).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tagged(&smtp, "after").len(), after, "each mail sent once");
}

/// The recipients of the station checks tagged `tag` that arrived.
fn tagged(smtp: &crate::smtp::Smtp, tag: &str) -> Vec<String> {
    smtp.arrived()
        .into_iter()
        .filter(|mail| mail.subject.contains(&format!("Station check {tag}")))
        .map(|mail| mail.to)
        .collect()
}

/// Waits (at most 30 s) until `count` station checks tagged `tag` arrived,
/// to as many recipients.
async fn wait_for_tagged(smtp: &crate::smtp::Smtp, tag: &str, count: usize) {
    let started = Instant::now();
    loop {
        let recipients: BTreeSet<String> = tagged(smtp, tag).into_iter().collect();
        if recipients.len() == count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {count} `{tag}` mails arrived",
            recipients.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates rangers `numbers` with mail addresses on `process` and sends them
/// a mail whose subject holds `tag`; how many were queued.
async fn mail_to_rangers(
    process: &Process,
    root: &str,
    tag: &str,
    numbers: std::ops::Range<u32>,
) -> usize {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in numbers {
        let user: serde_json::Value = client
            .post(format!("{}/api/v1/users", process.base))
            .bearer_auth(root)
            .json(&json!({ "login": format!("ranger{n}"), "email": format!("ranger{n}@example.org") }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("user");
        ids.push(id(&user));
    }
    let reply: serde_json::Value = client
        .post(format!("{}/api/v1/users/actions/send-email", process.base))
        .bearer_auth(root)
        .json(&json!({ "ids": ids, "subject": format!("Station check {tag}"), "body": "Please check your station." }))
        .send()
        .await
        .expect("send-email")
        .json()
        .await
        .expect("reply");
    assert_eq!(reply["queued"], ids.len(), "{reply}");
    ids.len()
}

/// The ids of the users whose login holds "field", as `daemon` lists them.
async fn listed(daemon: &Daemon) -> BTreeSet<u64> {
    let (status, page) = daemon
        .get("/api/v1/users?q=field&limit=100", &daemon.root)
        .await;
    assert_eq!(status, 200, "{page}");
    page["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(id)
        .collect()
}
