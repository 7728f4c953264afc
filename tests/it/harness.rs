//! Starts gatehouse with a temporary data dir and a manual clock, and offers a
//! small JSON client for the admin API.

use chrono::{TimeZone, Utc};
use gatehouse::app::{self, Running};
use gatehouse::config::{Config, PortRange};
use gatehouse::domain::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

pub const PASSWORD: &str = "a sound passphrase";

/// Gives each daemon its own passive port range, so parallel tests never collide.
fn next_passive_ports() -> PortRange {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = NEXT.fetch_add(1, Ordering::Relaxed) % 400;
    let first = 40_000 + slot * 20;
    PortRange {
        first,
        last: first + 19,
    }
}

pub struct Daemon {
    pub base: String,
    /// FTPS control address, "127.0.0.1:PORT".
    pub ftp: String,
    pub root: String,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    client: reqwest::Client,
    running: Option<Running>,
    /// The PostgreSQL cluster the store is on, kept running while the daemon is.
    cluster: Option<Arc<crate::postgres::Cluster>>,
}

/// A status and JSON body (Null when empty).
pub type Reply = (u16, Value);

impl Daemon {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A daemon on `adjust`ed test settings; its store is sled, or a fresh
    /// PostgreSQL database when `GATEHOUSE_TEST_STORE=postgres` (so the
    /// same tests run against both stores).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        match std::env::var("GATEHOUSE_TEST_STORE").as_deref() {
            Ok("postgres") => {
                Self::start_on(Arc::new(crate::postgres::Cluster::start()), adjust).await
            }
            _ => {
                let (dir, config) = Self::test_config(adjust);
                Self::launch(dir, config, None).await
            }
        }
    }

    /// A daemon on the embedded sled store, whatever `GATEHOUSE_TEST_STORE` says.
    pub async fn start_on_sled() -> Self {
        let (dir, config) = Self::test_config(|_| {});
        Self::launch(dir, config, None).await
    }

    /// A daemon whose store is a new database on `cluster`.
    pub async fn start_on(
        cluster: Arc<crate::postgres::Cluster>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let url = cluster.database();
        let (dir, config) = Self::test_config(|config| {
            config.store.backend = gatehouse::config::StoreBackend::Postgres;
            config.postgres.url = Some(gatehouse::config::Secret::new(url));
            adjust(config);
        });
        Self::launch(dir, config, Some(cluster)).await
    }

    /// A second daemon on this one's PostgreSQL database, as a load balancer
    /// would have behind one address: its own data dir holding the same
    /// sealing key (and root token file), its own listeners.
    pub async fn beside(&self) -> Self {
        let (dir, config) = self.beside_config();
        Self::launch(dir, config, self.cluster.clone()).await
    }

    /// The data directory and config [`Daemon::beside`] starts a daemon on.
    pub fn beside_config(&self) -> (tempfile::TempDir, Config) {
        let shared = self.config.clone();
        let (dir, config) = Self::test_config(|config| {
            config.store = shared.store.clone();
            config.postgres = shared.postgres.clone();
            config.ldap = shared.ldap.clone();
            config.mail = shared.mail.clone();
            config.signin = shared.signin.clone();
            // FTP homes on a file system both daemons see.
            config.ftp.root = Some(
                shared
                    .ftp
                    .root
                    .clone()
                    .unwrap_or(shared.data_dir.join("ftp")),
            );
        });
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        for file in ["secret.key", "root.token"] {
            std::fs::copy(self.config.data_dir.join(file), config.data_dir.join(file))
                .expect("shared secret files");
        }
        (dir, config)
    }

    fn test_config(adjust: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        config.http.listen = "127.0.0.1:0".parse().expect("addr");
        config.http.public_url = "https://gatehouse.example.org".into();
        config.ftp.listen = "127.0.0.1:0".parse().expect("addr");
        config.ftp.passive_ports = next_passive_ports();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        gatehouse::tls::generate_self_signed(&cert, &key).expect("test certificate");
        config.tls = gatehouse::config::TlsConfig {
            cert: Some(cert),
            key: Some(key),
        };
        adjust(&mut config);
        (dir, config)
    }

    /// Starts a daemon on `config`, whose data lives under `dir`.
    async fn launch(
        dir: tempfile::TempDir,
        config: Config,
        cluster: Option<Arc<crate::postgres::Cluster>>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
        ));
        let running = app::start(&config, clock.clone())
            .await
            .expect("daemon starts");
        let root = std::fs::read_to_string(config.data_dir.join("root.token")).expect("root token");
        Self {
            base: format!("http://{}", running.http_addr),
            ftp: running.ftp_addr.map(|a| a.to_string()).unwrap_or_default(),
            root: root.trim().to_owned(),
            clock,
            dir,
            config,
            client: reqwest::Client::new(),
            running: Some(running),
            cluster,
        }
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use gatehouse::domain::clock::Clock;
        self.clock.now()
    }

    /// Stops, runs `between` on the stopped daemon's config, and starts again on
    /// the same data.
    pub async fn restart(mut self, between: impl FnOnce(&Config)) -> Self {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        between(&self.config);
        Self::launch(self.dir, self.config, self.cluster).await
    }

    /// The URL of this daemon's PostgreSQL database.
    pub fn database_url(&self) -> String {
        let url = self
            .config
            .postgres
            .url
            .as_ref()
            .expect("a daemon on PostgreSQL");
        url.expose().to_owned()
    }

    /// Everything the store holds, as raw bytes (to look for secrets that
    /// must never be stored in the clear); every acknowledged write is in it.
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(url) = &self.config.postgres.url {
            return crate::postgres::query(
                url.expose(),
                "SELECT string_agg(encode(key, 'escape') || ' ' || encode(value, 'escape'), ' ') \
                 FROM (SELECT key, value FROM gh_entries UNION ALL \
                       SELECT convert_to(seq::text, 'UTF8'), writes FROM gh_commits) AS stored",
            )
            .into_bytes();
        }
        std::fs::read_dir(self.config.data_dir.join("store"))
            .expect("store dir")
            .flatten()
            .filter(|entry| entry.path().is_file())
            .flat_map(|entry| std::fs::read(entry.path()).unwrap_or_default())
            .collect()
    }

    /// Shuts down cleanly; returns the data dir and the PostgreSQL cluster
    /// (kept running while held), so a test may work on the store offline.
    pub async fn stop_keeping_store(
        mut self,
    ) -> (tempfile::TempDir, Option<Arc<crate::postgres::Cluster>>) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        (self.dir, self.cluster.take())
    }

    /// Shuts down cleanly; returns the data dir so a test may inspect it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        self.dir
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends `body` as is, as root, for malformed-input tests.
    pub async fn client_raw(&self, method: Method, path: &str, body: &str) -> Reply {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.root)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn public_post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a user as root and returns its JSON; panics unless 201.
    pub async fn create(&self, body: Value) -> Value {
        let (status, user) = self.post("/api/v1/users", &self.root, body.clone()).await;
        assert_eq!(status, 201, "create {body}: {user}");
        user
    }

    /// Creates an active local user with the test password; returns its id.
    pub async fn user(&self, login: &str) -> u64 {
        let user = self.create(json!({ "login": login, "email": format!("{login}@example.org"), "password": PASSWORD })).await;
        id(&user)
    }

    /// Creates a user holding `roles` and returns (id, API token).
    pub async fn user_with_roles(&self, login: &str, roles: &[&str]) -> (u64, String) {
        let user = self
            .create(json!({ "login": login, "password": PASSWORD, "system_roles": roles }))
            .await;
        let (status, issued) = self
            .post(
                &format!("/api/v1/users/{}/api-token", id(&user)),
                &self.root,
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{issued}");
        (
            id(&user),
            issued["token"].as_str().expect("token").to_owned(),
        )
    }

    /// Signs in with login and password; returns (status, body).
    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.public_post(
            "/api/v1/login",
            json!({ "login": login, "password": password }),
        )
        .await
    }

    /// Runs a bulk action as root and returns the body; panics unless 200.
    pub async fn bulk(&self, action: &str, body: Value) -> Value {
        let (status, reply) = self
            .post(&format!("/api/v1/users/actions/{action}"), &self.root, body)
            .await;
        assert_eq!(status, 200, "{action}: {reply}");
        reply
    }
}

