//! A real SMTP server for the mail tests: Debian's aiosmtpd with its Maildir
//! handler on a loopback port, stopped (SIGKILL) when dropped. What arrived
//! is read back through `peers/maildir.py`, so bodies are decoded by Python's
//! own email package.

pub use crate::process::free_port;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One message as it arrived.
#[derive(Debug, Clone, Deserialize)]
pub struct Arrived {
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
}

impl Arrived {
    /// The token of the first gatehouse link in the text.
    pub fn token(&self) -> String {
        let start = self.text.find("token=").expect("a link with a token") + "token=".len();
        self.text[start..]
            .split_whitespace()
            .next()
            .expect("token")
            .to_owned()
    }
}

pub struct Smtp {
    child: Option<Child>,
    maildir: PathBuf,
}

impl Smtp {
    /// Starts aiosmtpd on `port`, storing mail under `dir/mail`.
    pub fn start(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, &[])
    }

    /// As [`Smtp::start`], with more aiosmtpd options (TLS certificates).
    pub fn start_with(dir: &Path, port: u16, options: &[&str]) -> Self {
        let maildir = dir.join("mail");
        std::fs::create_dir_all(dir).expect("mail folder");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts (apt-get install python3-aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            maildir,
        }
    }

    pub fn url(port: u16) -> String {
        format!("smtp://127.0.0.1:{port}")
    }

    /// Everything that arrived so far.
    pub fn arrived(&self) -> Vec<Arrived> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/peers/maildir.py");
        let output = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&self.maildir)
            .output()
            .expect("maildir reader runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("maildir JSON")
    }

    /// Waits until at least `count` messages arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Arrived> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let arrived = self.arrived();
            if arrived.len() >= count {
                return arrived;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} mails arrived: {:?}",
                arrived.len(),
                arrived.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The messages to `to`.
    pub fn to(&self, to: &str) -> Vec<Arrived> {
        self.arrived()
            .into_iter()
            .filter(|mail| mail.to.contains(to))
            .collect()
    }

    /// Waits for the first message to `to` whose subject contains `subject`.
    pub async fn wait_for_mail(&self, to: &str, subject: &str) -> Arrived {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(mail) = self
                .to(to)
                .into_iter()
                .find(|m| m.subject.contains(subject))
            {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no mail `{subject}` to {to}: {:?}",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server; what arrived stays readable.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}
