//! What the admin dashboard shows: accounts per status (pending first), FTP
//! usage against quota, the outbox and the last directory sync. For callers
//! who may read the directory.

use super::{Directory, Principal, ServiceResult};
use crate::domain::roles::{self, Capability};
use crate::domain::user::Status;

/// Users with the most FTP usage shown.
const FTP_ROWS: usize = 20;

/// One user's FTP usage.
pub struct FtpUsage {
    pub login: String,
    pub used_mb: f64,
    /// 0 without a quota.
    pub quota_mb: f64,
}

pub struct Dashboard {
    /// (status, users): pending, active, deactivated, archived.
    pub counts: Vec<(&'static str, usize)>,
    pub ftp: Vec<FtpUsage>,
    /// Mails waiting, for those who steer the outbox.
    pub queued_mail: Option<usize>,
    /// The last directory sync, for those who run syncs.
    pub last_sync: Option<String>,
    /// Sign-ins per hour over the last day, oldest first.
    pub sign_ins: Vec<super::hourly::HourCount>,
}

impl Directory {
    pub fn dashboard(&self, principal: &Principal) -> ServiceResult<Dashboard> {
        let actor = principal.unrestricted()?;
        roles::require(actor, Capability::ReadDirectory)?;
        let mut counts = [
            ("pending", 0),
            ("active", 0),
            ("deactivated", 0),
            ("archived", 0),
        ];
        for entry in self.accounts.index.entries() {
            let slot = match (entry.is_archived(), entry.status) {
                (true, _) => 3,
                (false, Status::Pending) => 0,
                (false, Status::Active) => 1,
                (false, Status::Deactivated) => 2,
            };
            counts[slot].1 += 1;
        }
        let mb = |bytes: u64| (bytes as f64 / f64::from(1 << 20) * 10.0).round() / 10.0;
        let mut ftp: Vec<FtpUsage> = self
            .accounts
            .snapshot()
            .users()?
            .into_iter()
            .filter(|user| user.ftp.enabled)
            .map(|user| FtpUsage {
                login: user
                    .login
                    .as_ref()
                    .map(|l| l.as_str().to_owned())
                    .unwrap_or_default(),
                used_mb: mb(user.ftp.used_bytes),
                quota_mb: user.ftp.quota_mb.map_or(0.0, |q| q as f64),
            })
            .collect();
        ftp.sort_by(|a, b| b.used_mb.total_cmp(&a.used_mb));
        ftp.truncate(FTP_ROWS);
        let last_sync = match roles::has_capability(actor, Capability::RunSync) {
            true => Some(match self.sync.sync_status(principal)?.last_run {
                Some(run) => {
                    let when = run.finished_at.map_or("running".into(), |t| {
                        t.format("%Y-%m-%d %H:%M UTC").to_string()
                    });
                    match run.aborted {
                        Some(reason) => format!("{when}: changed nothing ({reason})"),
                        None => format!(
                            "{when}: {} seen, {} created, {} updated",
                            run.seen, run.created, run.updated
                        ),
                    }
                }
                None => "none yet".into(),
            }),
            false => None,
        };
        let queued_mail = match roles::has_capability(actor, Capability::ManageMail) {
            true => Some(self.mail.queued_count()?),
            false => None,
        };
        Ok(Dashboard {
            counts: counts.to_vec(),
            ftp,
            queued_mail,
            last_sync,
            sign_ins: self.signin.sign_ins_per_hour(),
        })
    }
}
