//! A real OpenID Connect provider for the SSO tests: npm `oidc-provider`
//! (installed under `target/oidc-peer` by scripts/test.sh) running
//! `peers/oidc/provider.mjs` on a loopback port, killed when dropped; and a
//! browser-less walk through its sign-in and consent pages.

use reqwest::header::{ACCEPT, LOCATION};
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncBufReadExt;

pub const CLIENT_ID: &str = "gatehouse";
pub const CLIENT_SECRET: &str = "a test client secret";

pub struct Idp {
    child: tokio::process::Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl Idp {
    /// Starts the provider for a relying party whose callback is
    /// `redirect_uri`, with `accounts` (sub -> claims).
    pub async fn start(redirect_uri: &str, accounts: &Value) -> Self {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let modules = std::path::Path::new(manifest).join("target/oidc-peer/node_modules");
        assert!(
            modules.join("oidc-provider").is_dir(),
            "npm oidc-provider is missing: run bash scripts/test.sh (or npm install --prefix target/oidc-peer)"
        );
        let dir = tempfile::tempdir().expect("dir");
        std::fs::copy(
            format!("{manifest}/tests/it/peers/oidc/provider.mjs"),
            dir.path().join("provider.mjs"),
        )
        .expect("provider script");
        std::os::unix::fs::symlink(&modules, dir.path().join("node_modules"))
            .expect("node_modules link");
        let mut child = tokio::process::Command::new("node")
            .arg(dir.path().join("provider.mjs"))
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", redirect_uri)
            .env("ACCOUNTS", accounts.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let issuer = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider starts in time")
            .expect("stdout")
            .expect("the issuer line");
        // Keep reading: the provider dies of EPIPE when its stdout closes.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            issuer,
            _dir: dir,
        }
    }

    /// Replaces the claims of account `sub`.
    pub async fn set_account(&self, sub: &str, claims: &Value) {
        let reply = reqwest::Client::new()
            .put(format!("{}/_accounts/{sub}", self.issuer))
            .body(claims.to_string())
            .send()
            .await
            .expect("provider control");
        assert!(reply.status().is_success());
    }

    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A sign-in walked up to the provider's redirect back to gatehouse.
pub struct Flow {
    pub client: reqwest::Client,
    /// The callback URL on gatehouse's real address, not yet requested.
    pub callback: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(from: &str, response: &reqwest::Response) -> String {
    let raw = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no redirect from {from}: {}", response.status()));
    reqwest::Url::parse(from)
        .and_then(|base| base.join(raw))
        .expect("location")
        .to_string()
}

/// Starts at `base/sso/idp/login?query`, signs in at the provider as `sub`
/// and consents, and stops at the redirect back to `base`.
pub async fn walk(base: &str, query: &str, sub: &str) -> Flow {
    let client = client();
    let start = format!("{base}/sso/idp/login?{query}");
    let response = client.get(&start).send().await.expect("login");
    assert_eq!(
        response.status(),
        303,
        "login: {}",
        response.text().await.unwrap_or_default()
    );
    let mut url = location(&start, &response);
    for _ in 0..20 {
        if url.starts_with(base) {
            return Flow {
                client,
                callback: url,
            };
        }
        let response = client.get(&url).send().await.expect("provider page");
        if response.status().is_redirection() {
            url = location(&url, &response);
            continue;
        }
        let page = response.text().await.expect("page");
        let form: Vec<(&str, &str)> = if page.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", sub), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        let posted = client.post(&url).form(&form).send().await.expect("form");
        url = location(&url, &posted);
    }
    panic!("the provider never sent us back");
}

impl Flow {
    /// Requests the callback asking for JSON; returns status and body.
    pub async fn finish_json(&self) -> (u16, Value) {
        let response = self
            .client
            .get(&self.callback)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .expect("callback");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}
