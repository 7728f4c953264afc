//! Users in and out as CSV, in the source systems' column layout: an export
//! written page by page (constant memory for any count, no secret ever in
//! it), and an import that adds, updates or deletes users all or nothing, with
//! a dry run that returns the plan and every error by line and column.

mod apply;
pub mod columns;
mod import;
mod plan;

pub use import::{ImportMode, ImportReport, RowError};

use super::accounts::Accounts;
use super::core::area_service;
use super::index::UserQuery;
use super::{Principal, ServiceResult};
use crate::domain::user::UserId;
use columns::{cell, escape, exported};

area_service!(
    /// CSV export and import of users.
    UserExchange {
        accounts: super::accounts::Accounts,
        /// Held by the import running, if any.
        running: tokio::sync::Mutex<()>,
    }
);

/// Users per export page.
pub const EXPORT_PAGE: usize = 1000;

/// One page of an export: CSV bytes and where the next page starts.
pub struct ExportPage {
    pub csv: Vec<u8>,
    /// Users in it.
    pub rows: usize,
    pub next: Option<UserId>,
}

impl UserExchange {
    pub(crate) fn with_accounts(core: std::sync::Arc<super::core::Core>) -> Self {
        Self::new(
            core.clone(),
            Accounts::new(core),
            tokio::sync::Mutex::new(()),
        )
    }

    /// The header line of an export.
    pub fn header() -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(exported().map(|(_, name)| name));
        writer.into_inner().unwrap_or_default()
    }

    /// The users matching `query` from its cursor on, at most [`EXPORT_PAGE`],
    /// as CSV rows (no header). Passwords, hashes and tokens are not user
    /// fields, so they cannot end up here.
    pub fn export_page(
        &self,
        principal: &Principal,
        query: &UserQuery,
    ) -> ServiceResult<ExportPage> {
        let mut query = query.clone();
        query.limit = EXPORT_PAGE;
        let page = self.accounts.list_users(principal, &query)?;
        let mut writer = csv::Writer::from_writer(Vec::with_capacity(page.users.len() * 256));
        for user in &page.users {
            let cells: Vec<String> = exported()
                .map(|(column, _)| escape(&cell(user, column)).into_owned())
                .collect();
            writer
                .write_record(&cells)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .map_err(super::ServiceError::io("write the CSV export", "memory"))?;
        }
        let rows = page.users.len();
        let csv = writer.into_inner().unwrap_or_default();
        Ok(ExportPage {
            csv,
            rows,
            next: page.next_cursor,
        })
    }
}
