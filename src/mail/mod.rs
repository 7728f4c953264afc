//! Outgoing mail: templates, the SMTP transport and the sender task that
//! drains the outbox. What gets queued, and when, is the service's
//! (`service::mail`); this module only renders and delivers.

pub mod templates;
mod transport;

pub use templates::{Rendered, TemplateError, Templates};
pub use transport::{Sender, TransportError};

use crate::config::MailConfig;
use crate::domain::mail::{Attempt, RetryPolicy};
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

    /// Delivers until `stopped` turns true, while this daemon leads (one
    /// sender for a shared store, so no mail goes twice). The round in progress (at most
    /// `concurrency × 16` mails, each bounded by `timeout`) finishes and is
    /// recorded first, so nothing sent is forgotten.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut last_prune = tokio::time::Instant::now();
        let leader = self.directory.leadership();
        loop {
            let leading = *leader.borrow();
            if leading && let Err(error) = self.drain(&stopped).await {
                tracing::warn!(%error, "mail outbox round failed");
            }
            if leading && last_prune.elapsed() >= PRUNE_EVERY {
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

    /// Folds due digests, then sends rounds of due mail until none is left
    /// (or the daemon stops). Attempts are recorded as they complete, a few
    /// at a time, so a crash forgets at most the mails still in flight.
    async fn drain(&self, stopped: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let mail = &self.directory.mail;
        let digests = crate::service::core::offload(|| mail.compose_digests())?;
        if digests > 0 {
            tracing::info!(digests, "held notifications folded into digests");
        }
        let leader = self.directory.leadership();
        // Each round starts only while this daemon still leads.
        while !*stopped.borrow() && *leader.borrow() {
            let round =
                crate::service::core::offload(|| mail.due(self.concurrency * ROUND_PER_SENDER))?;
            if round.is_empty() {
                break;
            }
            let mut completed = futures_util::stream::iter(round)
                .map(|outgoing| async move { (outgoing.id, self.attempt(&outgoing).await) })
                .buffer_unordered(self.concurrency)
                .ready_chunks(self.concurrency);
            let mut failed = 0;
            while let Some(attempts) = completed.next().await {
                for (_, attempt) in &attempts {
                    crate::telemetry::mail_attempt(match attempt {
                        Attempt::Sent => "sent",
                        Attempt::Transient(_) => "retry",
                        Attempt::Permanent(_) => "failed",
                    });
                }
                failed += attempts.iter().filter(|(_, a)| *a != Attempt::Sent).count();
                crate::service::core::offload(|| mail.record(attempts, &self.policy))?;
            }
            if failed > 0 {
                // The server is struggling: the rest waits for the next round.
                tracing::warn!(failed, "mails not delivered this round");
                break;
            }
        }
        self.sender.close_idle().await;
        Ok(())
    }

    async fn attempt(&self, mail: &Outgoing) -> Attempt {
        match self.templates.render(mail) {
            Ok(rendered) => self.sender.send(mail, rendered).await,
            Err(error) => Attempt::Permanent(format!("template: {error}")),
        }
    }
}
