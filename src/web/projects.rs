//! Project pages, for anyone the project shows itself to: the members and
//! their roles (changed, added and removed by those who manage members) and
//! the records with "N member(s) assigned" and the names, where members are
//! assigned to records. The project rules decide, as in the API.

use super::pages::{Nav, checked, failed, field, render};
use super::session::{Posted, WebUser};
use crate::domain::permissions::{Action, decide_project};
use crate::domain::projects::{ProjectId, ProjectRole};
use crate::domain::roles::{Capability, has_capability};
use crate::http::AppState;
use crate::http::wire_name;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Records one form may act on.
const MAX_RECORDS: usize = 200;

const ROLES: [&str; 6] = [
    "member",
    "readonly",
    "annotator",
    "editor",
    "manager",
    "owner",
];

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    nav: Nav,
    /// Id, name, kind.
    projects: Vec<(u64, String, String)>,
}

pub async fn list(State(state): State<AppState>, user: WebUser) -> Response {
    match state.directory.projects.list_projects(&user.principal) {
        Ok(projects) => render(
            StatusCode::OK,
            &ProjectsPage {
                nav: Nav::of(&user),
                projects: projects
                    .into_iter()
                    .map(|p| (p.id, p.name, p.kind))
                    .collect(),
            },
        ),
        Err(error) => failed(Nav::of(&user), error),
    }
}

struct MemberRow {
    id: u64,
    name: String,
    role: String,
}

struct RecordRow {
    id: u64,
    name: String,
    kind: String,
    owner: String,
    summary: String,
    names: String,
    thumbnail: &'static str,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    nav: Nav,
    id: ProjectId,
    name: String,
    manage: bool,
    roles: [&'static str; 6],
    members: Vec<MemberRow>,
    records: Vec<RecordRow>,
    /// Done (or not) and what, after a form.
    results: Vec<(bool, String)>,
    /// Whether thumbnail jobs are offered (media admins).
    media: bool,
    /// A running or finished job's progress, rendered.
    job: Option<String>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobFragment {
    id: u64,
    running: bool,
    done: usize,
    total: usize,
    succeeded: usize,
    failed: usize,
    /// Record and why not, once finished.
    failures: Vec<(u64, String)>,
}

/// A job's progress as HTML (polled by htmx while it runs).
fn job_html(job: &crate::service::jobs::Job) -> String {
    let running = job.state == crate::service::jobs::JobState::Running;
    let fragment = JobFragment {
        id: job.id,
        running,
        done: job.done,
        total: job.total,
        succeeded: job.succeeded,
        failed: job.failed,
        failures: job
            .results
            .iter()
            .filter(|item| !item.ok)
            .map(|item| (item.id, item.code.clone().unwrap_or_default()))
            .collect(),
    };
    fragment.render().unwrap_or_default()
}

/// Why a job's progress cannot be shown, in its place.
#[derive(Template)]
#[template(
    source = "<div id=\"job\" role=\"status\"><p>{{ message }}</p></div>",
    ext = "html"
)]
struct JobRefused<'a> {
    message: &'a str,
}

/// `GET /jobs/{id}/progress`: the progress fragment alone.
pub async fn job_progress(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<u64>,
) -> Response {
    match state.directory.job(&user.principal, id) {
        Ok(job) => axum::response::Html(job_html(&job)).into_response(),
        // A fragment htmx swaps in, without polling on (286 stops it too).
        Err(error) => {
            let message = crate::http::ApiError::from(error).message;
            let status = StatusCode::from_u16(286).unwrap_or(StatusCode::OK);
            let html = JobRefused { message: &message }
                .render()
                .unwrap_or_default();
            (status, axum::response::Html(html)).into_response()
        }
    }
}

/// The project page, with what the last form did.
fn project_page(
    state: &AppState,
    user: &WebUser,
    id: ProjectId,
    results: Vec<(bool, String)>,
) -> Response {
    project_page_with(state, user, id, results, None)
}

