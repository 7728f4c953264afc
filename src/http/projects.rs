//! Organization, project, member and record routes, and the permission check.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth, TextBody, user_id};
use super::views::{OrganizationView, ProjectView, ResourceView};
use crate::domain::permissions::Action;
use crate::domain::projects::ProjectRole;
use crate::domain::projects::{Organization, ProjectWithMembers, Resource};
use crate::service::organizations::OrganizationInput;
use crate::service::projects::ProjectInput;
use crate::service::records::ResourceInput;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/organizations",
            get(list_organizations).post(create_organization),
        )
        .route(
            "/organizations/{id}",
            get(read_organization)
                .patch(update_organization)
                .delete(delete_organization),
        )
        .route("/users/{id}/organization", put(set_organization))
        .route("/organizations/{id}/import", post(import_records))
        .route("/projects", get(list_projects).post(create_project))
        .route(
            "/projects/{id}",
            get(read_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route("/projects/{id}/members", get(list_members))
        .route(
            "/projects/{id}/members/{user}",
            put(set_member).delete(remove_member),
        )
        .route("/me/projects", get(my_projects))
        .route("/resources", get(list_resources).post(create_resource))
        .route(
            "/resources/{id}",
            get(read_resource)
                .patch(update_resource)
                .delete(delete_resource),
        )
        .route("/resources/actions/{action}", post(resource_action))
        .route("/authz/check", get(check))
}

/// Parses a numeric path id, naming `field` when it is not one.
fn number(field: &str, raw: &str) -> ApiResult<u64> {
    raw.parse()
        .map_err(|_| ApiError::invalid(field, "must be a positive integer"))
}

async fn create_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        Json(organization_json(
            &state
                .directory
                .organizations
                .create_organization(&principal, input)?,
        )),
    ))
}

async fn list_organizations(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "organizations": state.directory.organizations.list_organizations(&principal)?.iter().map(OrganizationView::from).collect::<Vec<_>>() }),
    ))
}

async fn update_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> ApiResult<Json<Value>> {
    Ok(Json(organization_json(
        &state.directory.organizations.update_organization(
            &principal,
            number("id", &id)?,
            input,
        )?,
    )))
}

/// `?dry_run=true` lists what would go without deleting anything.
async fn delete_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let dry_run = match query.get("dry_run").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("dry_run", "must be true or false")),
    };
    Ok(Json(json!(
        state.directory.organizations.delete_organization(
            &principal,
            number("id", &id)?,
            dry_run
        )?
    )))
}

/// `POST /organizations/{id}/import` with a CSV body (columns kind, name, source,
/// optional project, others become attributes).
async fn import_records(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    TextBody(body): TextBody,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(state.directory.records.import_records(
        &principal,
        number("id", &id)?,
        &body
    )?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationChoice {
    organization: Option<u64>,
}

async fn set_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OrganizationChoice>,
) -> ApiResult<StatusCode> {
    state.directory.organizations.set_user_organization(
        &principal,
        user_id(&id)?,
        body.organization,
    )?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        Json(project_json(
            &state.directory.projects.create_project(&principal, input)?,
        )),
    ))
}

async fn list_projects(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "projects": state.directory.projects.list_projects(&principal)?.iter().map(|p| ProjectView::new(p, None)).collect::<Vec<_>>() }),
    ))
}

async fn read_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(project_json(
        &state
            .directory
            .projects
            .get_project(&principal, number("id", &id)?)?,
    )))
}

async fn update_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<Json<Value>> {
    Ok(Json(project_json(
        &state
            .directory
            .projects
            .update_project(&principal, number("id", &id)?, input)?,
    )))
}

async fn delete_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .projects
        .delete_project(&principal, number("id", &id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChoice {
    role: ProjectRole,
}

async fn set_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleChoice>,
) -> ApiResult<Json<Value>> {
    let project = state.directory.projects.set_member(
        &principal,
        number("id", &id)?,
        user_id(&user)?,
        Some(body.role),
    )?;
    Ok(Json(project_json(&project)))
}

async fn remove_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let project = state.directory.projects.set_member(
        &principal,
        number("id", &id)?,
        user_id(&user)?,
        None,
    )?;
    Ok(Json(project_json(&project)))
}

