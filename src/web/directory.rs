//! Groups and organizations for admins: listed with member counts, added
//! (an organization by its code alone), deleted; an organization's deletion
//! is shown as a dry run first and needs a second, confirming post.

use super::pages::{Nav, failed, field, render};
use super::session::{Posted, WebUser};
use crate::http::AppState;
use crate::service::organizations::OrganizationInput;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What deleting an organization would do.
struct Plan {
    id: u64,
    code: String,
    records: usize,
    stewarded: usize,
    members: usize,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    nav: Nav,
    /// Name, members, automatic.
    groups: Vec<(String, usize, bool)>,
    /// Id, code, name.
    organizations: Vec<(u64, String, String)>,
    plan: Option<Plan>,
    results: Vec<(bool, String)>,
}

fn groups_page(
    state: &AppState,
    user: &WebUser,
    plan: Option<Plan>,
    results: Vec<(bool, String)>,
) -> Response {
    let directory = &state.directory;
    let groups = match directory.groups.list_groups(&user.principal) {
        Ok(groups) => groups
            .into_iter()
            .map(|g| (g.group.name, g.members, g.group.automatic))
            .collect(),
        Err(error) => return failed(Nav::of(user), error),
    };
    let organizations = directory
        .organizations
        .list_organizations(&user.principal)
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.id, o.code, o.name))
        .collect();
    let status = match results.iter().all(|(ok, _)| *ok) {
        true => StatusCode::OK,
        false => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let page = GroupsPage {
        nav: Nav::of(user),
        groups,
        organizations,
        plan,
        results,
    };
    render(status, &page)
}

pub async fn page(State(state): State<AppState>, user: WebUser) -> Response {
    if let Err(refusal) = super::admin::admin_only(&user) {
        return refusal.into_response();
    }
    groups_page(&state, &user, None, Vec::new())
}

/// The outcome of one change, as a result line.
fn said<T>(result: crate::service::ServiceResult<T>, done: String) -> (bool, String) {
    match result {
        Ok(_) => (true, done),
        Err(error) => (false, crate::http::ApiError::from(error).message),
    }
}

/// Adds (`create`) or deletes (`delete`) a manual group.
pub async fn groups(State(state): State<AppState>, Posted { user, form }: Posted) -> Response {
    let service = &state.directory.groups;
    let (create, delete) = (field(&form, "create").trim(), field(&form, "delete"));
    let result = match (create.is_empty(), delete.is_empty()) {
        (false, _) => said(
            service.create_group(&user.principal, create.to_owned(), None),
            format!("group {create} added"),
        ),
        (true, false) => said(
            service.delete_group(&user.principal, delete),
            format!("group {delete} deleted"),
        ),
        (true, true) => (false, "Name a group.".into()),
    };
    groups_page(&state, &user, None, vec![result])
}

/// Adds an organization by `code`, or deletes one: a dry run first, then,
/// with `confirm`, for good.
pub async fn organizations(
    State(state): State<AppState>,
    Posted { user, form }: Posted,
) -> Response {
    let service = &state.directory.organizations;
    let code = field(&form, "code").trim();
    if !code.is_empty() {
        let input = OrganizationInput {
            code: Some(code.to_owned()),
            ..OrganizationInput::default()
        };
        let result = said(
            service.create_organization(&user.principal, input),
            format!("organization {code} added"),
        );
        return groups_page(&state, &user, None, vec![result]);
    }
    let Ok(id) = field(&form, "delete").parse::<u64>() else {
        return groups_page(
            &state,
            &user,
            None,
            vec![(false, "Name an organization.".into())],
        );
    };
    let confirmed = field(&form, "confirm") == "yes";
    let code = service
        .get_organization(&user.principal, id)
        .map(|o| o.code)
        .unwrap_or_else(|_| id.to_string());
    match service.delete_organization(&user.principal, id, !confirmed) {
        Ok(deletion) if !confirmed => {
            let plan = Plan {
                id,
                code,
                records: deletion.deleted_resources.len(),
                stewarded: deletion.steward_cleared.len(),
                members: deletion.detached_users.len(),
            };
            groups_page(&state, &user, Some(plan), Vec::new())
        }
        outcome => {
            let result = said(outcome, format!("organization {code} deleted"));
            groups_page(&state, &user, None, vec![result])
        }
    }
}