/// The project page, with what the last form did and a job's progress.
fn project_page_with(
    state: &AppState,
    user: &WebUser,
    id: ProjectId,
    results: Vec<(bool, String)>,
    job: Option<String>,
) -> Response {
    let directory = &state.directory;
    let principal = &user.principal;
    let project = match directory.projects.get_project(principal, id) {
        Ok(project) => project,
        Err(error) => return failed(Nav::of(user), error),
    };
    let role = project.members.get(&principal.user.id).copied();
    let rules = directory.projects.settings.rules;
    let manage = decide_project(&principal.user, Action::ManageMembers, role, rules).allowed;
    let members: Vec<MemberRow> = match directory.records.project_members(principal, id) {
        Ok(members) => members
            .into_iter()
            .map(|m| MemberRow {
                id: m.id,
                name: m
                    .user
                    .map_or_else(|| format!("user {}", m.id), |u| u.effective_display_name()),
                role: wire_name(m.role),
            })
            .collect(),
        Err(error) => return failed(Nav::of(user), error),
    };
    let records = directory
        .records
        .list_resources(principal, Some(id))
        .unwrap_or_default()
        .into_iter()
        .map(|record| {
            let names = directory
                .records
                .assigned_names(principal, &record)
                .ok()
                .flatten();
            RecordRow {
                id: record.id,
                owner: members
                    .iter()
                    .find(|member| member.id == record.owner)
                    .map_or_else(
                        || format!("user {}", record.owner),
                        |member| member.name.clone(),
                    ),
                thumbnail: match (record.thumbnail.is_some(), record.media().is_some()) {
                    (true, _) => "yes",
                    (false, true) => "missing",
                    (false, false) => "",
                },
                summary: format!("{} member(s) assigned", record.assigned.len()),
                names: names
                    .map(|users| {
                        users
                            .iter()
                            .map(|u| u.effective_display_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                name: record.name,
                kind: record.kind,
            }
        })
        .collect();
    let status = match results.iter().all(|(ok, _)| *ok) {
        true => StatusCode::OK,
        false => StatusCode::UNPROCESSABLE_ENTITY,
    };
    render(
        status,
        &ProjectPage {
            nav: Nav::of(user),
            id,
            name: project.project.name,
            manage: manage || has_capability(&principal.user, Capability::GrantRoles),
            roles: ROLES,
            members,
            records,
            results,
            media: has_capability(&principal.user, Capability::ManageMedia),
            job,
        },
    )
}

pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<ProjectId>,
) -> Response {
    project_page(&state, &user, id, Vec::new())
}

/// Adds a member, changes a role, or (`none`) removes the member.
pub async fn members(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    Posted { user, form }: Posted,
) -> Response {
    let Ok(member) = field(&form, "user").trim().parse::<u64>() else {
        return project_page(
            &state,
            &user,
            id,
            vec![(false, "Name the user by id.".into())],
        );
    };
    let role: Option<ProjectRole> = match field(&form, "role") {
        "none" => None,
        raw => match crate::http::parse_enum(raw) {
            Some(role) => Some(role),
            None => {
                return project_page(&state, &user, id, vec![(false, "Choose a role.".into())]);
            }
        },
    };
    let outcome = state
        .directory
        .projects
        .set_member(&user.principal, id, member, role);
    let result = match outcome {
        Ok(_) => (
            true,
            format!(
                "user {member}: {}",
                role.map_or("removed".into(), wire_name)
            ),
        ),
        Err(error) => (
            false,
            format!(
                "user {member}: {}",
                crate::http::ApiError::from(error).message
            ),
        ),
    };
    project_page(&state, &user, id, vec![result])
}

/// Assigns (or unassigns) one member to the selected records, a result per record.
pub async fn records(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    Posted { user, form }: Posted,
) -> Response {
    let member: Option<u64> = field(&form, "user").parse().ok();
    let ids = checked(&form, "ids");
    let (Some(member), false, true) = (member, ids.is_empty(), ids.len() <= MAX_RECORDS) else {
        let message = "Select one to 200 records, and a member.";
        return project_page(&state, &user, id, vec![(false, message.into())]);
    };
    let records = &state.directory.records;
    let action = field(&form, "action");
    let results = ids
        .iter()
        .map(|&record| {
            let outcome = match action {
                // The record's managers stay (the new owner needs no place among them).
                "set-owner" => records
                    .get_resource(&user.principal, record)
                    .and_then(|current| {
                        let mut managers = current.managers;
                        managers.remove(&member);
                        records.set_owner(&user.principal, record, member, &managers)
                    }),
                "unassign" => records.assign(&user.principal, record, &[member], false),
                _ => records.assign(&user.principal, record, &[member], true),
            };
            match outcome {
                Ok(done) if action == "set-owner" => {
                    (true, format!("{}: owner changed", done.name))
                }
                Ok(done) => (
                    true,
                    format!("{}: {} member(s) assigned", done.name, done.assigned.len()),
                ),
                Err(error) => (
                    false,
                    format!(
                        "record {record}: {}",
                        crate::http::ApiError::from(error).message
                    ),
                ),
            }
        })
        .collect();
    project_page(&state, &user, id, results)
}

/// Starts a job making the thumbnails the project's records miss.
pub async fn thumbnails(
    State(state): State<AppState>,
    Path(id): Path<ProjectId>,
    Posted { user, .. }: Posted,
) -> Response {
    let missing = state
        .directory
        .records
        .list_resources(&user.principal, Some(id))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.thumbnail.is_none() && r.media().is_some())
        .map(|r| r.id)
        .collect();
    let selection = crate::service::records::ThumbnailSelection::Ids(missing);
    match state
        .directory
        .generate_thumbnails(&user.principal, selection)
    {
        Ok(job) => project_page_with(&state, &user, id, Vec::new(), Some(job_html(&job))),
        Err(error) => {
            let message = crate::http::ApiError::from(error).message;
            project_page(&state, &user, id, vec![(false, message)])
        }
    }
}
