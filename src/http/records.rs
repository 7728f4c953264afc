//! Record (resource) routes: CRUD, listing by project, and the bulk actions
//! assign, unassign and set-owner.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::organizations::{IdPath, number};
use super::views::ResourceView;
use crate::service::records::ResourceInput;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_resources, create_resource))
        .routes(routes!(read_resource, update_resource, delete_resource))
        .routes(routes!(resource_action))
}

/// A record's view, with the assigned members' names for those who may see them.
fn named_view(
    records: &crate::service::records::Records,
    principal: &crate::service::Principal,
    resource: &crate::domain::projects::Resource,
) -> ApiResult<ResourceView> {
    let names = records.assigned_names(principal, resource)?;
    Ok(ResourceView::with_names(resource, names.as_deref()))
}

/// Records one may see.
#[derive(Serialize, ToSchema)]
struct ResourceList {
    resources: Vec<ResourceView>,
}

#[utoipa::path(post, path = "/resources", tag = "projects", request_body = ResourceInput,
    responses((status = 201, description = "Created", body = ResourceView)))]
async fn create_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<ResourceInput>,
) -> ApiResult<(StatusCode, Json<ResourceView>)> {
    let resource = state.directory.records.create_resource(&principal, input)?;
    Ok((StatusCode::CREATED, Json(ResourceView::from(&resource))))
}

#[utoipa::path(get, path = "/resources", tag = "projects",
    params(("project" = Option<u64>, Query, description = "Only this project's records")),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The records", body = ResourceList)))]
async fn list_resources(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<ResourceList>> {
    if let Some(unknown) = query.keys().find(|k| *k != "project") {
        return Err(ApiError::invalid(
            unknown.clone(),
            "unknown query parameter",
        ));
    }
    let project = query
        .get("project")
        .map(|p| number("project", p))
        .transpose()?;
    let records = &state.directory.records;
    let resources = records
        .list_resources(&principal, project)?
        .iter()
        .map(|resource| named_view(records, &principal, resource))
        .collect::<ApiResult<_>>()?;
    Ok(Json(ResourceList { resources }))
}

#[utoipa::path(get, path = "/resources/{id}", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The record", body = ResourceView)))]
async fn read_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<ResourceView>> {
    let records = &state.directory.records;
    let resource = records.get_resource(&principal, number("id", &id)?)?;
    Ok(Json(named_view(records, &principal, &resource)?))
}

#[utoipa::path(patch, path = "/resources/{id}", tag = "projects", params(IdPath),
    request_body = ResourceInput,
    responses((status = 200, description = "Updated", body = ResourceView)))]
async fn update_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(input): ApiJson<ResourceInput>,
) -> ApiResult<Json<ResourceView>> {
    let resource =
        state
            .directory
            .records
            .update_resource(&principal, number("id", &id)?, input)?;
    Ok(Json(ResourceView::from(&resource)))
}

#[utoipa::path(delete, path = "/resources/{id}", tag = "projects", params(IdPath),
    responses((status = 204, description = "Deleted")))]
async fn delete_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .records
        .delete_resource(&principal, number("id", &id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The bulk actions on records, as the path names them.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum ResourceActionName {
    /// Needs `users`.
    Assign,
    /// Needs `users`.
    Unassign,
    /// Needs `owner`; takes `managers`.
    SetOwner,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResourceAction {
    ids: Vec<u64>,
    #[serde(default)]
    users: Vec<u64>,
    owner: Option<u64>,
    #[serde(default)]
    managers: BTreeSet<u64>,
}

/// What a bulk action did to each selected record.
#[derive(Serialize, ToSchema)]
struct ResourceActionAnswer {
    action: String,
    succeeded: usize,
    failed: usize,
    results: Vec<ResourceResult>,
}

/// One record's result: the record as changed, or the error.
#[derive(Serialize, ToSchema)]
struct ResourceResult {
    id: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<super::error::ErrorDetail>,
}

/// `assign`, `unassign` (`{"ids","users"}`) and `set-owner` (`{"ids","owner","managers"}`),
/// one result per record.
#[utoipa::path(post, path = "/resources/actions/{action}", tag = "projects",
    params(("action" = inline(ResourceActionName), Path, description = "The action")),
    request_body = ResourceAction,
    responses((status = 200, description = "Per-record results", body = ResourceActionAnswer)))]
async fn resource_action(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(action): Path<String>,
    ApiJson(body): ApiJson<ResourceAction>,
) -> ApiResult<Json<ResourceActionAnswer>> {
    let name = super::parse_enum::<ResourceActionName>(&action)
        .ok_or_else(|| ApiError::not_found("action"))?;
    if body.ids.is_empty() {
        return Err(ApiError::invalid("ids", "select at least one record"));
    }
    let owner = match name {
        ResourceActionName::Assign | ResourceActionName::Unassign if body.users.is_empty() => {
            return Err(ApiError::invalid("users", "name at least one user"));
        }
        ResourceActionName::SetOwner => body
            .owner
            .ok_or_else(|| ApiError::invalid("owner", "required for set-owner"))?,
        _ => 0,
    };
    let records = &state.directory.records;
    let results: Vec<ResourceResult> = body
        .ids
        .iter()
        .map(|&id| {
            let outcome = match name {
                ResourceActionName::Assign => records.assign(&principal, id, &body.users, true),
                ResourceActionName::Unassign => records.assign(&principal, id, &body.users, false),
                ResourceActionName::SetOwner => {
                    records.set_owner(&principal, id, owner, &body.managers)
                }
            };
            match outcome {
                Ok(resource) => ResourceResult {
                    id,
                    ok: true,
                    resource: Some(ResourceView::from(&resource)),
                    error: None,
                },
                Err(error) => ResourceResult {
                    id,
                    ok: false,
                    resource: None,
                    error: Some(ApiError::from(error).body()),
                },
            }
        })
        .collect();
    let succeeded = results.iter().filter(|r| r.ok).count();
    Ok(Json(ResourceActionAnswer {
        action,
        succeeded,
        failed: results.len() - succeeded,
        results,
    }))
}
