//! The CSV columns of a user, named as the source systems name them, and how a
//! user becomes a row of cells and a cell becomes a change. Cells that a
//! spreadsheet would run as a formula are escaped on the way out and
//! unescaped on the way in, so a file round-trips unchanged.

use crate::domain::clock::Timestamp;
use crate::domain::user::{Address, User};
use crate::domain::user_input::UserPatch;
use chrono::SecondsFormat;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// One column of the exchange format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Id,
    Version,
    Login,
    Type,
    FrontendLanguage,
    DatabaseLanguages,
    SearchLanguages,
    FrontendPrefs,
    CustomData,
    FirstName,
    LastName,
    DisplayName,
    Company,
    Department,
    Phone,
    Remarks,
    AddressSupplement,
    Street,
    HouseNumber,
    PostalCode,
    Town,
    State,
    Country,
    LoginDisabled,
    LoginValidFrom,
    LoginValidTo,
    RequirePasswordChange,
    MailSchedule,
    Email,
    ConfirmEmail,
    ConfirmEmailSentAt,
    WelcomeEmail,
    GeneratedDisplayName,
    Picture,
    GroupsFind,
    GroupsEasydb,
    /// Import only: a new password in clear text, hashed on import.
    Password,
}

use Column as C;

/// Every column with its name, in export order (`_password` is import only).
pub const COLUMNS: [(Column, &str); 37] = [
    (C::Id, "ID"),
    (C::Version, "user._version"),
    (C::Login, "user.login"),
    (C::Type, "user.type"),
    (C::FrontendLanguage, "user.frontend_language"),
    (C::DatabaseLanguages, "user.database_languages"),
    (C::SearchLanguages, "user.search_languages"),
    (C::FrontendPrefs, "user.frontend_prefs"),
    (C::CustomData, "user.custom_data"),
    (C::FirstName, "user.first_name"),
    (C::LastName, "user.last_name"),
    (C::DisplayName, "user.displayname"),
    (C::Company, "user.company"),
    (C::Department, "user.department"),
    (C::Phone, "user.phone"),
    (C::Remarks, "user.remarks"),
    (C::AddressSupplement, "user.address_supplement"),
    (C::Street, "user.street"),
    (C::HouseNumber, "user.house_number"),
    (C::PostalCode, "user.postal_code"),
    (C::Town, "user.town"),
    (C::State, "user.state"),
    (C::Country, "user.country"),
    (C::LoginDisabled, "user.login_disabled"),
    (C::LoginValidFrom, "user.login_valid_from"),
    (C::LoginValidTo, "user.login_valid_to"),
    (C::RequirePasswordChange, "user.require_password_change"),
    (C::MailSchedule, "user.mail_schedule"),
    (C::Email, "user.email"),
    (C::ConfirmEmail, "user.confirm_email"),
    (C::ConfirmEmailSentAt, "user.confirm_email_sent_at"),
    (C::WelcomeEmail, "user.welcome_email"),
    (C::GeneratedDisplayName, "user._generated_displayname"),
    (C::Picture, "user.picture"),
    (C::GroupsFind, "_groups#find"),
    (C::GroupsEasydb, "_groups#easydb"),
    (C::Password, "_password"),
];

/// The columns an export writes.
pub fn exported() -> impl Iterator<Item = (Column, &'static str)> {
    COLUMNS.into_iter().filter(|(c, _)| *c != C::Password)
}

/// The exported columns (the version aside) whose cells differ between
/// `before` and `after`: name, old cell, new cell.
pub fn differences(before: &User, after: &User) -> Vec<(&'static str, String, String)> {
    exported()
        .filter(|(column, _)| *column != C::Version)
        .filter_map(|(column, name)| {
            let (from, to) = (cell(before, column), cell(after, column));
            (from != to).then_some((name, from, to))
        })
        .collect()
}

impl Column {
    pub fn name(self) -> &'static str {
        COLUMNS
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("", |(_, name)| name)
    }

    pub fn parse(name: &str) -> Option<Self> {
        COLUMNS
            .iter()
            .find(|(_, n)| *n == name.trim())
            .map(|(c, _)| *c)
    }

    /// Columns a file may carry but an import never applies (derived values).
    pub fn is_read_only(self) -> bool {
        matches!(self, C::GeneratedDisplayName | C::GroupsEasydb)
    }
}

fn time(value: Option<Timestamp>) -> String {
    value.map_or_else(String::new, |t| {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    })
}

