//! Core benchmark (issue: durable writes, readers that never wait). Measures,
//! in one run: creates/s over HTTP with 16 clients (each 2xx durable); GET
//! /api/v1/users/{id} p50/p99 and req/s from 8 clients alone, while a bulk
//! action over 10,000 ids runs, and while a full LDAP sync creates 10,000
//! users from slapd. Run: `cargo bench --bench core` (needs slapd, ldap-utils).

mod common;
#[allow(dead_code)]
#[path = "../tests/it/slapd.rs"]
mod slapd;

use common::{ms, percentile};
use gatehouse::service::sync::SyncMode;
use serde_json::{Value, json};
use slapd::Slapd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const WRITERS: usize = 16;
const CREATES: usize = 10_000;
const READERS: usize = 8;
const DIRECTORY_USERS: usize = 10_000;

/// Creates `CREATES` users from `WRITERS` concurrent clients; returns their ids.
async fn create_users(base: &str, token: &str) -> (Vec<u64>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (base, token) = (base.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut ids = Vec::new();
                for n in (writer..CREATES).step_by(WRITERS) {
                    let body = json!({ "login": format!("bench{n:05}"), "status": "active",
                        "email": format!("bench{n:05}@example.org"), "first_name": "Bench" });
                    let reply = client
                        .post(format!("{base}/api/v1/users"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .expect("create");
                    assert_eq!(reply.status().as_u16(), 201);
                    let user: Value = reply.json().await.expect("json");
                    ids.push(user["id"].as_u64().expect("id"));
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("writer"));
    }
    (ids, started.elapsed())
}

/// GETs random users from `READERS` clients until `stop`; returns latencies and req/s.
async fn read_until(
    base: &str,
    token: &str,
    ids: Arc<Vec<u64>>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..READERS)
        .map(|reader| {
            let (base, token, ids, stop) =
                (base.to_owned(), token.to_owned(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut samples = Vec::new();
                let mut n = reader * 7919;
                while !stop.load(Ordering::Relaxed) {
                    n = (n + 104_729) % ids.len();
                    let url = format!("{base}/api/v1/users/{}", ids[n]);
                    let began = Instant::now();
                    let reply = client
                        .get(url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("get");
                    assert!(reply.status().is_success());
                    reply.bytes().await.expect("body");
                    samples.push(began.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("reader"));
    }
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    (samples, rate)
}

fn report(label: &str, samples: &[Duration], rate: f64) {
    println!(
        "GET /api/v1/users/{{id}} {label:<34} p50 {:6.2} ms  p99 {:6.2} ms  max {:7.2} ms  {rate:6.0} req/s ({} requests)",
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
        samples.len()
    );
}

fn directory_ldif() -> String {
    (0..DIRECTORY_USERS)
        .map(|i| Slapd::person(&format!("dir{i:05}"), &format!("Given{i}"), "Surname", "pw"))
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let slapd = Slapd::start();
    slapd.ldif(&directory_ldif());
    let daemon = common::start(|c| {
        c.ftp.enabled = false;
        slapd::point_config_at(c, &slapd.url);
    })
    .await;
    let (base, token) = (daemon.base.clone(), daemon.root.clone());

    let (ids, took) = create_users(&base, &token).await;
    println!(
        "create {CREATES} users, {WRITERS} clients: {:.1} s = {:.0} creates/s (each 2xx durable)",
        took.as_secs_f64(),
        CREATES as f64 / took.as_secs_f64()
    );
    let ids = Arc::new(ids);

    // Readers alone, as the baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let readers = tokio::spawn({
        let (base, token, ids, stop) = (base.clone(), token.clone(), ids.clone(), stop.clone());
        async move { read_until(&base, &token, ids, stop).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let (samples, rate) = readers.await.expect("readers");
    report("alone", &samples, rate);

    // Readers while a bulk action over every created user runs, twice (add, remove).
    let stop = Arc::new(AtomicBool::new(false));
    let readers = tokio::spawn({
        let (base, token, ids, stop) = (base.clone(), token.clone(), ids.clone(), stop.clone());
        async move { read_until(&base, &token, ids, stop).await }
    });
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/api/v1/groups"))
        .bearer_auth(&token)
        .json(&json!({ "name": "bulk" }))
        .send()
        .await
        .expect("group");
    let started = Instant::now();
    for action in ["add-to-groups", "remove-from-groups"] {
        let reply: Value = client
            .post(format!("{base}/api/v1/users/actions/{action}"))
            .bearer_auth(&token)
            .json(&json!({ "ids": *ids, "groups": ["bulk"] }))
            .send()
            .await
            .expect("bulk")
            .json()
            .await
            .expect("json");
        assert_eq!(reply["succeeded"], CREATES, "{action}");
    }
    let bulk = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (samples, rate) = readers.await.expect("readers");
    report("during 2 bulk actions x 10,000 ids", &samples, rate);
    println!("  the two bulk actions took {:.1} s", bulk.as_secs_f64());

    // Readers while a full LDAP sync creates 10,000 users.
    let stop = Arc::new(AtomicBool::new(false));
    let readers = tokio::spawn({
        let (base, token, ids, stop) = (base.clone(), token.clone(), ids.clone(), stop.clone());
        async move { read_until(&base, &token, ids, stop).await }
    });
    let started = Instant::now();
    let sync = daemon
        .running
        .directory
        .sync
        .sync_directory(SyncMode::Full, &|_| {})
        .await
        .expect("sync");
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (samples, rate) = readers.await.expect("readers");
    assert_eq!(sync.created, DIRECTORY_USERS, "{sync:?}");
    report("during a full LDAP sync (10,000)", &samples, rate);
    println!("  the sync took {:.1} s", took.as_secs_f64());
    daemon.running.shutdown().await.expect("shutdown");
}
