//! FTP accounts: who may use FTPS, where their home is, and the quota rule.

use super::ValidationError;
use super::user::User;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

const MIB: u64 = 1024 * 1024;

/// A user's FTP account and its usage, kept on the user record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FtpAccount {
    pub enabled: bool,
    /// `None` means no quota.
    pub quota_mb: Option<u64>,
    /// Most files the home may hold; `None` means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_files: Option<u64>,
    pub used_bytes: u64,
    pub used_files: u64,
    /// Absolute path of the home directory, fixed when the account is created.
    pub home: Option<String>,
}

impl FtpAccount {
    pub fn quota_bytes(&self) -> Option<u64> {
        self.quota_mb.map(|mb| mb.saturating_mul(MIB))
    }

    /// Whether `extra` more bytes (beyond stored usage and `in_flight`) fit the quota.
    pub fn allows(&self, in_flight: u64, extra: u64) -> bool {
        self.quota_bytes().is_none_or(|quota| {
            self.used_bytes
                .saturating_add(in_flight)
                .saturating_add(extra)
                <= quota
        })
    }

    /// Whether `extra` more files (beyond stored usage and `in_flight`) fit.
    pub fn allows_files(&self, in_flight: u64, extra: u64) -> bool {
        self.quota_files.is_none_or(|quota| {
            self.used_files
                .saturating_add(in_flight)
                .saturating_add(extra)
                <= quota
        })
    }

    /// Applies a signed change in bytes and files, never below zero.
    pub fn record(&mut self, bytes: i64, files: i64) {
        self.used_bytes = self.used_bytes.saturating_add_signed(bytes);
        self.used_files = self.used_files.saturating_add_signed(files);
    }
}

/// The directory name of a user's home: the user id, so a reused or masked
/// login never inherits or reveals files.
pub fn home_dir_name(user: &User) -> String {
    user.id.to_string()
}

/// Whether `home` is one plain directory directly inside `root`: the only kind
/// of path the server creates as a home, and the only kind it will delete.
pub fn is_home_in(root: &Path, home: &Path) -> bool {
    let mut rest = match home.strip_prefix(root) {
        Ok(rest) => rest.components(),
        Err(_) => return false,
    };
    matches!(
        (rest.next(), rest.next()),
        (Some(Component::Normal(_)), None)
    )
}

/// Whether the user gets FTP access through membership of an allowed group.
pub fn granted_by_group(user: &User, allowed_groups: &[String]) -> bool {
    allowed_groups.iter().any(|group| user.in_group(group))
}

/// Checks a layout entry: a relative path of plain components.
pub fn validate_layout_entry(entry: &str) -> Result<(), ValidationError> {
    let path = Path::new(entry);
    let plain = !entry.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(ValidationError::new(
            "ftp.layout",
            format!("`{entry}` must be a relative path without `..`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::Login;
    use crate::domain::user::{Status, UserType};
    use chrono::Utc;

    #[test]
    fn quota_rule() {
        let mut account = FtpAccount {
            enabled: true,
            quota_mb: Some(1),
            ..FtpAccount::default()
        };
        assert!(account.allows(0, MIB));
        assert!(!account.allows(0, MIB + 1));
        account.record(512 * 1024, 1);
        assert!(account.allows(256 * 1024, 256 * 1024));
        assert!(!account.allows(256 * 1024, 256 * 1024 + 1));
        account.record(-(10 * MIB as i64), -5);
        assert_eq!((account.used_bytes, account.used_files), (0, 0));
        account.quota_mb = None;
        assert!(account.allows(u64::MAX, u64::MAX));
        assert!(account.allows_files(u64::MAX, 1));
        account.quota_files = Some(2);
        account.record(0, 1);
        assert!(account.allows_files(0, 1) && !account.allows_files(1, 1));
    }

    #[test]
    fn homes_and_layout() {
        let mut user = User::new(12, UserType::Local, Status::Active, Utc::now());
        assert_eq!(home_dir_name(&user), "12");
        user.login = Login::parse("ann").ok();
        assert_eq!(home_dir_name(&user), "12");
        for (entry, ok) in [
            ("incoming", true),
            ("a/b", true),
            ("../x", false),
            ("/abs", false),
            ("", false),
            ("a/../b", false),
        ] {
            assert_eq!(validate_layout_entry(entry).is_ok(), ok, "{entry}");
        }
        let root = Path::new("/srv/ftp");
        for (home, inside) in [
            ("/srv/ftp/ann", true),
            ("/srv/ftp/..", false),
            ("/srv/ftp/.", false),
            ("/srv/ftp", false),
            ("/srv/ftp/a/b", false),
            ("/srv/ftpx/ann", false),
            ("/etc", false),
        ] {
            assert_eq!(is_home_in(root, Path::new(home)), inside, "{home}");
        }
        user.groups.insert("uploaders".into());
        assert!(granted_by_group(&user, &["uploaders".into()]));
        assert!(!granted_by_group(&user, &["staff".into()]));
    }
}
