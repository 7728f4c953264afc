//! The `gatehouse` command: parses arguments, loads config, sets up logging and
//! hands over to the library.

mod cli_store;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use cli_store::{run_backup, run_migrate_store, run_verify};
use gatehouse::client::commands::{Connection, FtpAction, GroupAction, UserAction};
use gatehouse::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Account directory daemon")]
struct Cli {
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (admin API and FTPS) until SIGTERM or ctrl-c.
    Serve {
        /// TOML config file; without one, embedded defaults and GATEHOUSE_* variables apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// LDAP directory sync (run while the daemon is stopped; a running daemon
    /// has `POST /api/v1/ldap/sync` instead).
    Ldap {
        #[command(subcommand)]
        command: LdapCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// FTP accounts: create or delete them on the running daemon (--url,
    /// token); rescan usage from disk with the daemon stopped (a running
    /// daemon has `POST /api/v1/users/{id}/ftp/rescan`).
    Ftp {
        #[command(subcommand)]
        command: FtpCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Write a consistent backup of the store and its sealing key (mode 0600).
    /// With `--url`, of the running daemon (root's token from GATEHOUSE_TOKEN
    /// or `--token-file`); without, of a stopped one.
    Backup {
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
        /// The running daemon's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: Option<String>,
        /// File holding root's API token (default: the GATEHOUSE_TOKEN variable).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// TOML config file (for a stopped daemon's data_dir).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Restore a backup into an empty data directory, then verify it.
    Restore {
        file: PathBuf,
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check every index of the store against its records (daemon stopped);
    /// exits non-zero when anything drifted.
    Verify {
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Copy a sled store (its daemon stopped) into PostgreSQL, resuming a
    /// copy that stopped, then compare both sides and check every index.
    MigrateStore {
        /// `sled:DATA_DIR`
        #[arg(long)]
        from: String,
        /// `postgres:URL`, or `postgres` for the config's [postgres] URL.
        #[arg(long)]
        to: String,
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The root API token (run while the daemon is stopped).
    RootToken {
        #[command(subcommand)]
        command: RootTokenCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Users: list, show, create and change them on the running daemon
    /// (--url, token); export and import CSV with the daemon stopped (a
    /// running daemon has `GET /api/v1/users.csv` and `POST /api/v1/users/import`).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Groups of the running daemon.
    Groups {
        #[command(subcommand)]
        action: GroupAction,
        #[command(flatten)]
        connection: Connection,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum UsersCommand {
    #[command(flatten)]
    Admin(UserAction),
    /// Write every user as CSV (the source systems' columns; never a password).
    Export {
        /// File to write; default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Add, update or delete users from a CSV file, all or nothing.
    Import {
        #[arg(long, value_enum)]
        mode: ImportModeArg,
        /// Print the plan and every error; change nothing.
        #[arg(long)]
        dry_run: bool,
        file: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportModeArg {
    Add,
    Update,
    Delete,
}

#[derive(Subcommand)]
enum LdapCommand {
    /// Run one directory sync now (full unless --incremental).
    Sync {
        /// Read only entries changed since the last successful run.
        #[arg(long)]
        incremental: bool,
    },
}

#[derive(Subcommand)]
enum RootTokenCommand {
    /// Revoke the root user's API tokens and write a new one to
    /// `<data_dir>/root.token` (mode 0600), for a lost token. Audited.
    Reset,
}

#[derive(Subcommand)]
enum FtpCommand {
    /// Recompute every FTP account's usage from the files on disk (daemon stopped).
    Rescan,
    #[command(flatten)]
    Admin(FtpAction),
}

const DEFAULT_LOG_FILTER: &str = "info";

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // Logs go to standard error: standard output carries what a command prints.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let outcome = match cli.command {
        Command::Serve { config } => run_serve(config),
        Command::Ftp {
            command: FtpCommand::Rescan,
            config,
            ..
        } => run_ftp_rescan(config),
        Command::Ftp {
            command: FtpCommand::Admin(action),
            connection,
            ..
        } => online(gatehouse::client::commands::ftp(&connection, action)),
        Command::Groups { action, connection } => {
            online(gatehouse::client::commands::groups(&connection, action))
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gatehouse",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Ldap {
            command: LdapCommand::Sync { incremental },
            config,
        } => run_ldap_sync(config, incremental),
        Command::Users {
            command,
            config,
            connection,
        } => run_users(command, config, &connection),
        Command::RootToken {
            command: RootTokenCommand::Reset,
            config,
        } => run_root_token_reset(config),
        Command::Backup {
            out,
            url,
            token_file,
            config,
        } => run_backup(&out, url, token_file, config),
        Command::Restore { file, config } => {
            let config = Config::load(config.as_deref());
            config.map_err(Into::into).and_then(|config| {
                let summary = gatehouse::app::restore(&config, &file)?;
                eprintln!(
                    "restored {} entries into {}",
                    summary.entries,
                    config.data_dir.display()
                );
                Ok(())
            })
        }
        Command::Verify { config } => run_verify(config),
        Command::MigrateStore { from, to, config } => run_migrate_store(&from, &to, config),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("gatehouse: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command against the running daemon and prints what it returns.
fn online(
    command: impl std::future::Future<Output = Result<String, gatehouse::client::ClientError>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let text = runtime.block_on(command)?;
    println!("{text}");
    Ok(())
}

fn run_user_action(connection: &Connection, action: UserAction) -> anyhow::Result<()> {
    use anyhow::Context;
    let password = match &action {
        UserAction::Create {
            password_stdin: true,
            ..
        } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password")?;
            Some(line.trim_end_matches(['\r', '\n']).to_owned())
        }
        _ => None,
    };
    let bar = progress_bar("users read");
    let progress = |count: usize| bar.set_position(count as u64);
    let outcome = online(gatehouse::client::commands::users(
        connection, action, password, &progress,
    ));
    bar.finish_and_clear();
    outcome
}

fn run_serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(gatehouse::app::serve(config))
}

fn run_ftp_rescan(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let scanned = gatehouse::app::rescan_ftp_usage(&config)?;
    println!("rescanned {scanned} FTP accounts");
    Ok(())
}

fn run_root_token_reset(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let path = gatehouse::app::reset_root_token(&config)?;
    eprintln!(
        "a new root API token is in {}; the old one no longer works",
        path.display()
    );
    Ok(())
}

fn run_ldap_sync(config_path: Option<PathBuf>, incremental: bool) -> anyhow::Result<()> {
    use gatehouse::service::sync::SyncMode;
    let config = Config::load(config_path.as_deref())?;
    let mode = if incremental {
        SyncMode::Incremental
    } else {
        SyncMode::Full
    };
    let bar = progress_bar("entries read");
    let progress = |read: usize| bar.set_position(read as u64);
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(gatehouse::app::sync_ldap(&config, mode, &progress))?;
    bar.finish();
    println!("{}", serde_json::to_string_pretty(&report)?);
    match report.aborted {
        Some(reason) => anyhow::bail!("sync changed nothing: {reason}"),
        None => Ok(()),
    }
}

/// A counter on standard error: drawn on a terminal, silent otherwise (so no
/// `\r` ends up in a log file).
fn progress_bar(what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    let style =
        indicatif::ProgressStyle::with_template("{spinner} {pos} {msg} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

fn run_users(
    command: UsersCommand,
    config_path: Option<PathBuf>,
    connection: &Connection,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use gatehouse::service::exchange::ImportMode;
    let config = || Config::load(config_path.as_deref());
    match command {
        UsersCommand::Admin(action) => run_user_action(connection, action),
        UsersCommand::Export { out } => {
            let config = config()?;
            let bar = progress_bar("users written");
            let progress = |count: usize| bar.set_position(count as u64);
            let count = gatehouse::app::export_users(&config, out.as_deref(), &progress)?;
            bar.finish_and_clear();
            eprintln!("exported {count} users");
            Ok(())
        }
        UsersCommand::Import {
            mode,
            dry_run,
            file,
        } => {
            let config = config()?;
            let csv =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mode = match mode {
                ImportModeArg::Add => ImportMode::Add,
                ImportModeArg::Update => ImportMode::Update,
                ImportModeArg::Delete => ImportMode::Delete,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report =
                runtime.block_on(gatehouse::app::import_users(&config, &csv, mode, dry_run))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if let Some(first) = report.errors.first() {
                let column = first
                    .column
                    .as_deref()
                    .map(|c| format!(", column {c}"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "{}: line {}{column}: {} ({} errors); nothing was imported",
                    file.display(),
                    first.line,
                    first.message,
                    report.errors.len()
                );
            }
            Ok(())
        }
    }
}
