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
    let audit: Value = client
        .get(format!("{}/api/v1/audit?limit=5", process.base))
        .bearer_auth(new)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
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
