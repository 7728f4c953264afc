//! The user listing's query parameters (`GET /users`, `GET /users.csv`):
//! filters, search, field selection and paging, each bad value a 400 naming it.

use super::error::{ApiError, ApiResult};
use super::users::user_json;
use crate::domain::user::{Status, User, UserType};
use crate::service::index::{ArchivedFilter, DEFAULT_SEARCH_FIELDS, SEARCH_FIELDS, UserQuery};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Types listed without a `type` filter: anonymous and collection users are
/// shown only when asked for by type.
pub(crate) const LISTED_BY_DEFAULT: [UserType; 6] = [
    UserType::System,
    UserType::Local,
    UserType::SelfRegistered,
    UserType::Email,
    UserType::Ldap,
    UserType::Sso,
];

/// Field names a `fields` selection may use.
static USER_FIELDS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let sample = User::new(
        0,
        UserType::Local,
        Status::Active,
        chrono::DateTime::UNIX_EPOCH,
    );
    match user_json(&sample) {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
});

/// Splits a comma list, parsing each item with `parse`; errors name `field`.
fn comma_list<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>) -> ApiResult<Vec<T>> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            parse(item).ok_or_else(|| ApiError::invalid(field, format!("unknown value `{item}`")))
        })
        .collect()
}

/// The enum value whose serde name is `item` (`pending`, `self_registered`).
pub(crate) fn parse_enum<T: serde::de::DeserializeOwned>(item: &str) -> Option<T> {
    serde_json::from_value(Value::String(item.to_owned())).ok()
}

/// The serde name of an enum value: the inverse of [`parse_enum`].
pub(crate) fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn parse_time(field: &str, raw: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 timestamp"))
}

/// Reads the listing parameters; an unknown parameter or bad value is a 400 naming it.
pub(super) fn parse_query(
    params: &HashMap<String, String>,
) -> ApiResult<(UserQuery, Option<Vec<String>>)> {
    let mut query = UserQuery {
        limit: DEFAULT_PAGE,
        search_fields: DEFAULT_SEARCH_FIELDS.to_vec(),
        ..Default::default()
    };
    let mut fields = None;
    for (key, raw) in params {
        match key.as_str() {
            "type" => query.types = comma_list(key, raw, parse_enum)?,
            "status" => query.statuses = comma_list(key, raw, parse_enum)?,
            "group" => query.group = Some(raw.clone()),
            "exclude_group" => query.exclude_group = Some(raw.clone()),
            "organization" => {
                query.organization = Some(
                    raw.parse()
                        .map_err(|_| ApiError::invalid(key, "must be an organization id"))?,
                )
            }
            "archived" => {
                query.archived = match raw.as_str() {
                    "exclude" => ArchivedFilter::Exclude,
                    "only" => ArchivedFilter::Only,
                    "include" => ArchivedFilter::Include,
                    _ => return Err(ApiError::invalid(key, "must be exclude, only or include")),
                }
            }
            "archived_after" => query.archived_after = Some(parse_time(key, raw)?),
            "archived_before" => query.archived_before = Some(parse_time(key, raw)?),
            "q" => query.text = Some(crate::domain::names::fold(raw)).filter(|q| !q.is_empty()),
            "search_fields" => {
                query.search_fields = comma_list(key, raw, |name| {
                    SEARCH_FIELDS.iter().position(|(n, _)| *n == name)
                })?
            }
            "fields" => {
                let names = comma_list(key, raw, |name| {
                    USER_FIELDS.contains(name).then(|| name.to_owned())
                })?;
                fields = Some(names);
            }
            "limit" => {
                query.limit = raw
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::invalid(key, format!("must be 1 to {MAX_PAGE}")))?
            }
            "cursor" => {
                query.after = Some(
                    raw.parse()
                        .map_err(|_| ApiError::invalid(key, "must be a cursor from next_cursor"))?,
                )
            }
            _ => return Err(ApiError::invalid(key.clone(), "unknown query parameter")),
        }
    }
    if !params.contains_key("type") {
        query.types = LISTED_BY_DEFAULT.to_vec();
    }
    Ok((query, fields))
}

/// Keeps `id` and the selected fields of a user's JSON.
pub(super) fn select_fields(mut value: Value, fields: &[String]) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|key, _| key == "id" || fields.iter().any(|f| f == key));
    }
    value
}
