//! Group routes, the audit trail, and directory sync.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::views::{AuditEntryView, GroupView};
use crate::service::sync::SyncMode;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_AUDIT_PAGE: usize = 100;
const MAX_AUDIT_PAGE: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", delete(remove))
        .route("/audit", get(audit))
        .route("/ldap/sync", axum::routing::post(ldap_sync))
        .route("/ldap/status", get(ldap_status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    description: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let group =
        state
            .directory
            .groups
            .create_group(&principal, request.name, request.description)?;
    Ok((
        StatusCode::CREATED,
        Json(json!(GroupView::new(&group, None))),
    ))
}

async fn list(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "groups": state.directory.groups.list_groups(&principal)?.iter().map(|g| GroupView::new(&g.group, Some(g.members))).collect::<Vec<_>>() }),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.groups.delete_group(&principal, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_AUDIT_PAGE}"),
        ));
    }
    let entries = state
        .directory
        .audit
        .audit_trail(&principal, query.before, limit)?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(
        json!({ "entries": entries.iter().map(AuditEntryView::from).collect::<Vec<_>>(), "next_before": next_before }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    mode: Option<SyncMode>,
}

/// Runs a directory sync now (`?mode=full|incremental`, default full) and returns its report.
async fn ldap_sync(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("mode", rejection.body_text()))?;
    let report = state
        .directory
        .sync
        .sync_directory_as(&principal, query.mode.unwrap_or(SyncMode::Full))
        .await?;
    Ok(Json(json!(report)))
}

async fn ldap_status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(state.directory.sync.sync_status(&principal)?)))
}
