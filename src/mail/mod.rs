//! Outgoing mail: templates, the SMTP transport and the sender task that
//! drains the outbox. What gets queued, and when, is the service's
//! (`service::mail`); this module only renders and delivers.

pub mod templates;
mod transport;

pub use templates::{Rendered, TemplateError, Templates};
pub use transport::{Sender, TransportError};

use crate::config::MailConfig;
use crate::domain::mail::{Attempt, MailId, RetryPolicy};
use crate::service::Directory;
use crate::service::mail::Outgoing;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Mails taken from the outbox per round, per unit of concurrency.
const ROUND_PER_SENDER: usize = 16;
/// How often finished entries older than `[mail] keep` are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The sender task's parts.
pub struct Worker {
    directory: Arc<Directory>,
    sender: Sender,
    templates: Templates,
    policy: RetryPolicy,
    concurrency: usize,
    poll_interval: Duration,
    keep: Duration,
}

impl Worker {
    /// Builds the sender from `config` (transport and templates checked now,
    /// so a bad setting stops start-up rather than every mail).
    pub fn new(directory: Arc<Directory>, config: &MailConfig, site: &str) -> anyhow::Result<Self> {
        Ok(Self {
            directory,
            sender: Sender::new(config)?,
            templates: Templates::load(&config.templates_dir, site)?,
            policy: RetryPolicy {
                initial: config.retry_initial,
                max: config.retry_max,
                max_attempts: config.max_attempts,
            },
            concurrency: config.concurrency,
            poll_interval: config.poll_interval,
            keep: config.keep,
        })
    }

    /// Delivers until `stopped` turns true. A round in progress finishes and
    /// is recorded first, so nothing sent is forgotten.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if let Err(error) = self.drain().await {
                tracing::warn!(%error, "mail outbox round failed");
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                match crate::service::core::offload(|| self.directory.mail.prune(self.keep)) {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "old outbox entries forgotten"),
                    Err(error) => tracing::warn!(%error, "outbox pruning failed"),
                }
            }
            tokio::select! {
                () = self.directory.mail.woken() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Folds due digests, then sends rounds of due mail until none is left.
    async fn drain(&self) -> anyhow::Result<()> {
        let mail = &self.directory.mail;
        let digests = crate::service::core::offload(|| mail.compose_digests())?;
        if digests > 0 {
            tracing::info!(digests, "held notifications folded into digests");
        }
        loop {
            let round =
                crate::service::core::offload(|| mail.due(self.concurrency * ROUND_PER_SENDER))?;
            if round.is_empty() {
                self.sender.close_idle().await;
                return Ok(());
            }
            let attempts: Vec<(MailId, Attempt)> = futures_util::stream::iter(round)
                .map(|outgoing| async move { (outgoing.id, self.attempt(&outgoing).await) })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let failed = attempts.iter().filter(|(_, a)| *a != Attempt::Sent).count();
            if failed > 0 {
                tracing::warn!(
                    failed,
                    of = attempts.len(),
                    "mails not delivered this round"
                );
            }
            crate::service::core::offload(|| mail.record(attempts, &self.policy))?;
            if failed > 0 {
                // The server is struggling: the rest waits for the next round.
                return Ok(());
            }
        }
    }

    async fn attempt(&self, mail: &Outgoing) -> Attempt {
        match self.templates.render(mail) {
            Ok(rendered) => self.sender.send(mail, rendered).await,
            Err(error) => Attempt::Permanent(format!("template: {error}")),
        }
    }
}
