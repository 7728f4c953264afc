//! A private PostgreSQL cluster for the tests: `initdb` into a temp dir, the
//! server on a free loopback port (as the `postgres` user when the tests run
//! as root, which PostgreSQL refuses), stopped by `pg_ctl` when dropped. A
//! test asks it for a database of its own.
//!
//! `GATEHOUSE_TEST_POSTGRES_URL` (set by `scripts/test.sh`, which starts one
//! cluster for the whole run) points at such a cluster instead, so tests do
//! not each pay for an `initdb`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const SUPERUSER: &str = "gatehouse";

pub struct Cluster {
    /// `postgres://gatehouse:PW@127.0.0.1:PORT` (no database).
    server: String,
    /// Set when this cluster was started here (and is stopped on drop).
    own: Option<(tempfile::TempDir, PathBuf)>,
    /// The server's options (port, socket directory, TLS), to start it again.
    options: String,
}

/// The directory of the PostgreSQL server programs (the newest installed).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").exists());
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL server programs (Debian package postgresql)")
}

/// Runs a server program, as `postgres` when we are root.
fn server_command(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// `pg_ctl start` of the cluster in `dir` with server `options`, waiting
/// until it accepts connections.
fn pg_ctl_start(bin: &Path, dir: &Path, options: &str) -> Command {
    let mut start = server_command(&bin.join("pg_ctl"));
    start
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("server.log"))
        .arg("-o")
        .arg(options)
        .args(["-w", "start"]);
    start
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// The cluster of this test run, or a new private one.
    pub fn start() -> Self {
        match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
            Ok(server) if !server.is_empty() => Self {
                server,
                own: None,
                options: String::new(),
            },
            _ => Self::start_private(false),
        }
    }

    /// A private cluster even when the run shares one (a test crashes it).
    pub fn start_private_for_crash() -> Self {
        Self::start_private(false)
    }

    /// A private cluster that also takes TLS, with a self-signed certificate
    /// for 127.0.0.1 (its path: [`Cluster::certificate`]).
    pub fn start_with_tls() -> Self {
        Self::start_private(true)
    }

    /// The certificate of a cluster started with TLS.
    pub fn certificate(&self) -> PathBuf {
        let (dir, _) = self.own.as_ref().expect("a private cluster");
        dir.path().join("server.crt")
    }

    fn start_private(tls: bool) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-pg")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        let password = format!("pw{}", rand_suffix());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).expect("password file");
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        let mut options = format!(
            "-p {{port}} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            dir.path().display()
        );
        if tls {
            gatehouse::tls::generate_self_signed(&cert, &key).expect("certificate");
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ));
        }
        if rustix::process::geteuid().is_root() {
            let owner = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .expect("id");
            let uid: u32 = String::from_utf8_lossy(&owner.stdout)
                .trim()
                .parse()
                .expect("uid");
            let group = Command::new("id")
                .args(["-g", "postgres"])
                .output()
                .expect("id");
            let gid: u32 = String::from_utf8_lossy(&group.stdout)
                .trim()
                .parse()
                .expect("gid");
            for path in [dir.path(), pwfile.as_path(), cert.as_path(), key.as_path()] {
                if path.exists() {
                    std::os::unix::fs::chown(path, Some(uid), Some(gid))
                        .expect("chown to postgres");
                }
            }
        }
        let mut initdb = server_command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb, "initdb");
        // A free port may be taken by another test's server before ours
        // binds it: try a few.
        let mut attempts = 0;
        let (port, options) = loop {
            let port = crate::process::free_port();
            let with_port = options.replace("{port}", &port.to_string());
            attempts += 1;
            match pg_ctl_start(&bin, dir.path(), &with_port).output() {
                Ok(output) if output.status.success() => break (port, with_port),
                outcome if attempts >= 5 => panic!(
                    "pg_ctl start failed: {outcome:?}\n{}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                ),
                _ => continue,
            }
        };
        Self {
            server: format!("postgres://{SUPERUSER}:{password}@127.0.0.1:{port}"),
            own: Some((dir, bin)),
            options,
        }
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: no
    /// checkpoint, unflushed WAL lost) and starts it again, replaying the WAL.
    pub fn crash_and_restart(&self) {
        let (dir, bin) = self.own.as_ref().expect("a private cluster");
        let data = dir.path().join("data");
        let mut stop = server_command(&bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop -m immediate");
        run(
            pg_ctl_start(bin, dir.path(), &self.options),
            "pg_ctl start after the crash",
        );
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!("gh_{}_{}", std::process::id(), rand_suffix());
        let mut create = Command::new("psql");
        create
            .arg(format!("{}/postgres", self.server))
            .args(["-v", "ON_ERROR_STOP=1", "-qc"])
            .arg(format!("CREATE DATABASE {name}"));
        run(create, "CREATE DATABASE");
        format!("{}/{name}", self.server)
    }
}

/// How the store reaches the database at `url`, with `pool_size` connections.
pub fn store_options(url: &str, pool_size: u32) -> gatehouse::store::postgres::PostgresOptions {
    gatehouse::store::postgres::PostgresOptions {
        url: url.to_owned(),
        pool_size,
        acquire_timeout: std::time::Duration::from_secs(10),
    }
}

/// Why the store refuses to open with `options` (`None` if it opens).
pub async fn refusal(options: gatehouse::store::postgres::PostgresOptions) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        gatehouse::store::PostgresStore::open(&options)
            .err()
            .map(|e| e.to_string())
    })
    .await
    .expect("join")
}

/// Runs `sql` on the database at `url`; its output, unaligned, no headers.
pub fn query(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn rand_suffix() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 24)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((dir, bin)) = &self.own {
            let mut stop = server_command(&bin.join("pg_ctl"));
            stop.arg("-D")
                .arg(dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = stop.output();
        }
    }
}
