//! One FTP session as a state machine: greeting, AUTH TLS, sign-in, then
//! commands, with at most one transfer running beside the control loop (ABOR,
//! STAT, NOOP and QUIT are answered during it; other commands wait for it).
//! File and transfer commands live in `files.rs`.

use super::command::{self, Command};
use super::control::{Control, Line};
use super::data::DataSource;
use super::path::VirtualPath;
use super::reply::{self, Reply};
use super::storage::{Home, Homes};
use super::tls::{FtpTls, SessionTls};
use crate::config::PortRange;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Failed PASS commands a session gets before it is closed.
const MAX_LOGIN_FAILURES: u32 = 3;

/// How sessions behave, from `[ftp]`.
#[derive(Debug, Clone)]
pub struct SessionRules {
    pub passive_ports: PortRange,
    /// Announced in PASV replies instead of the control connection's address.
    pub passive_ip: Option<std::net::Ipv4Addr>,
    pub active_mode: bool,
    pub require_session_reuse: bool,
    pub idle_timeout: Duration,
    pub login_timeout: Duration,
    pub data_timeout: Duration,
}

/// What every session shares.
pub struct Shared {
    pub homes: Arc<Homes>,
    pub tls: FtpTls,
    pub rules: SessionRules,
}

/// A running session's state.
pub struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) control: Control,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) tls: Option<SessionTls>,
    pbsz: bool,
    pub(super) protected: bool,
    user_name: Option<String>,
    failures: u32,
    pub(super) home: Option<Home>,
    pub(super) cwd: VirtualPath,
    pub(super) rest: Option<u64>,
    pub(super) rename_from: Option<VirtualPath>,
    pub(super) data: Option<DataSource>,
    /// When an unused passive listener is closed (so idle sessions cannot
    /// hold the passive ports).
    pub(super) data_expires: Option<tokio::time::Instant>,
    pub(super) transfer: Option<Transfer>,
    /// The password hash the session signed in against; a change ends it.
    signed_in_with: Option<String>,
    pub(super) epsv_all: bool,
}

/// A transfer running beside the control loop. Dropping it aborts the task.
pub struct Transfer {
    handle: JoinHandle<Reply>,
    cancel: tokio_util::sync::CancellationToken,
}

impl Transfer {
    pub fn spawn(
        work: impl std::future::Future<Output = Reply> + Send + 'static,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            handle: tokio::spawn(work),
            cancel,
        }
    }
}

