//! Directory benchmark (issue: foundation). Seeds 100,000 users in-process,
//! then starts the `gatehouse serve` binary on that store and measures, against
//! it: its resident memory, filtered text-searched pages of 100 (p50/p99), GET
//! /api/v1/users/{id} with wrk against GET /healthz as an in-run baseline.
//! Run: `cargo bench --bench directory` (needs `wrk` for the throughput part).

mod common;
#[allow(dead_code)]
#[path = "../tests/it/process.rs"]
mod process;

use common::{BenchDaemon, dir_mib, ms, percentile, rss_mib, rss_of, wrk};
use gatehouse::domain::user_input::NewUser;
use process::Process;
use serde_json::json;
use std::time::Instant;

const USERS: usize = 100_000;
const SEED_WRITERS: usize = 32;
const FIRST: [&str; 10] = [
    "Anna", "Bruno", "Chen", "Dara", "Emil", "Fatima", "Gustav", "Hana", "Ivo", "Jade",
];
const LAST: [&str; 10] = [
    "Berg", "Costa", "Dahl", "Eriksen", "Fischer", "Garcia", "Holm", "Ito", "Jansen", "Kowalski",
];
const COMPANIES: [&str; 5] = [
    "Field Lab",
    "Marine Unit",
    "Forest Survey",
    "Bird Station",
    "Data Office",
];

fn new_user(i: usize) -> NewUser {
    let body = json!({
        "login": format!("user{i:06}"),
        "email": format!("user{i:06}@example.org"),
        "first_name": FIRST[i % 10],
        "last_name": LAST[(i / 10) % 10],
        "company": COMPANIES[i % 5],
        "type": if i % 7 == 0 { "email" } else { "local" },
        "status": if i % 11 == 0 { "pending" } else { "active" },
        "groups": [format!("team{}", i % 10)],
    });
    serde_json::from_value(body).expect("valid user")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rss_empty = rss_mib();
    let daemon = common::start(|_| {}).await;
    let directory = daemon.running.directory.clone();
    let root = directory
        .signin
        .authenticate(&daemon.root)
        .expect("root token");
    for team in 0..10 {
        directory
            .groups
            .create_group(&root, format!("team{team}"), None)
            .expect("group");
    }
    // Seeded by concurrent writers: every create waits until it is on disk,
    // and concurrent creates share one flush.
    let seeding = Instant::now();
    let writers: Vec<_> = (0..SEED_WRITERS)
        .map(|writer| {
            let (directory, root) = (directory.clone(), root.clone());
            tokio::spawn(async move {
                for i in (writer..USERS).step_by(SEED_WRITERS) {
                    directory
                        .accounts
                        .create_user(&root, new_user(i))
                        .await
                        .expect("seed user");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("seed writer");
    }
    let seed_time = seeding.elapsed();
    println!(
        "seeded {USERS} users in {:.1} s ({:.0} creates/s, 32 writers, each create durable)",
        seed_time.as_secs_f64(),
        USERS as f64 / seed_time.as_secs_f64()
    );
    println!(
        "resident memory of the seeding process: {:.0} MiB (before start: {:.0} MiB)",
        rss_mib(),
        rss_empty
    );
    let BenchDaemon {
        running, root, dir, ..
    } = daemon;
    drop(directory);
    running.shutdown().await.expect("shutdown");
    println!("on-disk size: {:.0} MiB", dir_mib(dir.path()));
    let server = Process::start(&dir.path().join("data"), "warn,gatehouse::store=info");
    println!(
        "gatehouse serve on that store: resident memory {:.0} MiB after start",
        rss_of_process(server.pid())
    );
    let daemon = Remote {
        base: server.base.clone(),
        root,
    };

    let client = reqwest::Client::new();
    let queries = [
        "q=berg&type=local&status=active&limit=100",
        "q=anna&group=team3&limit=100",
        "q=marine&search_fields=company&exclude_group=team1&limit=100",
        "q=user09&status=active&limit=100",
        "q=nomatch-anywhere&limit=100",
    ];
    for query in queries {
        let url = format!("{}/api/v1/users?{query}", daemon.base);
        let mut samples = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            let response = client
                .get(&url)
                .bearer_auth(&daemon.root)
                .send()
                .await
                .expect("list");
            assert!(response.status().is_success());
            response.bytes().await.expect("body");
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "list {query:<62} p50 {:6.2} ms  p99 {:6.2} ms",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 99.0))
        );
    }

    let user_url = format!("{}/api/v1/users/54321", daemon.base);
    let health_url = format!("{}/healthz", daemon.base);
    match (
        wrk(&health_url, &daemon.root, 10),
        wrk(&user_url, &daemon.root, 10),
    ) {
        (Some(health), Some(user)) => println!(
            "wrk -t2 -c64 -d10s: GET /healthz {health:.0} req/s, GET /api/v1/users/{{id}} {user:.0} req/s ({:.0}% of healthz)",
            100.0 * user / health
        ),
        _ => println!("wrk not found: install it (apt-get install wrk) for the throughput figures"),
    }
    println!(
        "gatehouse serve: resident memory {:.0} MiB after the run",
        rss_of_process(server.pid())
    );
}

/// The address and token of the server under test.
struct Remote {
    base: String,
    root: String,
}

/// The resident memory of process `pid`, in MiB.
fn rss_of_process(pid: u32) -> f64 {
    rss_of(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}
