//! Reading an import file and planning it: encoding and separator detection,
//! the header, every row checked against the store and the rest of the file,
//! and the plan (rows to add, per-field changes, rows to delete) or every
//! error by line and column. Nothing here writes; `apply.rs` does.

use super::UserExchange;
use super::columns::{self, Column, RowInput, differences, read_cell};
use crate::domain::names::{Email, fold};
use crate::domain::roles;
use crate::domain::user::{User, UserId};
use crate::service::{Principal, ServiceResult};
use crate::store::ReadView;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What an import does with its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    Add,
    Update,
    Delete,
}

/// One problem, where it is: the header is line 1.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
    /// The row was changed since it was exported (`user._version`).
    #[serde(skip)]
    pub conflict: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedAdd {
    pub line: u64,
    pub login: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedUpdate {
    pub line: u64,
    pub id: UserId,
    pub changes: BTreeMap<&'static str, Change>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlannedDelete {
    pub line: u64,
    pub id: UserId,
    pub login: Option<String>,
}

/// The outcome of an import: the plan, and whether it was applied.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub mode: ImportMode,
    pub dry_run: bool,
    pub applied: bool,
    pub add: Vec<PlannedAdd>,
    pub update: Vec<PlannedUpdate>,
    pub delete: Vec<PlannedDelete>,
    pub errors: Vec<RowError>,
}

/// A row ready to apply.
pub(super) enum Planned {
    Add {
        line: u64,
        user: Box<User>,
        password: Option<String>,
    },
    Update {
        line: u64,
        before: Box<User>,
        after: Box<User>,
        password: Option<String>,
    },
    Delete {
        line: u64,
        id: UserId,
    },
}

pub(super) fn error(line: u64, column: Option<Column>, message: impl Into<String>) -> RowError {
    RowError {
        line,
        column: column.map(|c| c.name().to_owned()),
        message: message.into(),
        conflict: false,
    }
}

/// Errors reported at most; a file with more is hopeless anyway.
const MAX_ERRORS: usize = 1000;

/// The text of the file: UTF-8, with or without a byte-order mark.
fn decode(bytes: &[u8]) -> Result<&str, RowError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        error(line, None, "the file is not UTF-8 text")
    })
}