impl Transfer {
    /// The transfer's own reply, once it ends.
    async fn reply(&mut self) -> Reply {
        (&mut self.handle).await.unwrap_or_else(|error| {
            tracing::error!(%error, "a transfer task failed");
            reply::local_error()
        })
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Runs a session to its end.
pub async fn serve(shared: Arc<Shared>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (peer, local) = (canonical(peer), canonical(local));
    let _ = stream.set_nodelay(true);
    let control = Control::new(stream, shared.rules.data_timeout);
    let mut session = Session {
        shared,
        control,
        peer,
        local,
        tls: None,
        pbsz: false,
        protected: false,
        user_name: None,
        failures: 0,
        home: None,
        cwd: VirtualPath::root(),
        rest: None,
        rename_from: None,
        data: None,
        data_expires: None,
        transfer: None,
        signed_in_with: None,
        epsv_all: false,
    };
    let span = tracing::info_span!("ftp", peer = %peer, user_id = tracing::field::Empty);
    let _ = tracing::Instrument::instrument(session.run(&mut stop), span).await;
    session.end_transfer().await;
    session.control.close().await;
}

impl Session {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> std::io::Result<()> {
        self.control.send(&reply::greeting()).await?;
        let login_deadline = tokio::time::Instant::now() + self.shared.rules.login_timeout;
        loop {
            let idle = self.shared.rules.idle_timeout;
            let deadline = match self.home {
                Some(_) => tokio::time::Instant::now() + idle,
                None => login_deadline,
            };
            let line = tokio::select! {
                line = self.control.read_line() => line?,
                finished = wait(&mut self.transfer), if self.transfer.is_some() => {
                    self.transfer = None;
                    self.control.send(&finished).await?;
                    continue;
                }
                () = tokio::time::sleep_until(deadline), if self.transfer.is_none() => {
                    let text = if self.home.is_some() { "Idle timeout" } else { "Sign-in timeout" };
                    return self.control.send(&reply::closing(text)).await;
                }
                () = stopped(stop), if self.transfer.is_none() => {
                    return self.control.send(&reply::closing("The server is shutting down")).await;
                }
                () = expiry(self.data_expires), if self.data.is_some() => {
                    self.data = None;
                    self.data_expires = None;
                    continue;
                }
            };
            let line = match line {
                Line::Complete(line) => line,
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    return self
                        .control
                        .send(&reply::closing("Command line too long"))
                        .await;
                }
            };
            let reply = match command::parse(&line) {
                Ok(command) => self.during_transfer(command).await?,
                Err(error) => Some(Reply::from(&error)),
            };
            if let Some(reply) = reply {
                self.control.send(&reply).await?;
                if reply.closes() {
                    return Ok(());
                }
            }
        }
    }

    /// Answers what may be answered while a transfer runs; anything else
    /// waits for the transfer's own reply first.
    async fn during_transfer(&mut self, command: Command) -> std::io::Result<Option<Reply>> {
        if let Some(transfer) = self.transfer.take() {
            match command {
                Command::Abor => {
                    // Stopped at its next step; a finished or committing
                    // transfer still reports what really happened.
                    transfer.cancel.cancel();
                    let finished = finish(transfer).await;
                    self.control.send(&finished).await?;
                    return Ok(Some(Reply::new(226, "ABOR done")));
                }
                Command::Stat(None) => {
                    self.transfer = Some(transfer);
                    return Ok(Some(Reply::new(213, "A transfer is in progress")));
                }
                Command::Noop => {
                    self.transfer = Some(transfer);
                    return Ok(Some(reply::ok("NOOP ok")));
                }
                // QUIT and everything else wait for the transfer to end.
                _ => {
                    let finished = finish(transfer).await;
                    self.control.send(&finished).await?;
                }
            }
        }
        self.handle(command).await
    }

    /// Stops a running transfer; its upload, if any, is undone.
    async fn end_transfer(&mut self) {
        if let Some(mut transfer) = self.transfer.take() {
            transfer.cancel.cancel();
            transfer.handle.abort();
            let _ = (&mut transfer.handle).await;
        }
    }

    /// Runs one command; `None` when it already sent its replies.
    async fn handle(&mut self, command: Command) -> std::io::Result<Option<Reply>> {
        use Command as C;
        let reply = match command {
            C::Auth(mechanism) => return self.auth(&mechanism).await,
            C::Quit => reply::goodbye(),
            C::Noop => reply::ok("NOOP ok"),
            C::Feat => features(),
            C::Syst => Reply::new(215, "UNIX Type: L8"),
            C::Help => help(),
            C::Opts(option) => options(&option),
            C::Ccc => reply::ccc_refused(),
            C::NotImplemented(_) => reply::not_implemented(),
            C::Pbsz(_) if self.tls.is_none() => reply::bad_sequence("AUTH TLS first"),
            C::Pbsz(_) => {
                self.pbsz = true;
                reply::ok("PBSZ=0")
            }
            C::Prot(level) => self.prot(level),
            C::User(name) => self.user(name),
            C::Pass(password) => self.pass(password).await,
            command if self.home.is_none() => {
                tracing::debug!(?command, "command before sign-in refused");
                reply::not_logged_in("Please sign in with USER and PASS")
            }
            command => {
                if !self.still_allowed() {
                    return Ok(Some(reply::closing(
                        "Your account no longer allows FTP; signed out",
                    )));
                }
                return self.handle_signed_in(command).await;
            }
        };
        Ok(Some(reply))
    }

    async fn auth(&mut self, mechanism: &str) -> std::io::Result<Option<Reply>> {
        if !matches!(mechanism, "TLS" | "TLS-C" | "SSL") {
            return Ok(Some(reply::unsupported_parameter(
                "Only AUTH TLS is offered",
            )));
        }
        if self.tls.is_some() {
            return Ok(Some(reply::bad_sequence("TLS is already on")));
        }
        let tls = self.shared.tls.for_session();
        self.control.send(&reply::auth_ok()).await?;
        let within = self.shared.rules.data_timeout;
        if let Err(error) = self.control.upgrade(tls.control.clone(), within).await {
            tracing::info!(%error, "AUTH TLS handshake failed");
            return Err(error);
        }
        self.tls = Some(tls);
        Ok(None)
    }

    /// Whether the signed-in user may still use FTP: an account that was
    /// deactivated, masked, expired, lost its FTP access or had its password
    /// changed ends its sessions at their next command.
    fn still_allowed(&self) -> bool {
        let Some(home) = &self.home else {
            return true;
        };
        let ftp = &self.shared.homes.directory.ftp;
        ftp.ftp_session_allowed(home.user, self.signed_in_with.as_deref())
    }

    fn prot(&mut self, level: char) -> Reply {
        match level {
            _ if !self.pbsz => reply::bad_sequence("PBSZ first"),
            'P' => {
                self.protected = true;
                reply::ok("Data connections will be protected")
            }
            'C' => reply::policy_refused("Clear data connections are not allowed; use PROT P"),
            _ => Reply::new(536, "Only PROT P is supported"),
        }
    }

    fn user(&mut self, name: String) -> Reply {
        if !self.control.is_tls() {
            return reply::not_logged_in("Sign-in requires TLS: send AUTH TLS first");
        }
        if self.home.is_some() {
            return reply::bad_sequence("Already signed in");
        }
        self.user_name = Some(name);
        reply::need_password()
    }

    async fn pass(&mut self, password: String) -> Reply {
        let Some(login) = self.user_name.take() else {
            return reply::bad_sequence("USER first");
        };
        let directory = self.shared.homes.directory.clone();
        let user = match directory
            .ftp
            .ftp_sign_in(&login, password, self.peer.ip())
            .await
        {
            Ok(user) => user,
            Err(error) => {
                self.failures += 1;
                let refusal = reply::sign_in_refused(&error);
                if self.failures >= MAX_LOGIN_FAILURES && !refusal.closes() {
                    return reply::closing("Too many failed sign-ins on this connection");
                }
                return refusal;
            }
        };
        let opened = directory
            .ftp
            .ftp_home(user.id)
            .map_err(|e| e.to_string())
            .and_then(|(_, path)| {
                self.shared
                    .homes
                    .home(user.id, &path)
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
        match opened {
            Ok(home) => {
                self.signed_in_with = directory.ftp.ftp_password_stamp(user.id);
                tracing::Span::current().record("user_id", user.id);
                tracing::info!("FTP sign-in");
                self.home = Some(home);
                self.cwd = VirtualPath::root();
                reply::logged_in()
            }
            Err(error) => {
                tracing::error!(user_id = user.id, %error, "cannot open the FTP home");
                reply::closing("Your home directory is not available")
            }
        }
    }

    /// PASV, EPSV, PORT and EPRT: prepares the next data connection.
    pub(super) async fn prepare_data(&mut self, command: Command) -> Reply {
        self.data = None;
        self.data_expires = Some(tokio::time::Instant::now() + self.shared.rules.data_timeout);
        let rules = &self.shared.rules;
        match command {
            Command::Port(address) => {
                if !rules.active_mode {
                    return Reply::new(502, "Active mode is off; use PASV or EPSV");
                }
                if address.ip() != self.peer.ip() || address.port() < 1024 {
                    return reply::bad_argument(
                        "PORT must name your own address and a port above 1023",
                    );
                }
                self.data = Some(DataSource::Active(address));
                reply::ok("PORT ok")
            }
            extended => {
                let listener =
                    match super::data::listen_passive(self.local.ip(), rules.passive_ports).await {
                        Ok(listener) => listener,
                        Err(error) => {
                            tracing::warn!(%error, "no passive port");
                            return reply::no_data_connection("no passive port is free");
                        }
                    };
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                let announced = rules.passive_ip.map(IpAddr::V4).unwrap_or(self.local.ip());
                self.data = Some(DataSource::Passive(listener));
                match (extended, announced) {
                    (Command::Epsv, _) => {
                        Reply::new(229, format!("Entering Extended Passive Mode (|||{port}|)"))
                    }
                    (_, IpAddr::V4(ip)) => {
                        let [a, b, c, d] = ip.octets();
                        Reply::new(
                            227,
                            format!(
                                "Entering Passive Mode ({a},{b},{c},{d},{},{})",
                                port >> 8,
                                port & 0xff
                            ),
                        )
                    }
                    (_, IpAddr::V6(_)) => {
                        self.data = None;
                        Reply::new(522, "PASV needs IPv4; use EPSV (1,2)")
                    }
                }
            }
        }
    }
}

/// Returns once the server is stopping.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The reply of a transfer, once it ends.
async fn finish(mut transfer: Transfer) -> Reply {
    transfer.reply().await
}

/// The reply of the running transfer, if any, once it ends.
async fn wait(transfer: &mut Option<Transfer>) -> Reply {
    match transfer.as_mut() {
        Some(transfer) => transfer.reply().await,
        None => std::future::pending().await,
    }
}

/// Returns at `deadline` (never without one).
async fn expiry(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn features() -> Reply {
    let lines = [
        "AUTH TLS",
        "PBSZ",
        "PROT",
        "UTF8",
        "EPSV",
        "PASV",
        "SIZE",
        "MDTM",
        "MFMT",
        "REST STREAM",
        "MLST type*;size*;modify*;perm*;",
        "TVFS",
    ];
    Reply::multi(
        211,
        "Features:",
        lines.iter().map(|l| (*l).to_owned()).collect(),
    )
}

fn help() -> Reply {
    let commands = "USER PASS AUTH PBSZ PROT CCC FEAT OPTS SYST TYPE MODE STRU PWD CWD CDUP MKD RMD \
        DELE RNFR RNTO SIZE MDTM MFMT LIST NLST MLSD MLST STOR APPE STOU RETR REST ABOR STAT \
        NOOP QUIT HELP ALLO PASV EPSV PORT EPRT";
    Reply::multi(214, "Commands:", vec![commands.to_owned()])
}

fn options(option: &str) -> Reply {
    let upper = option.to_ascii_uppercase();
    if upper == "UTF8 ON" || upper == "UTF8" {
        reply::ok("UTF-8 is always on")
    } else if upper.starts_with("MLST") {
        reply::ok("MLST OPTS type;size;modify;perm;")
    } else {
        reply::bad_argument("Unknown option")
    }
}
