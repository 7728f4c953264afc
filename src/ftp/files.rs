//! The commands of a signed-in session: working directory, files and folders,
//! listings and transfers. A transfer is checked (path, protection, data
//! connection prepared) before its 150 reply, then runs as its own task.

use super::command::{Command, TransferType};
use super::data::{self, DataRules, DataSource};
use super::listing;
use super::path::VirtualPath;
use super::reply::{self, Reply};
use super::session::{Session, Transfer};
use super::storage::{Home, StorageError};
use super::upload::UploadMode;
use std::future::Future;

/// Entries a LIST, NLST or MLSD sends at most.
const MAX_LISTING: usize = 100_000;
/// Entries `STAT <path>` sends at most (over the control connection).
const MAX_STAT_ENTRIES: usize = 1_000;

impl Session {
    fn home_ref(&self) -> Result<&Home, Reply> {
        self.home
            .as_ref()
            .ok_or_else(|| reply::not_logged_in("Please sign in with USER and PASS"))
    }

    fn resolve(&self, arg: &str) -> VirtualPath {
        self.cwd.join(arg)
    }

    /// Runs a command that needs a signed-in user.
    pub(super) async fn handle_signed_in(
        &mut self,
        command: Command,
    ) -> std::io::Result<Option<Reply>> {
        let home = match self.home_ref() {
            Ok(home) => home.clone(),
            Err(refusal) => return Ok(Some(refusal)),
        };
        use Command as C;
        // REST applies to the transfer that follows it (data-connection set-up
        // may come between, as clients order them differently), and to nothing else.
        let rest = match &command {
            C::Rest(_) | C::Pasv | C::Epsv | C::EpsvAll | C::Port(_) | C::Type(_) | C::Noop => None,
            _ => self.rest.take(),
        };
        if !matches!(command, C::Rnto(_)) && !matches!(command, C::Rnfr(_)) {
            self.rename_from = None;
        }
        let reply = match command {
            C::Type(TransferType::Ascii) => reply::ok("Type set to A (bytes are sent unchanged)"),
            C::Type(TransferType::Binary) => reply::ok("Type set to I"),
            C::Mode('S') => reply::ok("Mode S"),
            C::Mode(_) => reply::unsupported_parameter("Only MODE S is supported"),
            C::Stru('F') => reply::ok("Structure F"),
            C::Stru(_) => reply::unsupported_parameter("Only STRU F is supported"),
            C::Allo => reply::superfluous("ALLO is not needed here"),
            C::Pwd => reply::current_dir(self.cwd.as_str()),
            C::Cwd(arg) => self.change_dir(&home, self.resolve(&arg)).await,
            C::Cdup => self.change_dir(&home, self.cwd.parent()).await,
            C::Rest(offset) => {
                self.rest = Some(offset);
                reply::pending(format!("Restarting at {offset}; send STOR or RETR"))
            }
            C::EpsvAll => {
                self.epsv_all = true;
                reply::ok("EPSV ALL: only EPSV from now on")
            }
            C::Pasv | C::Port(_) if self.epsv_all => {
                reply::bad_sequence("EPSV ALL is in effect; use EPSV")
            }
            C::Pasv | C::Epsv | C::Port(_) => self.prepare_data(command).await,
            C::Mkd(arg) => {
                let path = self.resolve(&arg);
                answer(home.make_dir(&path), || reply::path_created(path.as_str())).await
            }
            C::Rmd(arg) => {
                answer(home.remove_dir(&self.resolve(&arg)), || {
                    reply::done("Directory removed")
                })
                .await
            }
            C::Dele(arg) => {
                answer(home.delete(&self.resolve(&arg)), || reply::done("Deleted")).await
            }
            C::Rnfr(arg) => self.rename_from(&home, self.resolve(&arg)).await,
            C::Rnto(arg) => match self.rename_from.take() {
                None => reply::bad_sequence("RNFR first"),
                Some(from) => {
                    answer(home.rename(&from, &self.resolve(&arg)), || {
                        reply::done("Renamed")
                    })
                    .await
                }
            },
            C::Size(arg) => match home.file_size(&self.resolve(&arg)).await {
                Ok(size) => reply::file_status(size.to_string()),
                Err(error) => Reply::from(&error),
            },
            C::Mdtm(arg) => match home.stat(&self.resolve(&arg)).await {
                Ok(meta) if meta.is_file() => {
                    let time = meta
                        .modified()
                        .map(|t| t.into_std())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    reply::file_status(listing::timestamp(time))
                }
                Ok(_) => Reply::from(&StorageError::NotAFile),
                Err(error) => Reply::from(&error),
            },
            C::Mfmt(time, arg) => self.set_time(&home, &time, &arg).await,
            C::Mlst(arg) => self.mlst(&home, arg.as_deref()).await,
            C::Stat(Some(arg)) => self.stat_path(&home, &arg).await,
            C::Stat(None) => Reply::multi(
                211,
                "gatehouse FTPS status",
                vec![
                    format!("Connected from {}", self.peer.ip()),
                    "TLS on control; data connections protected".to_owned(),
                    format!("Working directory {}", self.cwd.as_str()),
                ],
            ),
            C::Abor => Reply::new(225, "No transfer to abort"),
            transfer => return self.transfer(home, transfer, rest).await,
        };
        Ok(Some(reply))
    }