async fn my_projects(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "projects": state.directory.projects.my_projects(&principal)? }),
    ))
}

async fn create_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<ResourceInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    Ok((
        StatusCode::CREATED,
        Json(resource_json(
            &state.directory.records.create_resource(&principal, input)?,
        )),
    ))
}

async fn list_resources(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(
        json!({ "resources": state.directory.records.list_resources(&principal, project)?.iter().map(ResourceView::from).collect::<Vec<_>>() }),
    ))
}

async fn read_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(resource_json(
        &state
            .directory
            .records
            .get_resource(&principal, number("id", &id)?)?,
    )))
}

async fn update_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ResourceInput>,
) -> ApiResult<Json<Value>> {
    Ok(Json(resource_json(
        &state
            .directory
            .records
            .update_resource(&principal, number("id", &id)?, input)?,
    )))
}

async fn delete_resource(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .records
        .delete_resource(&principal, number("id", &id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceAction {
    ids: Vec<u64>,
    #[serde(default)]
    users: Vec<u64>,
    owner: Option<u64>,
    #[serde(default)]
    managers: BTreeSet<u64>,
}

/// `assign`, `unassign` (`{"ids","users"}`) and `set-owner` (`{"ids","owner","managers"}`),
/// one result per record.
async fn resource_action(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(action): Path<String>,
    ApiJson(body): ApiJson<ResourceAction>,
) -> ApiResult<Json<Value>> {
    if body.ids.is_empty() {
        return Err(ApiError::invalid("ids", "select at least one record"));
    }
    let directory = &state.directory;
    let apply = |id: u64| match action.as_str() {
        "assign" => directory.records.assign(&principal, id, &body.users, true),
        "unassign" => directory.records.assign(&principal, id, &body.users, false),
        _ => directory.records.set_owner(
            &principal,
            id,
            body.owner.unwrap_or_default(),
            &body.managers,
        ),
    };
    match action.as_str() {
        "assign" | "unassign" if body.users.is_empty() => {
            return Err(ApiError::invalid("users", "name at least one user"));
        }
        "set-owner" if body.owner.is_none() => {
            return Err(ApiError::invalid("owner", "required for set-owner"));
        }
        "assign" | "unassign" | "set-owner" => {}
        _ => return Err(ApiError::not_found("action")),
    }
    let results: Vec<Value> = body
        .ids
        .iter()
        .map(|&id| match apply(id) {
            Ok(resource) => {
                json!({ "id": id, "ok": true, "resource": ResourceView::from(&resource) })
            }
            Err(error) => json!({ "id": id, "ok": false, "error": ApiError::from(error).body() }),
        })
        .collect();
    let succeeded = results.iter().filter(|r| r["ok"] == true).count();
    Ok(Json(
        json!({ "action": action, "succeeded": succeeded, "failed": results.len() - succeeded, "results": results }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckQuery {
    user: u64,
    action: Action,
    resource: u64,
}

async fn check(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<CheckQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let decision = state.directory.records.check_permission(
        &principal,
        query.user,
        query.action,
        query.resource,
    )?;
    Ok(Json(
        json!({ "allowed": decision.allowed, "reason": decision.reason }),
    ))
}

async fn read_organization(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(organization_json(
        &state
            .directory
            .organizations
            .get_organization(&principal, number("id", &id)?)?,
    )))
}

async fn list_members(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = state
        .directory
        .projects
        .get_project(&principal, number("id", &id)?)?;
    Ok(Json(json!({ "members": project.members })))
}

fn organization_json(organization: &Organization) -> Value {
    json!(OrganizationView::from(organization))
}

fn project_json(project: &ProjectWithMembers) -> Value {
    json!(ProjectView::new(&project.project, Some(&project.members)))
}

fn resource_json(resource: &Resource) -> Value {
    json!(ResourceView::from(resource))
}
