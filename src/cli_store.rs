//! The store commands of the command line: backups (of a running daemon
//! or a stopped one), `verify`, and `migrate-store`.

use gatehouse::config::Config;
use std::path::PathBuf;

pub fn run_backup(
    out: &std::path::Path,
    url: Option<String>,
    token_file: Option<PathBuf>,
    config_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(url) = url else {
        let config = Config::load(config_path.as_deref())?;
        let summary = gatehouse::app::backup(&config, out)?;
        eprintln!(
            "backed up {} entries ({} bytes) to {}",
            summary.entries,
            summary.bytes,
            out.display()
        );
        return Ok(());
    };
    let token = match token_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => std::env::var("GATEHOUSE_TOKEN")
            .context("give root's token in GATEHOUSE_TOKEN or --token-file")?,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let (bytes, summary) = gatehouse::app::write_aside(out, |file| {
        let bytes = runtime.block_on(download_backup(&url, token.trim(), file))?;
        // The whole download is checked (form and digest) before it replaces anything.
        std::io::Seek::rewind(file)?;
        let mut reader = std::io::BufReader::new(&mut *file);
        let (summary, _) = gatehouse::store::sled::SledStore::check_backup_from(&mut reader)
            .context("the downloaded backup is damaged")?;
        Ok((bytes, summary))
    })?;
    eprintln!(
        "backed up {} entries ({bytes} bytes) from {url} to {}",
        summary.entries,
        out.display()
    );
    Ok(())
}

/// Streams `GET /api/v1/backup` into `file`.
async fn download_backup(url: &str, token: &str, file: &mut std::fs::File) -> anyhow::Result<u64> {
    use anyhow::Context;
    use std::io::Write;
    let endpoint = format!("{}/api/v1/backup", url.trim_end_matches('/'));
    let mut response = reqwest::Client::new()
        .get(&endpoint)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    if !response.status().is_success() {
        let status = response.status();
        anyhow::bail!(
            "{endpoint}: {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.context("the download broke off")? {
        file.write_all(&chunk)?;
        bytes += chunk.len() as u64;
    }
    Ok(bytes)
}

pub fn run_verify(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let drift = gatehouse::app::verify(&config)?;
    for line in &drift {
        println!("{line}");
    }
    match drift.len() {
        0 => {
            eprintln!("every index matches its records");
            Ok(())
        }
        n => anyhow::bail!("{n} drifts between indexes and records"),
    }
}

pub fn run_migrate_store(from: &str, to: &str, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config_path.as_deref())?;
    let from = from
        .strip_prefix("sled:")
        .ok_or_else(|| anyhow::anyhow!("--from takes sled:DATA_DIR"))?;
    let to = match to.strip_prefix("postgres") {
        Some("") => None,
        Some(rest) => Some(
            rest.strip_prefix(":")
                .ok_or_else(|| anyhow::anyhow!("--to takes postgres:URL"))?
                .to_owned(),
        ),
        None => anyhow::bail!("--to takes postgres:URL"),
    };
    let bar = crate::progress_bar("entries copied");
    let report =
        gatehouse::app::migrate_store(&config, std::path::Path::new(from), to, &|tree, done| {
            bar.set_message(format!("of {tree} copied"));
            bar.set_position(done);
        })?;
    bar.finish_and_clear();
    for problem in &report.problems {
        println!("{problem}");
    }
    eprintln!(
        "{} entries in the sled store, {} copied by this run",
        report.entries, report.copied
    );
    match report.problems.len() {
        0 => {
            eprintln!("the copy matches the source, and every index matches its records");
            Ok(())
        }
        n => anyhow::bail!("{n} differences between the source and the copy"),
    }
}