    async fn change_dir(&mut self, home: &Home, path: VirtualPath) -> Reply {
        match home.stat(&path).await {
            Ok(meta) if meta.is_dir() => {
                self.cwd = path;
                reply::done(format!("Now in {}", self.cwd.as_str()))
            }
            Ok(_) => Reply::from(&StorageError::NotADirectory),
            Err(error) => Reply::from(&error),
        }
    }

    async fn rename_from(&mut self, home: &Home, path: VirtualPath) -> Reply {
        if let Err(error) = home.files.ensure_idle(&path) {
            return Reply::from(&error);
        }
        match home.stat(&path).await {
            Ok(_) => {
                self.rename_from = Some(path);
                reply::pending("Ready for RNTO")
            }
            Err(error) => Reply::from(&error),
        }
    }

    async fn set_time(&self, home: &Home, time: &str, arg: &str) -> Reply {
        let Some(when) = listing::parse_timestamp(time) else {
            return reply::bad_argument("MFMT needs a valid YYYYMMDDHHMMSS time");
        };
        let path = self.resolve(arg);
        match home.set_modified(&path, when).await {
            Ok(()) => reply::file_status(format!("Modify={time}; {arg}")),
            Err(error) => Reply::from(&error),
        }
    }

    async fn mlst(&self, home: &Home, arg: Option<&str>) -> Reply {
        let path = self.resolve(arg.unwrap_or(""));
        match home.stat(&path).await {
            Ok(meta) if meta.is_file() || meta.is_dir() => {
                let entry = super::storage::Entry {
                    name: path.name().to_owned(),
                    meta,
                };
                Reply::multi(250, "Listing", vec![listing::facts(&entry, path.as_str())])
            }
            Ok(_) => Reply::from(&StorageError::NotFound),
            Err(error) => Reply::from(&error),
        }
    }

    async fn stat_path(&self, home: &Home, arg: &str) -> Reply {
        let now = chrono::Utc::now();
        match home.list(&self.resolve(arg), MAX_STAT_ENTRIES).await {
            Ok(entries) => Reply::multi(
                213,
                "Status follows",
                entries.iter().map(|e| listing::list_line(e, now)).collect(),
            ),
            Err(error) => Reply::from(&error),
        }
    }

