//! Scale-out benchmark (issue: PostgreSQL store). On one machine, the same
//! three loads against: one daemon on sled, one daemon on PostgreSQL, and two
//! daemons sharing one PostgreSQL database (clients alternating between them,
//! as behind a load balancer):
//! - GET /api/v1/users/{id} (wrk, 64 connections per daemon);
//! - user creates/s by 16 clients (each create acknowledged, so on disk);
//! - sign-ins/s (argon2id) by 16 clients over 32 users.
//!
//! PostgreSQL is a private cluster started here (initdb into a temp dir).
//! Run: `cargo bench --bench scale_out`.

mod common;
#[path = "../tests/it/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "../tests/it/process.rs"]
#[allow(dead_code)]
mod process;

use common::BenchDaemon;
use gatehouse::config::{Config, Secret, StoreBackend};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench passphrase 1";
const CLIENTS: usize = 16;
const SIGNIN_USERS: usize = 32;
const LOOKUP_USERS: usize = 200;
const RUN: Duration = Duration::from_secs(8);

struct Figures {
    lookups: f64,
    creates: f64,
    signins: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sled = vec![
        common::start(|c| {
            c.signin.max_failures = u32::MAX;
            c.ftp.enabled = false;
        })
        .await,
    ];
    let on_sled = measure("sled", &sled).await;
    stop(sled).await;

    let cluster = postgres::Cluster::start();
    let url = cluster.database();
    let on_pg = |url: String| {
        move |c: &mut Config| {
            c.signin.max_failures = u32::MAX;
            c.ftp.enabled = false;
            c.store.backend = StoreBackend::Postgres;
            c.postgres.url = Some(Secret::new(url));
        }
    };
    let one = vec![common::start(on_pg(url)).await];
    let on_one = measure("postgres-1", &one).await;
    stop(one).await;

    let url = cluster.database();
    let first = common::start(on_pg(url.clone())).await;
    let second = common::start(|c| {
        on_pg(url)(c);
        std::fs::create_dir_all(&c.data_dir).expect("data dir");
        for file in ["secret.key", "root.token"] {
            std::fs::copy(
                first.dir.path().join("data").join(file),
                c.data_dir.join(file),
            )
            .expect("shared secret files");
        }
    })
    .await;
    let two = vec![first, second];
    let on_two = measure("postgres-2", &two).await;
    stop(two).await;

    println!();
    println!("| store | GET by id /s | creates/s (16 clients) | sign-ins/s (16 clients) |");
    println!("|---|---|---|---|");
    for (name, f) in [
        ("sled, 1 daemon", &on_sled),
        ("PostgreSQL, 1 daemon", &on_one),
        ("PostgreSQL, 2 daemons", &on_two),
    ] {
        println!(
            "| {name} | {:.0} ({:.2}x) | {:.0} ({:.2}x) | {:.1} ({:.2}x) |",
            f.lookups,
            f.lookups / on_sled.lookups,
            f.creates,
            f.creates / on_sled.creates,
            f.signins,
            f.signins / on_sled.signins
        );
    }
}

async fn stop(daemons: Vec<BenchDaemon>) {
    for daemon in daemons {
        daemon.running.shutdown().await.expect("shutdown");
    }
}

/// Runs the three loads against `daemons` (clients spread over them).
async fn measure(name: &str, daemons: &[BenchDaemon]) -> Figures {
    let client = reqwest::Client::new();
    let root = daemons[0].root.clone();
    let bases: Vec<String> = daemons.iter().map(|d| d.base.clone()).collect();
    let mut ids = Vec::new();
    for i in 0..LOOKUP_USERS.max(SIGNIN_USERS) {
        let mut body = json!({ "login": format!("{name}-u{i}") });
        if i < SIGNIN_USERS {
            body["password"] = json!(PASSWORD);
        }
        let response = client
            .post(format!("{}/api/v1/users", bases[i % bases.len()]))
            .bearer_auth(&root)
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        let user: serde_json::Value = response.json().await.expect("user");
        ids.push(user["id"].as_u64().expect("id"));
    }
    // Let the second daemon's mirror take in the seeded users.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // GET by id: one wrk per daemon at once, rates summed.
    let seconds = RUN.as_secs() as u32;
    let wrks: Vec<_> = bases
        .iter()
        .map(|base| {
            let url = format!("{base}/api/v1/users/{}", ids[ids.len() / 2]);
            let token = root.clone();
            std::thread::spawn(move || common::wrk(&url, &token, seconds).unwrap_or(0.0))
        })
        .collect();
    let lookups: f64 = wrks.into_iter().map(|t| t.join().unwrap_or(0.0)).sum();

    let (owned_root, owned_name) = (root.clone(), name.to_owned());
    let creates = storm(&bases, move |client, base, n| {
        let root = owned_root.clone();
        let name = owned_name.clone();
        async move {
            let response = client
                .post(format!("{base}/api/v1/users"))
                .bearer_auth(&root)
                .json(&json!({ "login": format!("{name}-c{n}") }))
                .send()
                .await
                .expect("create");
            assert_eq!(response.status(), 201);
        }
    })
    .await;

    let owned_name = name.to_owned();
    let signins = storm(&bases, move |client, base, n| {
        let name = owned_name.clone();
        async move {
            let response = client
                .post(format!("{base}/api/v1/login"))
                .json(&json!({ "login": format!("{name}-u{}", n % SIGNIN_USERS), "password": PASSWORD }))
                .send()
                .await
                .expect("login");
            assert_eq!(response.status(), 200);
        }
    })
    .await;
    println!("{name}: {lookups:.0} GET/s, {creates:.0} creates/s, {signins:.1} sign-ins/s");
    Figures {
        lookups,
        creates,
        signins,
    }
}

/// Requests per second of `CLIENTS` clients running `request` for [`RUN`],
/// client `k` on daemon `k % daemons`.
async fn storm<F, Fut>(bases: &[String], request: F) -> f64
where
    F: Fn(reqwest::Client, String, usize) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (done, request) = (done.clone(), request.clone());
            let base = bases[k % bases.len()].clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = k;
                while started.elapsed() < RUN {
                    request(client.clone(), base.clone(), n).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    n += CLIENTS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
