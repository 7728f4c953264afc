//! Sign-in throttle benchmark (issue: security). Resident memory before and
//! after 1,000,000 failed sign-ins with distinct logins: first against the
//! throttle itself (from 1,000,000 distinct addresses, the worst case for its
//! table), then over HTTP against the daemon (POST /api/v1/login from one
//! address, 64 clients). Run: `cargo bench --bench throttle`.

mod common;

use common::rss_mib;
use gatehouse::config::SignInConfig;
use gatehouse::service::throttle::SignInThrottle;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const ATTEMPTS: usize = 1_000_000;
const CLIENTS: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let before = rss_mib();
    let throttle = SignInThrottle::new(&SignInConfig::default());
    let allocated = rss_mib();
    let now = chrono::Utc::now();
    let started = Instant::now();
    let mut admitted = 0usize;
    for n in 0..ATTEMPTS as u32 {
        let address = IpAddr::from(n.wrapping_mul(2_654_435_761).to_be_bytes());
        if throttle.begin(&format!("login{n}"), address, now).is_ok() {
            admitted += 1;
        }
    }
    let took = started.elapsed();
    println!(
        "throttle alone: RSS {before:.1} MiB before, {allocated:.1} MiB with its table, {:.1} MiB after {ATTEMPTS} failures with distinct logins and addresses ({admitted} admitted, {:.0} ns each)",
        rss_mib(),
        took.as_nanos() as f64 / ATTEMPTS as f64
    );

    let daemon = common::start(|c| c.ftp.enabled = false).await;
    let base = daemon.base.clone();
    let rss_start = rss_mib();
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (base, next, refused) = (base.clone(), next.clone(), refused.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= ATTEMPTS {
                        return;
                    }
                    let body = json!({ "login": format!("flood{n}"), "password": "wrong" });
                    let reply = client
                        .post(format!("{base}/api/v1/login"))
                        .json(&body)
                        .send()
                        .await
                        .expect("login request");
                    if reply.status().as_u16() == 429 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    reply.bytes().await.expect("body");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
    let took = started.elapsed();
    println!(
        "over HTTP: RSS {rss_start:.1} MiB before, {:.1} MiB after {ATTEMPTS} failed sign-ins with distinct logins from one address ({} answered 429, {:.0} req/s)",
        rss_mib(),
        refused.load(Ordering::Relaxed),
        ATTEMPTS as f64 / took.as_secs_f64()
    );
    daemon.running.shutdown().await.expect("shutdown");
}