    /// LIST, NLST, MLSD, RETR, STOR, APPE, STOU: checks, 150, then a task.
    async fn transfer(
        &mut self,
        home: Home,
        command: Command,
        rest: Option<u64>,
    ) -> std::io::Result<Option<Reply>> {
        if !self.protected {
            return Ok(Some(reply::protection_required()));
        }
        let prepared = match self.prepare(&home, command, rest).await {
            Ok(prepared) => prepared,
            Err(refusal) => return Ok(Some(refusal)),
        };
        let (Some(source), Some(tls)) = (self.data.take(), self.tls.as_ref()) else {
            return Ok(Some(reply::no_data_connection("send PASV or EPSV first")));
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        let rules = DataRules {
            tls: tls.data.clone(),
            peer: self.peer.ip(),
            require_session_reuse: self.shared.rules.require_session_reuse,
            timeout: self.shared.rules.data_timeout,
            cancel: cancel.clone(),
        };
        self.control
            .send(&Reply::new(150, prepared.announce.clone()))
            .await?;
        self.transfer = Some(Transfer::spawn(
            run_transfer(source, rules, prepared.job),
            cancel,
        ));
        Ok(None)
    }

    /// Everything that can fail before the 150 reply.
    async fn prepare(
        &self,
        home: &Home,
        command: Command,
        rest: Option<u64>,
    ) -> Result<Prepared, Reply> {
        let fail = |error: StorageError| Reply::from(&error);
        let now = chrono::Utc::now();
        Ok(match command {
            Command::List(arg) => {
                let entries = home
                    .list(&self.resolve(arg.as_deref().unwrap_or("")), MAX_LISTING)
                    .await
                    .map_err(fail)?;
                let body = listing::body(entries.iter().map(|e| listing::list_line(e, now)));
                Prepared::listing("Here comes the listing", body)
            }
            Command::Nlst(arg) => {
                let entries = home
                    .list(&self.resolve(arg.as_deref().unwrap_or("")), MAX_LISTING)
                    .await
                    .map_err(fail)?;
                let body = listing::body(entries.iter().map(|e| e.name.clone()));
                Prepared::listing("Here comes the name list", body)
            }
            Command::Mlsd(arg) => {
                let path = self.resolve(arg.as_deref().unwrap_or(""));
                if !home.stat(&path).await.map_err(fail)?.is_dir() {
                    return Err(reply::bad_argument(
                        "MLSD lists directories; use MLST for a file",
                    ));
                }
                let entries = home.list(&path, MAX_LISTING).await.map_err(fail)?;
                let body = listing::body(entries.iter().map(|e| listing::facts(e, &e.name)));
                Prepared::listing("Here comes the directory listing", body)
            }
            Command::Retr(arg) => {
                let file = home
                    .open_read(&self.resolve(&arg), rest.unwrap_or(0))
                    .await
                    .map_err(fail)?;
                Prepared {
                    announce: format!("Opening data connection for {arg}"),
                    job: Job::Send(file),
                }
            }
            Command::Stor(arg) => {
                let mode = match rest {
                    Some(offset) if offset > 0 => UploadMode::Resume(offset),
                    _ => UploadMode::Replace,
                };
                Prepared::upload(
                    home,
                    self.resolve(&arg),
                    mode,
                    format!("Ready to receive {arg}"),
                )
                .await?
            }
            Command::Appe(arg) => {
                Prepared::upload(
                    home,
                    self.resolve(&arg),
                    UploadMode::Append,
                    format!("Ready to append to {arg}"),
                )
                .await?
            }
            Command::Stou => {
                let name = format!("upload-{:016x}", rand::random::<u64>());
                Prepared::upload(
                    home,
                    self.resolve(&name),
                    UploadMode::Replace,
                    format!("FILE: {name}"),
                )
                .await?
            }
            other => {
                tracing::debug!(?other, "not a transfer command");
                return Err(reply::not_implemented());
            }
        })
    }
}

/// A prepared transfer: the 150 text and what the task will do.
struct Prepared {
    announce: String,
    job: Job,
}

impl Prepared {
    async fn upload(
        home: &Home,
        path: VirtualPath,
        mode: UploadMode,
        announce: String,
    ) -> Result<Self, Reply> {
        let upload = home
            .begin_upload(&path, mode)
            .await
            .map_err(|e| Reply::from(&e))?;
        Ok(Self {
            announce,
            job: Job::Receive(upload),
        })
    }

    fn listing(announce: &str, body: Vec<u8>) -> Self {
        Self {
            announce: announce.to_owned(),
            job: Job::Listing(body),
        }
    }
}

enum Job {
    Listing(Vec<u8>),
    Send(std::fs::File),
    Receive(super::upload::Upload),
}

async fn run_transfer(source: DataSource, rules: DataRules, job: Job) -> Reply {
    let opened = tokio::select! {
        biased;
        () = rules.cancel.cancelled() => return Reply::from(&StorageError::Aborted),
        opened = data::open(source, &rules) => opened,
    };
    let stream = match opened {
        Ok(stream) => stream,
        Err(why) => return reply::no_data_connection(&why),
    };
    let (direction, outcome) = match job {
        Job::Listing(body) => {
            let sent = data::send_bytes(stream, &body, &rules).await;
            ("listing", sent.map(|()| body.len() as u64))
        }
        Job::Send(file) => ("download", data::send_file(stream, file, &rules).await),
        Job::Receive(upload) => ("upload", data::receive_file(stream, upload, &rules).await),
    };
    match outcome {
        Ok(bytes) => {
            crate::telemetry::ftp_transfer(direction, true, bytes);
            reply::transfer_complete()
        }
        Err(error) => {
            crate::telemetry::ftp_transfer(direction, false, 0);
            tracing::info!(%error, "transfer failed");
            Reply::from(&error)
        }
    }
}

async fn answer<F: Future<Output = Result<(), StorageError>>>(
    action: F,
    success: impl FnOnce() -> Reply,
) -> Reply {
    match action.await {
        Ok(()) => success(),
        Err(error) => Reply::from(&error),
    }
}