/// `gatehouse` run offline (FTP off) on the store `config` names.
pub fn offline_cli(config: &Config) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .env("GATEHOUSE_DATA_DIR", &config.data_dir)
        .env("GATEHOUSE_FTP__ENABLED", "false");
    if let Some(url) = &config.postgres.url {
        command
            .env("GATEHOUSE_STORE__BACKEND", "postgres")
            .env("GATEHOUSE_POSTGRES__URL", url.expose());
    }
    command
}

/// The store `config` names, opened here (the daemon on it stopped).
pub fn open_store(config: &Config) -> Box<dyn gatehouse::store::Store> {
    match &config.postgres.url {
        Some(url) => Box::new(
            gatehouse::store::PostgresStore::open(&crate::postgres::store_options(url.expose(), 2))
                .expect("store opens"),
        ),
        None => Box::new(
            gatehouse::store::sled::SledStore::open(&config.data_dir, 1 << 20)
                .expect("store opens"),
        ),
    }
}

/// Whether the tests run against PostgreSQL (`GATEHOUSE_TEST_STORE`).
pub fn on_postgres() -> bool {
    std::env::var("GATEHOUSE_TEST_STORE").as_deref() == Ok("postgres")
}

pub fn id(user: &Value) -> u64 {
    user["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id in {user}"))
}

/// The error code of an error reply.
pub fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("")
}
