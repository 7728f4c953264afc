//! The `gatehouse` command: parses arguments, loads config, sets up logging and
//! hands over to the library.

use clap::{Parser, Subcommand, ValueEnum};
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
    /// FTP maintenance (run while the daemon is stopped; a running daemon has
    /// `POST /api/v1/users/{id}/ftp/rescan` instead).
    /// LDAP directory sync (run while the daemon is stopped; a running daemon
    /// has `POST /api/v1/ldap/sync` instead).
    Ldap {
        #[command(subcommand)]
        command: LdapCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    Ftp {
        #[command(subcommand)]
        command: FtpCommand,
        /// TOML config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
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
enum FtpCommand {
    /// Recompute every FTP account's usage from the files on disk.
    Rescan,
}

/// Info for gatehouse; warnings only from libunftp, whose info spans carry whole sessions.
const DEFAULT_LOG_FILTER: &str = "info,libunftp=warn,unftp_sbe_fs=warn";

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
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
        } => run_ftp_rescan(config),
        Command::Ldap {
            command: LdapCommand::Sync { incremental },
            config,
        } => run_ldap_sync(config, incremental),
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

fn run_ldap_sync(config_path: Option<PathBuf>, incremental: bool) -> anyhow::Result<()> {
    use gatehouse::service::sync::SyncMode;
    use std::io::Write;
    let config = Config::load(config_path.as_deref())?;
    let mode = if incremental {
        SyncMode::Incremental
    } else {
        SyncMode::Full
    };
    let started = std::time::Instant::now();
    let progress = move |read: usize| {
        let rate = read as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r[{:<30}] {read} entries read ({rate:.0}/s)",
            "=".repeat((read / 500).min(30))
        );
        let _ = std::io::stderr().flush();
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(gatehouse::app::sync_ldap(&config, mode, &progress))?;
    eprintln!();
    println!("{}", serde_json::to_string_pretty(&report)?);
    match report.aborted {
        Some(reason) => anyhow::bail!("sync changed nothing: {reason}"),
        None => Ok(()),
    }
}
