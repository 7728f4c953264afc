//! Prometheus metrics: the process-wide recorder, and every metric gatehouse
//! reports, named here once (callers say what happened, not how it is
//! counted). Rendered as Prometheus text by `GET /metrics`.

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

const HTTP_SECONDS: &str = "gatehouse_http_request_duration_seconds";
const SYNC_SECONDS: &str = "gatehouse_directory_sync_duration_seconds";

/// Latency buckets, in seconds.
const LATENCY: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const SYNC: [f64; 8] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1200.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process; daemons started in one test
/// process share it). `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_SECONDS.into()), &LATENCY)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SYNC_SECONDS.into()), &SYNC));
            match builder.map(|b| b.install_recorder()) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "metrics recorder not installed");
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics buckets refused");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics as Prometheus text.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// The standard methods; any other token is `OTHER` (hyper accepts any).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// A request counter and its latency histogram.
type HttpHandles = (metrics::Counter, metrics::Histogram);

thread_local! {
    /// Handles already registered, per thread (no lock, no label strings
    /// built per request): (method, status) -> route -> handles.
    static HTTP_HANDLES: std::cell::RefCell<
        std::collections::HashMap<(usize, u16), std::collections::HashMap<String, HttpHandles>>,
    > = std::cell::RefCell::default();
}

/// One answered HTTP request: the route as declared (`/api/v1/users/{id}`),
/// never the raw path, so ids do not explode the label space.
pub fn http_request(method: &str, route: &str, status: u16, seconds: f64) {
    let method = METHODS[..7].iter().position(|m| *m == method).unwrap_or(7);
    HTTP_HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let by_route = handles.entry((method, status)).or_default();
        if !by_route.contains_key(route) {
            let labels = [
                ("method", METHODS[method].to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            let counter = counter!("gatehouse_http_requests_total", &labels);
            let histogram = histogram!(HTTP_SECONDS, &labels[..2]);
            by_route.insert(route.to_owned(), (counter, histogram));
        }
        if let Some((counter, histogram)) = by_route.get(route) {
            counter.increment(1);
            histogram.record(seconds);
        }
    });
}

/// A sign-in decided at `door` (http, ftp, sso): `ok`, `refused` or `locked`.
pub fn sign_in(door: &'static str, outcome: &'static str) {
    counter!("gatehouse_sign_ins_total", "door" => door, "outcome" => outcome).increment(1);
}

/// An FTP session began (`opened`) or ended.
pub fn ftp_session(opened: bool) {
    let sessions = gauge!("gatehouse_ftp_sessions");
    match opened {
        true => sessions.increment(1.0),
        false => sessions.decrement(1.0),
    }
}

/// A finished FTP data transfer: `upload`, `download` or `listing`.
pub fn ftp_transfer(direction: &'static str, ok: bool, bytes: u64) {
    let result = if ok { "complete" } else { "failed" };
    counter!("gatehouse_ftp_transfers_total", "direction" => direction, "result" => result)
        .increment(1);
    counter!("gatehouse_ftp_bytes_total", "direction" => direction).increment(bytes);
}

/// An upload refused by quota: `bytes` or `files`.
pub fn quota_refusal(limit: &'static str) {
    counter!("gatehouse_ftp_quota_refusals_total", "limit" => limit).increment(1);
}

/// A directory sync run (LDAP) and how long it took.
pub fn directory_sync(ok: bool, seconds: f64) {
    let result = if ok { "ok" } else { "failed" };
    counter!("gatehouse_directory_syncs_total", "result" => result).increment(1);
    histogram!(SYNC_SECONDS).record(seconds);
}

/// A delivery attempt of the outbox: `sent`, `retry` or `failed`.
pub fn mail_attempt(outcome: &'static str) {
    counter!("gatehouse_mail_attempts_total", "outcome" => outcome).increment(1);
}

/// Values read at scrape time: queued mail, the store's size on disk, and
/// whether this daemon runs the scheduled jobs (1) or not (0).
pub fn scraped(outbox_queued: usize, store_bytes: u64, leader: bool) {
    gauge!("gatehouse_mail_outbox_queued").set(outbox_queued as f64);
    gauge!("gatehouse_store_disk_bytes").set(store_bytes as f64);
    gauge!("gatehouse_scheduler_leader").set(if leader { 1.0 } else { 0.0 });
}
