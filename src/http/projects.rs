//! Project routes: CRUD, members and their roles, one's own projects, and the
//! permission check.

use super::AppState;
use super::entries::report_bound;
use super::error::{ApiError, ApiResult, blocking};
use super::extract::{ApiJson, Auth, user_id};
use super::organizations::{IdPath, number};
use super::views::ProjectView;
use crate::domain::permissions::Action;
use crate::domain::projects::{ProjectRole, ProjectWithMembers};
use crate::domain::user::UserId;
use crate::service::exchange::columns::escape;
use crate::service::projects::{MyProject, ProjectInput};
use crate::service::records::ProjectReport;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(read_project, update_project, delete_project))
        .routes(routes!(list_members))
        .routes(routes!(report))
        .routes(routes!(set_member, remove_member))
        .routes(routes!(my_projects))
        .routes(routes!(check))
}

fn project_view(project: &ProjectWithMembers) -> ProjectView {
    ProjectView::new(&project.project, Some(&project.members))
}

/// A project member a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct MemberPath {
    /// The project's id.
    id: String,
    /// The member's user id.
    user: String,
}

/// Projects, without their member lists.
#[derive(Serialize, ToSchema)]
struct ProjectList {
    projects: Vec<ProjectView>,
}

/// The projects one is a member of, with one's role.
#[derive(Serialize, ToSchema)]
struct MyProjectList {
    projects: Vec<MyProject>,
}

/// A project's members and their roles: by id, and as a list with names
/// (login and display name only for those who manage members).
#[derive(Serialize, ToSchema)]
struct MemberList {
    members: BTreeMap<UserId, ProjectRole>,
    people: Vec<MemberView>,
}

#[derive(Serialize, ToSchema)]
struct MemberView {
    id: UserId,
    role: ProjectRole,
    login: Option<String>,
    display_name: Option<String>,
}

#[utoipa::path(post, path = "/projects", tag = "projects", request_body = ProjectInput,
    responses((status = 201, description = "Created", body = ProjectView)))]
async fn create_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<(StatusCode, Json<ProjectView>)> {
    let project = state.directory.projects.create_project(&principal, input)?;
    Ok((StatusCode::CREATED, Json(project_view(&project))))
}

#[utoipa::path(get, path = "/projects", tag = "projects",
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The projects one may see", body = ProjectList)))]
async fn list_projects(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<ProjectList>> {
    let projects = state.directory.projects.list_projects(&principal)?;
    Ok(Json(ProjectList {
        projects: projects.iter().map(|p| ProjectView::new(p, None)).collect(),
    }))
}

#[utoipa::path(get, path = "/projects/{id}", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The project and its members", body = ProjectView)))]
async fn read_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<ProjectView>> {
    let project = state
        .directory
        .projects
        .get_project(&principal, number("id", &id)?)?;
    Ok(Json(project_view(&project)))
}

#[utoipa::path(patch, path = "/projects/{id}", tag = "projects", params(IdPath),
    request_body = ProjectInput,
    responses((status = 200, description = "Updated", body = ProjectView)))]
async fn update_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<Json<ProjectView>> {
    let project = state
        .directory
        .projects
        .update_project(&principal, number("id", &id)?, input)?;
    Ok(Json(project_view(&project)))
}

#[utoipa::path(delete, path = "/projects/{id}", tag = "projects", params(IdPath),
    responses((status = 204, description = "Deleted")))]
async fn delete_project(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .projects
        .delete_project(&principal, number("id", &id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleChoice {
    role: ProjectRole,
}

/// Adds a member or changes their role.
#[utoipa::path(put, path = "/projects/{id}/members/{user}", tag = "projects", params(MemberPath),
    request_body = RoleChoice,
    responses((status = 200, description = "The project", body = ProjectView)))]
async fn set_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MemberPath { id, user }): Path<MemberPath>,
    ApiJson(body): ApiJson<RoleChoice>,
) -> ApiResult<Json<ProjectView>> {
    let project = state.directory.projects.set_member(
        &principal,
        number("id", &id)?,
        user_id(&user)?,
        Some(body.role),
    )?;
    Ok(Json(project_view(&project)))
}

