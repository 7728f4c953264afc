//! `gatehouse serve` as a process of its own, on a data dir and a free
//! loopback port, FTPS off; killed (SIGKILL) when dropped. Used by the crash
//! tests and, through `#[path]`, by benchmarks that measure the real binary.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (yet), for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

pub struct Process {
    child: Child,
    pub base: String,
}

impl Process {
    /// Starts the binary on `data_dir` with `log` as `RUST_LOG`; returns once
    /// it accepts connections.
    pub fn start(data_dir: &Path, log: &str) -> Self {
        Self::start_with(data_dir, log, &[])
    }

    /// As [`Process::start`], with more `GATEHOUSE_*` settings in `env`.
    pub fn start_with(data_dir: &Path, log: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("serve")
            .env("GATEHOUSE_DATA_DIR", data_dir)
            .env("GATEHOUSE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEHOUSE_FTP__ENABLED", "false")
            .env("RUST_LOG", log)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("gatehouse serve starts");
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "gatehouse serve did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        process
    }

    /// GET `path` on the process's API as `token`; the JSON answer.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("a JSON answer")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    /// SIGKILL: no shutdown, no final flush.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
