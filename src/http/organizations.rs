//! Organization routes: CRUD, a user's organization, and the records CSV import.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth, TextBody, user_id};
use super::users::UserPath;
use super::views::OrganizationView;
use crate::service::organizations::{OrganizationDeletion, OrganizationInput};
use crate::service::records::ImportReport;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(
            read_organization,
            update_organization,
            delete_organization
        ))
        .routes(routes!(set_organization))
        .routes(routes!(import_records))
}

/// Parses a numeric path id, naming `field` when it is not one.
pub(super) fn number(field: &str, raw: &str) -> ApiResult<u64> {
    raw.parse()
        .map_err(|_| ApiError::invalid(field, "must be a positive integer"))
}

/// The organization, project or record a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct IdPath {
    /// Its numeric id.
    pub id: String,
}

/// Every organization.
#[derive(Serialize, ToSchema)]
struct OrganizationList {
    organizations: Vec<OrganizationView>,
}

/// Creates an organization; only `code` is required.
#[utoipa::path(post, path = "/organizations", tag = "projects", request_body = OrganizationInput,
    responses((status = 201, description = "Created", body = OrganizationView)))]
async fn create_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> ApiResult<(StatusCode, Json<OrganizationView>)> {
    let organization = state
        .directory
        .organizations
        .create_organization(&principal, input)?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationView::from(&organization)),
    ))
}

#[utoipa::path(get, path = "/organizations", tag = "projects",
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The organizations", body = OrganizationList)))]
async fn list_organizations(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<OrganizationList>> {
    let organizations = state
        .directory
        .organizations
        .list_organizations(&principal)?;
    Ok(Json(OrganizationList {
        organizations: organizations.iter().map(OrganizationView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/organizations/{id}", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The organization", body = OrganizationView)))]
async fn read_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<OrganizationView>> {
    let organization = state
        .directory
        .organizations
        .get_organization(&principal, number("id", &id)?)?;
    Ok(Json(OrganizationView::from(&organization)))
}

#[utoipa::path(patch, path = "/organizations/{id}", tag = "projects", params(IdPath),
    request_body = OrganizationInput,
    responses((status = 200, description = "Updated", body = OrganizationView)))]
async fn update_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> ApiResult<Json<OrganizationView>> {
    let organization =
        state
            .directory
            .organizations
            .update_organization(&principal, number("id", &id)?, input)?;
    Ok(Json(OrganizationView::from(&organization)))
}

/// Deletes an organization with its records, clearing stewardships and
/// detaching members; `?dry_run=true` lists what would go and changes nothing.
#[utoipa::path(delete, path = "/organizations/{id}", tag = "projects",
    params(IdPath, ("dry_run" = Option<bool>, Query, description = "Only list what would go")),
    responses((status = 200, description = "What went (or would go)", body = OrganizationDeletion)))]
async fn delete_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<OrganizationDeletion>> {
    let dry_run = match query.get("dry_run").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("dry_run", "must be true or false")),
    };
    Ok(Json(state.directory.organizations.delete_organization(
        &principal,
        number("id", &id)?,
        dry_run,
    )?))
}

/// Creates records from a CSV body: columns `kind`, `name`, `source`, optional
/// `project` and `steward`; every other column becomes an attribute.
#[utoipa::path(post, path = "/organizations/{id}/import", tag = "projects", params(IdPath),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "Created and skipped rows", body = ImportReport)))]
async fn import_records(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    TextBody(body): TextBody,
) -> ApiResult<Json<ImportReport>> {
    Ok(Json(state.directory.records.import_records(
        &principal,
        number("id", &id)?,
        &body,
    )?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OrganizationChoice {
    /// The organization's id, or null for none.
    organization: Option<u64>,
}

/// Sets or clears a user's organization.
#[utoipa::path(put, path = "/users/{id}/organization", tag = "projects", params(UserPath),
    request_body = OrganizationChoice,
    responses((status = 204, description = "Set")))]
async fn set_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(UserPath { id }): Path<UserPath>,
    ApiJson(body): ApiJson<OrganizationChoice>,
) -> ApiResult<StatusCode> {
    state.directory.organizations.set_user_organization(
        &principal,
        user_id(&id)?,
        body.organization,
    )?;
    Ok(StatusCode::NO_CONTENT)
}
