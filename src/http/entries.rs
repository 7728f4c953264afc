//! Entry routes: the entries (checks, counts, observations) of a record.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::organizations::number;
use crate::domain::entries::{Entry, EntryInput};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries, add_entry))
        .routes(routes!(read_entry, edit_entry, delete_entry))
}

/// An entry as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub id: u64,
    pub resource: u64,
    pub kind: String,
    pub time: DateTime<Utc>,
    pub attributes: serde_json::Value,
    pub author: u64,
    pub updated_by: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Entry> for EntryView {
    fn from(entry: &Entry) -> Self {
        Self {
            id: entry.id,
            resource: entry.resource,
            kind: entry.kind.clone(),
            time: entry.time,
            attributes: entry.attributes.clone(),
            author: entry.author,
            updated_by: entry.updated_by,
            created_at: entry.created_at,
            updated_at: entry.updated_at,
        }
    }
}

/// A record's entries, by observation time.
#[derive(Serialize, ToSchema)]
struct EntryList {
    entries: Vec<EntryView>,
}

/// The record a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct RecordPath {
    /// The record's id.
    id: String,
}

/// The entry a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct EntryPath {
    /// The record's id.
    id: String,
    /// The entry's id.
    entry: String,
}

impl EntryPath {
    fn ids(&self) -> ApiResult<(u64, u64)> {
        Ok((number("id", &self.id)?, number("entry", &self.entry)?))
    }
}

#[utoipa::path(get, path = "/resources/{id}/entries", tag = "projects", params(RecordPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The entries", body = EntryList)))]
async fn list_entries(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(RecordPath { id }): Path<RecordPath>,
) -> ApiResult<Json<EntryList>> {
    let entries = state
        .directory
        .records
        .list_entries(&principal, number("id", &id)?)?;
    Ok(Json(EntryList {
        entries: entries.iter().map(EntryView::from).collect(),
    }))
}

/// Adds an entry by the caller: `attributes` required, `kind` defaults to
/// `entry`, `time` (RFC 3339) to now.
#[utoipa::path(post, path = "/resources/{id}/entries", tag = "projects", params(RecordPath),
    request_body = EntryInput,
    responses((status = 201, description = "Added", body = EntryView)))]
async fn add_entry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(RecordPath { id }): Path<RecordPath>,
    ApiJson(input): ApiJson<EntryInput>,
) -> ApiResult<(StatusCode, Json<EntryView>)> {
    let entry = state
        .directory
        .records
        .add_entry(&principal, number("id", &id)?, input)?;
    Ok((StatusCode::CREATED, Json(EntryView::from(&entry))))
}

#[utoipa::path(get, path = "/resources/{id}/entries/{entry}", tag = "projects", params(EntryPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The entry", body = EntryView)))]
async fn read_entry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(path): Path<EntryPath>,
) -> ApiResult<Json<EntryView>> {
    let (record, entry) = path.ids()?;
    let entry = state
        .directory
        .records
        .get_entry(&principal, record, entry)?;
    Ok(Json(EntryView::from(&entry)))
}

/// Changes the fields given.
#[utoipa::path(patch, path = "/resources/{id}/entries/{entry}", tag = "projects", params(EntryPath),
    request_body = EntryInput,
    responses((status = 200, description = "Changed", body = EntryView)))]
async fn edit_entry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(path): Path<EntryPath>,
    ApiJson(input): ApiJson<EntryInput>,
) -> ApiResult<Json<EntryView>> {
    let (record, entry) = path.ids()?;
    let entry = state
        .directory
        .records
        .edit_entry(&principal, record, entry, input)?;
    Ok(Json(EntryView::from(&entry)))
}

#[utoipa::path(delete, path = "/resources/{id}/entries/{entry}", tag = "projects", params(EntryPath),
    responses((status = 204, description = "Deleted")))]
async fn delete_entry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(path): Path<EntryPath>,
) -> ApiResult<StatusCode> {
    let (record, entry) = path.ids()?;
    state
        .directory
        .records
        .delete_entry(&principal, record, entry)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads `from`/`to` of a report: a date (the whole day, UTC) or an RFC 3339
/// time. `end` makes a date mean the end of that day.
pub(super) fn report_bound(field: &str, raw: &str, end: bool) -> ApiResult<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    let day = if end {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}