/// Removes a member.
#[utoipa::path(delete, path = "/projects/{id}/members/{user}", tag = "projects", params(MemberPath),
    responses((status = 200, description = "The project", body = ProjectView)))]
async fn remove_member(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MemberPath { id, user }): Path<MemberPath>,
) -> ApiResult<Json<ProjectView>> {
    let project = state.directory.projects.set_member(
        &principal,
        number("id", &id)?,
        user_id(&user)?,
        None,
    )?;
    Ok(Json(project_view(&project)))
}

#[utoipa::path(get, path = "/projects/{id}/members", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "Members by user id, and with names", body = MemberList)))]
async fn list_members(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<MemberList>> {
    let members = state
        .directory
        .records
        .project_members(&principal, number("id", &id)?)?;
    Ok(Json(MemberList {
        members: members.iter().map(|m| (m.id, m.role)).collect(),
        people: members
            .iter()
            .map(|member| MemberView {
                id: member.id,
                role: member.role,
                login: member
                    .user
                    .as_ref()
                    .and_then(|u| u.login.as_ref())
                    .map(|l| l.as_str().to_owned()),
                display_name: member.user.as_ref().map(|u| u.effective_display_name()),
            })
            .collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// From this date (YYYY-MM-DD, UTC) or RFC 3339 time on.
    from: Option<String>,
    /// Up to this date, inclusive, or before this RFC 3339 time.
    to: Option<String>,
}

/// Counts the entries of the project's records per record and per kind over
/// a period; JSON, or CSV with `Accept: text/csv`. Editors and up.
#[utoipa::path(get, path = "/projects/{id}/report", tag = "projects", params(IdPath, ReportQuery),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The counts",
        content((ProjectReport = "application/json"), (String = "text/csv")))))]
async fn report(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let bound = |field, raw: &Option<String>, end| {
        raw.as_deref()
            .map(|raw| report_bound(field, raw, end))
            .transpose()
    };
    let (from, to) = (
        bound("from", &query.from, false)?,
        bound("to", &query.to, true)?,
    );
    let project = number("id", &id)?;
    let directory = state.directory.clone();
    let report = blocking(move || {
        directory
            .records
            .project_report(&principal, project, from, to)
    })
    .await?;
    let wants_csv = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if !wants_csv {
        return Ok(Json(report).into_response());
    }
    let csv = report_csv(&report)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "CSV"))?;
    let content_type = "text/csv; charset=utf-8";
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], csv).into_response())
}

/// One line per record and entry kind (records without entries get one line
/// with an empty kind and 0); cells a spreadsheet would run are escaped as
/// in the users export.
fn report_csv(report: &ProjectReport) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "record_id",
        "record_name",
        "record_kind",
        "entry_kind",
        "count",
    ])?;
    for record in &report.records {
        let id = record.id.to_string();
        let (name, record_kind) = (escape(&record.name), escape(&record.kind));
        if record.by_kind.is_empty() {
            writer.write_record([id.as_str(), &name, &record_kind, "", "0"])?;
        }
        for (kind, count) in &record.by_kind {
            let count = count.to_string();
            writer.write_record([id.as_str(), &name, &record_kind, &escape(kind), &count])?;
        }
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

#[utoipa::path(get, path = "/me/projects", tag = "account",
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "One's projects and roles", body = MyProjectList)))]
async fn my_projects(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<MyProjectList>> {
    Ok(Json(MyProjectList {
        projects: state.directory.projects.my_projects(&principal)?,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CheckQuery {
    /// Who would act.
    user: u64,
    #[param(inline)]
    action: Action,
    /// On which record.
    resource: u64,
}

/// The permission decision, with the rule that made it.
#[derive(Serialize, ToSchema)]
struct DecisionView {
    allowed: bool,
    reason: &'static str,
}

/// Whether a user may take an action on a record, and why.
#[utoipa::path(get, path = "/authz/check", tag = "projects", params(CheckQuery),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The decision", body = DecisionView)))]
async fn check(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<CheckQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DecisionView>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let decision = state.directory.records.check_permission(
        &principal,
        query.user,
        query.action,
        query.resource,
    )?;
    Ok(Json(DecisionView {
        allowed: decision.allowed,
        reason: decision.reason,
    }))
}