fn json(value: &Option<Value>) -> String {
    value.as_ref().map_or_else(String::new, Value::to_string)
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// The cell of `column` for `user`, unescaped.
pub fn cell(user: &User, column: Column) -> String {
    let a = &user.address;
    match column {
        C::Id => user.id.to_string(),
        C::Version => user.version.to_string(),
        C::Login => user
            .login
            .as_ref()
            .map(|l| l.to_string())
            .unwrap_or_default(),
        C::Type => serde_json::to_value(user.user_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        C::FrontendLanguage => text(&user.frontend_language),
        C::DatabaseLanguages => user.database_languages.join(","),
        C::SearchLanguages => user.search_languages.join(","),
        C::FrontendPrefs => json(&user.frontend_prefs),
        C::CustomData => json(&user.custom_data),
        C::FirstName => text(&user.first_name),
        C::LastName => text(&user.last_name),
        C::DisplayName => text(&user.display_name),
        C::Company => text(&user.company),
        C::Department => text(&user.department),
        C::Phone => text(&user.phone),
        C::Remarks => text(&user.remarks),
        C::AddressSupplement => text(&a.supplement),
        C::Street => text(&a.street),
        C::HouseNumber => text(&a.house_number),
        C::PostalCode => text(&a.postal_code),
        C::Town => text(&a.town),
        C::State => text(&a.state),
        C::Country => text(&a.country),
        C::LoginDisabled => (user.status == crate::domain::user::Status::Deactivated).to_string(),
        C::LoginValidFrom => time(user.login_valid_from),
        C::LoginValidTo => time(user.login_valid_to),
        C::RequirePasswordChange => user.require_password_change.to_string(),
        C::MailSchedule => json(&user.mail_schedule),
        C::Email => user
            .email
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default(),
        C::ConfirmEmail => user.confirm_email.to_string(),
        C::ConfirmEmailSentAt => time(user.confirm_email_sent_at),
        C::WelcomeEmail => user.welcome_email.to_string(),
        C::GeneratedDisplayName => user.effective_display_name(),
        C::Picture => json(&user.picture),
        C::GroupsFind => join(&user.groups),
        C::GroupsEasydb => join(&user.groups.union(&user.automatic_groups).cloned().collect()),
        C::Password => String::new(),
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Escapes a cell a spreadsheet would run as a formula (and one starting with
/// the escape mark itself) by a leading `'`.
pub fn escape(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Undoes [`escape`].
pub fn unescape(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// What one row asks for, beyond the profile patch.
#[derive(Debug, Default)]
pub struct RowInput {
    pub id: Option<u64>,
    pub version: Option<u64>,
    pub patch: UserPatch,
    /// Address parts given (others stay as they are).
    pub address: Vec<(Column, Option<String>)>,
    pub login_disabled: Option<bool>,
    pub groups: Option<BTreeSet<String>>,
    pub password: Option<String>,
}

fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        _ => Err("must be true, false or empty".into()),
    }
}

fn timestamp(raw: &str) -> Result<Option<Timestamp>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| "must be a date (2026-01-31) or an RFC 3339 time".into())
}

/// Longest JSON cell read (as the API's JSON settings: 64 KiB).
const MAX_JSON_CELL: usize = 64 * 1024;

fn json_cell(raw: &str) -> Result<Option<Option<Value>>, String> {
    if raw.trim().is_empty() {
        return Ok(Some(None));
    }
    if raw.len() > MAX_JSON_CELL {
        return Err("must be at most 64 KiB".into());
    }
    serde_json::from_str(raw)
        .map(|v| Some(Some(v)))
        .map_err(|e| format!("is not valid JSON: {e}"))
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn optional_text(raw: &str) -> Option<Option<String>> {
    Some((!raw.trim().is_empty()).then(|| raw.to_owned()))
}

/// Reads one (unescaped) cell into `row`; the error says what is wrong with it.
pub fn read_cell(row: &mut RowInput, column: Column, raw: &str) -> Result<(), String> {
    let p = &mut row.patch;
    let number = |raw: &str| -> Result<Option<u64>, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse()
            .map(Some)
            .map_err(|_| "must be a whole number".into())
    };
    match column {
        C::Id => row.id = number(raw)?,
        C::Version => row.version = number(raw)?,
        C::Login => p.login = (!raw.trim().is_empty()).then(|| raw.trim().to_owned()),
        C::Type => {
            p.user_type = match raw.trim() {
                "" => None,
                name => Some(
                    serde_json::from_value(Value::String(name.to_owned()))
                        .map_err(|_| format!("`{name}` is not a user type"))?,
                ),
            }
        }
        C::FrontendLanguage => p.frontend_language = optional_text(raw),
        C::DatabaseLanguages => p.database_languages = Some(list(raw)),
        C::SearchLanguages => p.search_languages = Some(list(raw)),
        C::FrontendPrefs => p.frontend_prefs = json_cell(raw)?,
        C::CustomData => p.custom_data = json_cell(raw)?,
        C::FirstName => p.first_name = optional_text(raw),
        C::LastName => p.last_name = optional_text(raw),
        C::DisplayName => p.display_name = optional_text(raw),
        C::Company => p.company = optional_text(raw),
        C::Department => p.department = optional_text(raw),
        C::Phone => p.phone = optional_text(raw),
        C::Remarks => p.remarks = optional_text(raw),
        C::AddressSupplement
        | C::Street
        | C::HouseNumber
        | C::PostalCode
        | C::Town
        | C::State
        | C::Country => row.address.push((column, optional_text(raw).flatten())),
        C::LoginDisabled => row.login_disabled = Some(flag(raw)?),
        C::LoginValidFrom => p.login_valid_from = Some(timestamp(raw)?),
        C::LoginValidTo => p.login_valid_to = Some(timestamp(raw)?),
        C::RequirePasswordChange => p.require_password_change = Some(flag(raw)?),
        C::MailSchedule => p.mail_schedule = json_cell(raw)?,
        C::Email => p.email = optional_text(raw),
        C::ConfirmEmail => p.confirm_email = Some(flag(raw)?),
        C::ConfirmEmailSentAt => p.confirm_email_sent_at = Some(timestamp(raw)?),
        C::WelcomeEmail => p.welcome_email = Some(flag(raw)?),
        C::Picture => p.picture = json_cell(raw)?,
        C::GroupsFind => row.groups = Some(list(raw).into_iter().collect()),
        C::Password => row.password = (!raw.is_empty()).then(|| raw.to_owned()),
        C::GeneratedDisplayName | C::GroupsEasydb => {}
    }
    Ok(())
}

/// The address `row` asks for, starting from `current`.
pub fn address(row: &RowInput, current: &Address) -> Option<Address> {
    if row.address.is_empty() {
        return None;
    }
    let mut address = current.clone();
    for (column, value) in &row.address {
        let slot = match column {
            C::AddressSupplement => &mut address.supplement,
            C::Street => &mut address.street,
            C::HouseNumber => &mut address.house_number,
            C::PostalCode => &mut address.postal_code,
            C::Town => &mut address.town,
            C::State => &mut address.state,
            _ => &mut address.country,
        };
        *slot = value
            .as_ref()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
    }
    Some(address)
}

/// The column a validation error of the user record belongs to.
pub fn column_of_field(field: &str) -> Option<Column> {
    let name = match field {
        "type" => "user.type",
        "display_name" => "user.displayname",
        "address" => "user.street",
        other => return Column::parse(&format!("user.{other}")),
    };
    Column::parse(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_defuses_formulas() {
        for raw in [
            "=SUM(A1)", "+49 30 1", "-1", "@x", "\tx", "'quoted", "plain", "", "''",
        ] {
            let escaped = escape(raw);
            assert_eq!(unescape(&escaped), raw);
            assert!(!escaped.starts_with(['=', '+', '-', '@', '\t']), "{raw}");
        }
    }

    #[test]
    fn every_column_has_a_unique_name() {
        let names: BTreeSet<&str> = COLUMNS.iter().map(|(_, n)| *n).collect();
        assert_eq!(names.len(), COLUMNS.len());
        for (column, name) in COLUMNS {
            assert_eq!(Column::parse(name), Some(column));
            assert_eq!(column.name(), name);
        }
        assert_eq!(column_of_field("first_name"), Some(C::FirstName));
        assert_eq!(column_of_field("display_name"), Some(C::DisplayName));
    }

    #[test]
    fn cells_read_back() {
        let mut row = RowInput::default();
        assert!(read_cell(&mut row, C::LoginDisabled, "maybe").is_err());
        assert!(read_cell(&mut row, C::CustomData, "{not json").is_err());
        assert!(read_cell(&mut row, C::LoginValidFrom, "31.01.2026").is_err());
        assert!(read_cell(&mut row, C::Id, "x1").is_err());
        assert!(read_cell(&mut row, C::LoginValidFrom, "2026-01-31").is_ok());
        assert!(read_cell(&mut row, C::GroupsFind, "a, b,,c").is_ok());
        assert_eq!(row.groups.map(|g| g.len()), Some(3));
    }
}
