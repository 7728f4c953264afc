//! Group routes, the audit trail, and directory sync.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::views::{AuditEntryView, GroupView};
use crate::service::sync::SyncMode;
use crate::service::sync::{SyncReport, SyncStatus};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_AUDIT_PAGE: usize = 100;
const MAX_AUDIT_PAGE: usize = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(delete_group))
        .routes(routes!(audit))
        .routes(routes!(ldap_sync))
        .routes(routes!(ldap_status))
}

/// Every group with its member count.
#[derive(Serialize, ToSchema)]
struct GroupList {
    groups: Vec<GroupView>,
}

/// One page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
    description: Option<String>,
}

/// Creates a manual group.
#[utoipa::path(post, path = "/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201, description = "Created", body = GroupView)))]
async fn create_group(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<NewGroup>,
) -> ApiResult<(StatusCode, Json<GroupView>)> {
    let group =
        state
            .directory
            .groups
            .create_group(&principal, request.name, request.description)?;
    Ok((StatusCode::CREATED, Json(GroupView::new(&group, None))))
}

/// Every group, manual and automatic, with member counts.
#[utoipa::path(get, path = "/groups", tag = "groups",
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The groups", body = GroupList)))]
async fn list_groups(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<GroupList>> {
    let groups = state.directory.groups.list_groups(&principal)?;
    Ok(Json(GroupList {
        groups: groups
            .iter()
            .map(|g| GroupView::new(&g.group, Some(g.members)))
            .collect(),
    }))
}

/// Deletes a manual group; its members lose it.
#[utoipa::path(delete, path = "/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "The group")),
    responses((status = 204, description = "Deleted")))]
async fn delete_group(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.directory.groups.delete_group(&principal, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries older than this id.
    before: Option<u64>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/audit", tag = "groups", params(AuditQuery),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "One page", body = AuditPage)))]
async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
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
    Ok(Json(AuditPage {
        entries: entries.iter().map(AuditEntryView::from).collect(),
        next_before,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    /// `full` (default) or `incremental`.
    mode: Option<SyncMode>,
}

/// Runs a directory sync now (`?mode=full|incremental`, default full) and returns its report.
#[utoipa::path(post, path = "/ldap/sync", tag = "groups", params(SyncQuery),
    responses((status = 200, description = "The run's report", body = SyncReport)))]
async fn ldap_sync(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SyncReport>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("mode", rejection.body_text()))?;
    let report = state
        .directory
        .sync
        .sync_directory_as(&principal, query.mode.unwrap_or(SyncMode::Full))
        .await?;
    Ok(Json(report))
}

/// Whether a directory is configured, whether a sync runs, and the last run.
#[utoipa::path(get, path = "/ldap/status", tag = "groups",
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "Sync status", body = SyncStatus)))]
async fn ldap_status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<SyncStatus>> {
    Ok(Json(state.directory.sync.sync_status(&principal)?))
}