/// `;` when the header has more of them than `,`.
fn separator(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

/// The rows of the file as inputs, with the columns they came from.
struct Parsed {
    columns: Vec<Column>,
    rows: Vec<(u64, RowInput)>,
}

fn parse(bytes: &[u8], mode: ImportMode, errors: &mut Vec<RowError>) -> Option<Parsed> {
    let text = decode(bytes).map_err(|e| errors.push(e)).ok()?;
    // Old Mac files end lines with a bare CR.
    let normalised;
    let text = if text.contains('\r') && !text.contains('\n') {
        normalised = text.replace('\r', "\n");
        normalised.as_str()
    } else {
        text
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator(text))
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| errors.push(error(1, None, format!("unreadable header: {e}"))))
        .ok()?
        .clone();
    let mut columns = Vec::new();
    for name in header.iter() {
        match Column::parse(name) {
            Some(column) if columns.contains(&column) => {
                errors.push(error(1, Some(column), "the column appears twice"));
            }
            Some(column) => columns.push(column),
            None => errors.push(RowError {
                column: Some(name.to_owned()),
                ..error(1, None, "unknown column")
            }),
        }
    }
    let (needed, names): (&[Column], &str) = match mode {
        ImportMode::Add => (&[Column::Login, Column::Email], "user.login or user.email"),
        _ => (&[Column::Id, Column::Login], "ID or user.login"),
    };
    if !needed.iter().any(|c| columns.contains(c)) {
        errors.push(error(1, None, format!("a {names} column is required")));
    }
    if !errors.is_empty() {
        return None;
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        if errors.len() >= MAX_ERRORS {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(error(line, None, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut row = RowInput::default();
        for (column, raw) in columns.iter().zip(record.iter()) {
            let raw = match column {
                Column::Password => raw,
                _ => columns::unescape(raw),
            };
            if let Err(message) = read_cell(&mut row, *column, raw) {
                errors.push(error(line, Some(*column), message));
            }
        }
        rows.push((line, row));
    }
    Some(Parsed { columns, rows })
}
/// Where in the file a login or email was first seen.
#[derive(Default)]
struct SeenInFile {
    names: HashMap<String, u64>,
}

impl SeenInFile {
    /// Records `key`; the line that already had it, if any.
    fn first(&mut self, key: String, line: u64) -> Option<u64> {
        match self.names.get(&key) {
            Some(first) => Some(*first),
            None => {
                self.names.insert(key, line);
                None
            }
        }
    }
}

impl UserExchange {
    /// Reads and checks `bytes` as an import in `mode` by `principal`, and
    /// applies it (all or nothing) unless `dry_run` or an error was found.
    pub async fn import(
        &self,
        principal: &Principal,
        bytes: &[u8],
        mode: ImportMode,
        dry_run: bool,
    ) -> ServiceResult<ImportReport> {
        let actor = principal.unrestricted()?;
        roles::require(actor, roles::Capability::ManageUsers)?;
        let mut report = ImportReport {
            mode,
            dry_run,
            applied: false,
            add: Vec::new(),
            update: Vec::new(),
            delete: Vec::new(),
            errors: Vec::new(),
        };
        // One import at a time: each may hold a large file and a long plan.
        let Ok(_running) = self.running.try_lock() else {
            return Err(crate::service::ServiceError::conflict(
                "import_running",
                "another import is running; try again when it is done",
            ));
        };
        // Reading and checking a large file is CPU work: off the async workers.
        let planned = crate::service::core::offload(|| {
            let parsed = parse(bytes, mode, &mut report.errors)?;
            Some(self.plan(actor, parsed, mode, &mut report))
        });
        report
            .errors
            .sort_by(|a, b| (a.line, &a.column).cmp(&(b.line, &b.column)));
        report.errors.truncate(MAX_ERRORS);
        let Some(planned) = planned.filter(|_| report.errors.is_empty() && !dry_run) else {
            return Ok(report);
        };
        self.apply(actor, planned).await?;
        report.applied = true;
        Ok(report)
    }

    fn plan(
        &self,
        actor: &User,
        parsed: Parsed,
        mode: ImportMode,
        report: &mut ImportReport,
    ) -> Vec<Planned> {
        let snapshot = self.snapshot();
        let view: &dyn ReadView = &*snapshot;
        let mut logins = SeenInFile::default();
        let mut emails = SeenInFile::default();
        let mut targets = SeenInFile::default();
        let mut planned = Vec::new();
        for (line, row) in parsed.rows {
            if report.errors.len() >= MAX_ERRORS {
                break;
            }
            let outcome = match mode {
                ImportMode::Add => self.plan_add(actor, view, line, row),
                ImportMode::Update => self.plan_update(actor, view, line, row, &parsed.columns),
                ImportMode::Delete => self.plan_delete(actor, view, line, &row, &parsed.columns),
            };
            let step = match outcome {
                Ok(step) => step,
                Err(errors) => {
                    report.errors.extend(errors);
                    continue;
                }
            };
            let (user, id) = match &step {
                Planned::Add { user, .. } => (Some(&**user), None),
                Planned::Update { after, .. } => (Some(&**after), Some(after.id)),
                Planned::Delete { id, .. } => (None, Some(*id)),
            };
            if let Some(first) = id.and_then(|id| targets.first(id.to_string(), line)) {
                report.errors.push(error(
                    line,
                    Some(Column::Id),
                    format!("the same user as line {first}"),
                ));
                continue;
            }
            if let Some(user) = user {
                let clash = [
                    (
                        Column::Login,
                        user.login.as_ref().map(|l| fold(l.as_str())),
                        &mut logins,
                    ),
                    (
                        Column::Email,
                        user.email.as_ref().map(Email::key),
                        &mut emails,
                    ),
                ];
                for (column, key, seen) in clash {
                    if let Some(first) = key.and_then(|key| seen.first(key, line)) {
                        report.errors.push(error(
                            line,
                            Some(column),
                            format!("also on line {first}"),
                        ));
                    }
                }
            }
            match &step {
                Planned::Add { line, user, .. } => report.add.push(PlannedAdd {
                    line: *line,
                    login: user.login.as_ref().map(|l| l.to_string()),
                    email: user.email.as_ref().map(|e| e.to_string()),
                }),
                Planned::Update {
                    line,
                    before,
                    after,
                    password,
                } => {
                    let mut changes: BTreeMap<&'static str, Change> = differences(before, after)
                        .into_iter()
                        .map(|(name, from, to)| (name, Change { from, to }))
                        .collect();
                    if password.is_some() {
                        let hidden = "(not shown)".to_owned();
                        changes.insert(
                            "_password",
                            Change {
                                from: hidden.clone(),
                                to: hidden,
                            },
                        );
                    }
                    let unchanged = changes.is_empty();
                    report.update.push(PlannedUpdate {
                        line: *line,
                        id: after.id,
                        changes,
                    });
                    if unchanged {
                        // Nothing to write: the row keeps its version.
                        continue;
                    }
                }
                Planned::Delete { line, id } => report.delete.push(PlannedDelete {
                    line: *line,
                    id: *id,
                    login: view
                        .user(*id)
                        .ok()
                        .flatten()
                        .and_then(|u| u.login.map(|l| l.to_string())),
                }),
            }
            planned.push(step);
        }
        planned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_separator() {
        assert_eq!(decode(b"\xEF\xBB\xBFID;x").ok(), Some("ID;x"));
        assert_eq!(decode(b"ID\nok\n\xff").err().map(|e| e.line), Some(3));
        assert_eq!(separator("ID;user.login;user.email"), b';');
        assert_eq!(separator("ID,user.login"), b',');
    }
}
