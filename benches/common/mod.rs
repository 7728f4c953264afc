//! Shared bench plumbing: an in-process daemon on loopback, wrk runs, percentiles.

#![allow(dead_code)]

use gatehouse::app::{self, Running};
use gatehouse::config::Config;
use gatehouse::domain::clock::SystemClock;
use std::sync::Arc;
use std::time::Duration;

pub struct BenchDaemon {
    pub running: Running,
    pub root: String,
    pub base: String,
    pub dir: tempfile::TempDir,
}

pub async fn start(adjust: impl FnOnce(&mut Config)) -> BenchDaemon {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    adjust(&mut config);
    let running = app::start(&config, Arc::new(SystemClock))
        .await
        .expect("daemon starts");
    let root = std::fs::read_to_string(config.data_dir.join("root.token"))
        .expect("root token")
        .trim()
        .to_owned();
    let base = format!("http://{}", running.http_addr);
    BenchDaemon {
        running,
        root,
        base,
        dir,
    }
}

/// The `q`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs wrk against `url` with a bearer token and returns its requests/second.
pub fn wrk(url: &str, token: &str, seconds: u32) -> Option<f64> {
    let output = std::process::Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{seconds}s"),
            "-H",
            &format!("Authorization: Bearer {token}"),
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|l| l.starts_with("Requests/sec:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of this process in MiB.
pub fn rss_mib() -> f64 {
    rss_of(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

/// The resident memory in MiB that a `/proc/<pid>/status` text gives.
pub fn rss_of(status: &str) -> f64 {
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Total size of the files under `dir`, in MiB.
pub fn dir_mib(dir: &std::path::Path) -> f64 {
    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir) as f64 / (1024.0 * 1024.0)
}
