//! Readiness: whether this daemon can do its work now. The store must take
//! a durable write, a configured directory (LDAP) must answer, and the mail
//! outbox must not hold mail that should have gone out minutes ago (a
//! stalled sender). Each check reports why it failed.

use super::Directory;
use crate::domain::mail::Queued;
use serde::Serialize;

/// How long a readiness answer is reused (the probe is public: a flood of
/// probes must not become a flood of store writes).
const REUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// The last answer, and when it was made.
pub(crate) type ReadinessCache = tokio::sync::Mutex<Option<(std::time::Instant, Readiness)>>;

/// Mail due longer than this without an attempt means the sender is stuck.
const OUTBOX_STALL: chrono::Duration = chrono::Duration::minutes(5);

/// One check's outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Check {
    fn passed() -> Self {
        Self {
            ok: true,
            reason: None,
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: Some(reason.into()),
        }
    }
}

/// Every check, and whether all passed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub store: Check,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<Check>,
    pub outbox: Check,
}

impl Directory {
    /// Every readiness check, run at most once per [`REUSE`].
    pub async fn readiness(&self) -> Readiness {
        let mut cache = self.readiness_cache.lock().await;
        if let Some((at, readiness)) = cache.as_ref() {
            if at.elapsed() < REUSE {
                return readiness.clone();
            }
        }
        let readiness = self.check_readiness().await;
        *cache = Some((std::time::Instant::now(), readiness.clone()));
        readiness
    }

    async fn check_readiness(&self) -> Readiness {
        let store = match self
            .core
            .write(None, |unit| Ok(unit.tx.next_id("readiness_probe")?))
        {
            Ok(_) => Check::passed(),
            Err(error) => Check::failed(format!("the store takes no writes: {error}")),
        };
        let ldap = self
            .sync
            .check_external()
            .await
            .map(|checked| match checked {
                Ok(()) => Check::passed(),
                Err(error) => Check::failed(format!("the directory does not answer: {error}")),
            });
        let outbox = self.outbox_check();
        let ready = store.ok && outbox.ok && ldap.as_ref().is_none_or(|c| c.ok);
        Readiness {
            ready,
            store,
            ldap,
            outbox,
        }
    }

    fn outbox_check(&self) -> Check {
        let overdue_since = self.now() - OUTBOX_STALL;
        let snapshot = self.core.snapshot();
        let mut after = 0;
        let mut overdue = 0usize;
        loop {
            let page: Vec<Queued> = match snapshot.queued_mails(after, 4096) {
                Ok(page) => page,
                Err(error) => return Check::failed(format!("the outbox is unreadable: {error}")),
            };
            let Some(last) = page.last() else { break };
            after = last.id;
            overdue += page
                .iter()
                .filter(|q| !q.held && q.due_at < overdue_since)
                .count();
        }
        match overdue {
            0 => Check::passed(),
            n => Check::failed(format!(
                "{n} mails are overdue by more than 5 minutes; is the sender stuck?"
            )),
        }
    }
}
