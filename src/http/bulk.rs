//! Bulk actions on users (`POST /users/actions/{action}`): activate,
//! deactivate, delete, mask, roles, groups and FTP accounts, one result per id.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::user_query::parse_enum;
use super::users::user_json;
use super::views::UserView;
use crate::domain::roles::SystemRole;
use crate::domain::user::UserId;
use crate::service::BulkAction;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const MAX_BULK_IDS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(bulk))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    ids: Vec<UserId>,
    roles: Option<BTreeSet<SystemRole>>,
    groups: Option<BTreeSet<String>>,
    quota_mb: Option<u64>,
    quota_files: Option<u64>,
    #[serde(default)]
    activate: bool,
    projects: Option<Vec<ProjectRoleEntry>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProjectRoleEntry {
    id: u64,
    role: crate::domain::projects::ProjectRole,
}

/// The bulk actions, as the path names them.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum BulkActionName {
    Activate,
    Deactivate,
    Delete,
    Mask,
    /// Needs `roles`.
    SetSystemRoles,
    /// Needs `groups`.
    AddToGroups,
    /// Needs `groups`.
    RemoveFromGroups,
    /// Takes `quota_mb`, `quota_files`, `activate`.
    CreateFtpAccounts,
    DeleteFtpAccounts,
    FtpRescan,
    /// Needs `projects`; takes `activate`.
    SetRoles,
}

/// Builds the action named in the path from the request's parameters.
fn bulk_action(name: BulkActionName, request: &BulkRequest) -> ApiResult<BulkAction> {
    let groups = || {
        request
            .groups
            .clone()
            .ok_or_else(|| ApiError::invalid("groups", "required for this action"))
    };
    Ok(match name {
        BulkActionName::Activate => BulkAction::Activate,
        BulkActionName::Deactivate => BulkAction::Deactivate,
        BulkActionName::Delete => BulkAction::Delete,
        BulkActionName::Mask => BulkAction::Mask,
        BulkActionName::SetSystemRoles => BulkAction::SetSystemRoles(
            request
                .roles
                .clone()
                .ok_or_else(|| ApiError::invalid("roles", "required for this action"))?,
        ),
        BulkActionName::AddToGroups => BulkAction::AddToGroups(groups()?),
        BulkActionName::RemoveFromGroups => BulkAction::RemoveFromGroups(groups()?),
        BulkActionName::CreateFtpAccounts => BulkAction::CreateFtpAccounts {
            quota_mb: request.quota_mb,
            quota_files: request.quota_files,
            activate: request.activate,
        },
        BulkActionName::DeleteFtpAccounts => BulkAction::DeleteFtpAccounts,
        BulkActionName::FtpRescan => BulkAction::RescanFtp,
        BulkActionName::SetRoles => BulkAction::SetRoles {
            projects: request
                .projects
                .as_ref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::invalid("projects", "name at least one project and role"))?
                .iter()
                .map(|entry| (entry.id, entry.role))
                .collect(),
            activate: request.activate,
        },
    })
}

/// What a bulk action did to each selected user.
#[derive(serde::Serialize, ToSchema)]
pub(super) struct BulkAnswer {
    pub action: String,
    pub succeeded: usize,
    pub failed: usize,
    pub results: Vec<BulkResult>,
}

/// One item's result: the item as changed (none when deleted), or the error.
#[derive(serde::Serialize, ToSchema)]
pub(super) struct BulkResult {
    pub id: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<UserView>)]
    pub user: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<super::error::ErrorDetail>,
}

/// Runs one action on up to 10,000 users, with a result per id.
#[utoipa::path(post, path = "/users/actions/{action}", tag = "users",
    params(("action" = inline(BulkActionName), Path, description = "The action")),
    request_body = BulkRequest,
    responses((status = 200, description = "Per-id results", body = BulkAnswer)))]
async fn bulk(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<BulkRequest>,
) -> ApiResult<Json<BulkAnswer>> {
    let known = parse_enum::<BulkActionName>(&name).ok_or_else(|| ApiError::not_found("action"))?;
    let action = bulk_action(known, &request)?;
    if request.ids.is_empty() || request.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!("select 1 to {MAX_BULK_IDS} users"),
        ));
    }
    let outcomes = state.directory.bulk(&principal, &action, &request.ids)?;
    let results: Vec<BulkResult> = outcomes
        .into_iter()
        .map(|outcome| match outcome.result {
            Ok(user) => BulkResult {
                id: outcome.id,
                ok: true,
                user: Some(user.map_or(Value::Null, |u| user_json(&u))),
                error: None,
            },
            Err(error) => BulkResult {
                id: outcome.id,
                ok: false,
                user: None,
                error: Some(ApiError::from(error).body()),
            },
        })
        .collect();
    let succeeded = results.iter().filter(|r| r.ok).count();
    Ok(Json(BulkAnswer {
        action: name,
        succeeded,
        failed: results.len() - succeeded,
        results,
    }))
}
