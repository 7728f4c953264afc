//! Sign-in benchmark (issue: lifecycle). Measures the raw argon2id verify rate on
//! all cores, then sign-ins per second through POST /api/v1/login in the same run,
//! and the latency of GET /healthz while that sign-in storm runs.
//! Run: `cargo bench --bench signin`.

mod common;

use common::{ms, percentile};
use gatehouse::service::{hash_blocking, verify_blocking};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench passphrase 1";
const USERS: usize = 32;
const CLIENTS: usize = 16;
const STORM: Duration = Duration::from_secs(10);

/// Verifies per second with one thread per core for `duration`.
fn raw_verify_rate(duration: Duration) -> f64 {
    let hash = hash_blocking(PASSWORD).expect("hash");
    let cores = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    let count = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (hash, count) = (hash.clone(), count.clone());
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    assert!(verify_blocking(PASSWORD, &hash));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().expect("thread"));
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let raw = raw_verify_rate(STORM);
    println!("raw argon2id verify (m=19456 KiB, t=2, p=1), all cores: {raw:.1}/s");

    let daemon = common::start(|c| c.signin.max_failures = u32::MAX).await;
    let client = reqwest::Client::new();
    for i in 0..USERS {
        let body = json!({ "login": format!("u{i}"), "password": PASSWORD });
        let response = client
            .post(format!("{}/api/v1/users", daemon.base))
            .bearer_auth(&daemon.root)
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let storm: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, base, stop, done) = (
                client.clone(),
                daemon.base.clone(),
                stop.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({ "login": format!("u{}", i % USERS), "password": PASSWORD });
                    let response = client
                        .post(format!("{base}/api/v1/login"))
                        .json(&body)
                        .send()
                        .await
                        .expect("login");
                    assert_eq!(response.status(), 200);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += CLIENTS;
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    while started.elapsed() < STORM {
        let probe = Instant::now();
        let response = client
            .get(format!("{}/healthz", daemon.base))
            .send()
            .await
            .expect("healthz");
        assert!(response.status().is_success());
        latencies.push(probe.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in storm {
        task.await.expect("client");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "POST /api/v1/login with {CLIENTS} clients: {rate:.1} sign-ins/s = {:.0}% of raw verify",
        100.0 * rate / raw
    );
    println!(
        "GET /healthz during the storm: {} probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0))
    );
    daemon.running.shutdown().await.expect("shutdown");
}
