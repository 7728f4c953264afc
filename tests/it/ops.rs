//! Operations: readiness with reasons, the root token reset on a stopped
//! daemon, and the systemd unit as `systemd-analyze verify` sees it.

use crate::harness::Daemon;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_what_is_wrong() {
    let d = Daemon::start().await;
    let (status, ready) = d.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        (ready["ready"].as_bool(), ready["store"]["ok"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(
        ready.get("ldap").is_none(),
        "no directory configured, no check: {ready}"
    );
    d.stop().await;

    // A directory that does not answer makes the daemon not ready, with the reason.
    let dead = crate::smtp::free_port();
    let d = Daemon::start_with(move |config| {
        config.ldap.url = Some(format!("ldap://127.0.0.1:{dead}"));
        config.ldap.user_base = "ou=people,dc=example,dc=org".into();
    })
    .await;
    let (status, ready) = d.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ldap"]["ok"], false);
    assert!(
        ready["ldap"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("does not answer"),
        "{ready}"
    );
    assert_eq!(ready["store"]["ok"], true);
    let (status, body) = d.call(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(status, 200, "liveness stays up: {body:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_root_token_is_replaced_on_the_stopped_daemon() {
    let d = Daemon::start().await;
    let old = d.root.clone();
    let dir = d.stop().await;
    let data = dir.path().join("data");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["root-token", "reset"])
        .env("GATEHOUSE_DATA_DIR", &data)
        .output()
        .expect("gatehouse runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let new = std::fs::read_to_string(data.join("root.token")).expect("token file");
    let new = new.trim();
    assert!(new.starts_with("gh_api_") && new != old);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.join("root.token"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let process = crate::process::Process::start(&data, "warn");
    let client = reqwest::Client::new();
    let status = |token: String| {
        let request = client
            .get(format!("{}/api/v1/me", process.base))
            .bearer_auth(token);
        async move { request.send().await.expect("me").status().as_u16() }
    };
    assert_eq!(status(old).await, 401, "the old token is revoked");
    assert_eq!(status(new.to_owned()).await, 200);
    let audit = process.get_json("/api/v1/audit?limit=5", new).await;
    let entry = &audit["entries"][0];
    assert_eq!(
        (entry["action"].as_str(), entry["actor"].is_null()),
        (Some("token.issue"), true),
        "{audit}"
    );
    assert_eq!(entry["details"]["via"], "gatehouse root-token reset");
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = include_str!("../../dist/gatehouse.service")
        .replace("/usr/local/bin/gatehouse", env!("CARGO_BIN_EXE_gatehouse"));
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gatehouse.service");
    std::fs::write(&path, unit).expect("unit");
    let run = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && stderr.trim().is_empty(), "{stderr}");
}

/// `/metrics` parsed by the prometheus_client library: sample -> value.
async fn scrape(d: &Daemon) -> std::collections::HashMap<String, f64> {
    let text = reqwest::get(format!("{}/metrics", d.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/peers/prometheus_text.py"
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (apt-get install python3-prometheus-client)");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("parser");
    assert!(
        output.status.success(),
        "not Prometheus text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

fn value(samples: &std::collections::HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_after_a_sign_in_and_an_upload() {
    let d = Daemon::start().await;
    let uid = crate::ftp::uploader(&d, "mira", Some(10)).await;
    let before = scrape(&d).await;
    assert_eq!(d.login("mira", crate::harness::PASSWORD).await.0, 200);
    let dir = tempfile::tempdir().expect("dir");
    let file = crate::ftp::write_file(dir.path(), "obs.csv", 5000);
    let upload = crate::ftp::curl(
        &d,
        "mira",
        crate::harness::PASSWORD,
        true,
        &["-T", file.to_str().expect("path"), "FTP/obs.csv"],
    )
    .await;
    assert_eq!(upload.code, 0, "{}", upload.stderr);
    assert!(crate::ftp::home(&d, uid).join("obs.csv").exists());
    let after = scrape(&d).await;
    let moved = |key: &str| value(&after, key) - value(&before, key);
    assert!(moved("gatehouse_sign_ins_total{door=http,outcome=ok}") >= 1.0);
    assert!(moved("gatehouse_sign_ins_total{door=ftp,outcome=ok}") >= 1.0);
    assert!(moved("gatehouse_ftp_bytes_total{direction=upload}") >= 5000.0);
    assert!(moved("gatehouse_ftp_transfers_total{direction=upload,result=complete}") >= 1.0);
    assert!(
        moved("gatehouse_http_requests_total{method=POST,route=/api/v1/login,status=200}") >= 1.0
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("gatehouse_http_request_duration_seconds_bucket{")),
        "latency histogram"
    );
    assert!(value(&after, "gatehouse_store_disk_bytes{}") > 0.0);
    assert!(after.contains_key("gatehouse_mail_outbox_queued{}"));
    assert!(
        !after.keys().any(|k| k.contains(&format!("/users/{uid}"))),
        "routes, not paths, are labels"
    );
    d.stop().await;
}

/// The SHA-256 fingerprint of the certificate `openssl s_client` is shown at
/// `address` (with `starttls`, e.g. "ftp", when the protocol upgrades).
fn served_fingerprint(address: &str, starttls: Option<&str>) -> String {
    let mut command = std::process::Command::new("openssl");
    command.args(["s_client", "-connect", address, "-servername", "localhost"]);
    if let Some(protocol) = starttls {
        command.args(["-starttls", protocol]);
    }
    let shown = command
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let mut x509 = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl x509 runs");
    std::io::Write::write_all(&mut x509.stdin.take().expect("stdin"), &shown.stdout).expect("pipe");
    let printed = x509.wait_with_output().expect("fingerprint");
    String::from_utf8_lossy(&printed.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_ftps_pick_up_a_renewed_certificate_on_sighup() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    gatehouse::tls::generate_self_signed(&cert, &key).expect("certificate");
    let ftp_port = crate::smtp::free_port();
    let ftp_listen = format!("127.0.0.1:{ftp_port}");
    let (cert_path, key_path) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let env = [
        ("GATEHOUSE_HTTP__TLS", "true"),
        ("GATEHOUSE_TLS__CERT", cert_path),
        ("GATEHOUSE_TLS__KEY", key_path),
        ("GATEHOUSE_FTP__ENABLED", "true"),
        ("GATEHOUSE_FTP__LISTEN", ftp_listen.as_str()),
        ("GATEHOUSE_FTP__PASSIVE_PORTS", "49100-49119"),
    ];
    let process = crate::process::Process::start_with(&dir.path().join("data"), "warn", &env);
    let https = process.base.replace("http://", "https://");
    let http_address = process.base.trim_start_matches("http://").to_owned();

    // The admin API speaks TLS only, with the configured certificate.
    let healthz = std::process::Command::new("curl")
        .args(["-sS", "--cacert", cert_path, &format!("{https}/healthz")])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&healthz.stdout),
        "ok",
        "{}",
        String::from_utf8_lossy(&healthz.stderr)
    );
    let plain = std::process::Command::new("curl")
        .args(["-sS", &format!("{}/healthz", process.base)])
        .output()
        .expect("curl");
    assert!(
        !plain.status.success() || String::from_utf8_lossy(&plain.stdout) != "ok",
        "no plain HTTP"
    );

    let before = served_fingerprint(&http_address, None);
    assert!(before.contains("Fingerprint"), "{before}");
    assert_eq!(served_fingerprint(&ftp_listen, Some("ftp")), before);

    // A renewed certificate on disk, then SIGHUP: both doors show it.
    std::fs::remove_file(&cert).expect("old cert");
    std::fs::remove_file(&key).expect("old key");
    gatehouse::tls::generate_self_signed(&cert, &key).expect("renewed certificate");
    let signal = std::process::Command::new("kill")
        .args(["-HUP", &process.pid().to_string()])
        .status()
        .expect("kill");
    assert!(signal.success());
    let mut after = String::new();
    for _ in 0..50 {
        after = served_fingerprint(&http_address, None);
        if after != before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ne!(after, before, "HTTPS serves the renewed certificate");
    assert_eq!(
        served_fingerprint(&ftp_listen, Some("ftp")),
        after,
        "so does FTPS"
    );

    // A broken pair is refused and the current one stays.
    std::fs::write(&cert, "not a certificate").expect("break it");
    let signal = std::process::Command::new("kill")
        .args(["-HUP", &process.pid().to_string()])
        .status()
        .expect("kill");
    assert!(signal.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(served_fingerprint(&http_address, None), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_errors_quote_it() {
    let d = Daemon::start().await;
    let client = reqwest::Client::new();
    let given = client
        .get(format!("{}/api/v1/users/424242", d.base))
        .bearer_auth(&d.root)
        .header("x-request-id", "support-ticket-17")
        .send()
        .await
        .expect("request");
    assert_eq!(given.headers()["x-request-id"], "support-ticket-17");
    let body: Value = given.json().await.expect("json");
    assert_eq!(body["error"]["request_id"], "support-ticket-17", "{body}");

    let made = client
        .get(format!("{}/api/v1/users/424242", d.base))
        .bearer_auth(&d.root)
        .header("x-request-id", "not\tacceptable")
        .send()
        .await
        .expect("request");
    let id = made.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 16, "a malformed id is replaced: {id}");
    let body: Value = made.json().await.expect("json");
    assert_eq!(body["error"]["request_id"], id.as_str());
    d.stop().await;
}
