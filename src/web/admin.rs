//! Admin pages: the dashboard and the users changelist (filters, checkboxes,
//! an action with its parameters, Go, a result per user). Offered to users
//! with a system role; every action is the API's bulk action, so the same
//! rules decide.

use super::pages::{Fields, Nav, Refusal, checked, failed, field, render};
use super::session::{Posted, WebUser};
use crate::domain::projects::ProjectRole;
use crate::domain::roles::{Capability, has_capability};
use crate::http::{AppState, parse_enum, wire_name};
use crate::service::BulkAction;
use crate::service::index::{DEFAULT_SEARCH_FIELDS, UserQuery};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Users listed on one changelist page.
const PAGE: usize = 200;

/// The changelist's actions: form value and label.
const ACTIONS: [(&str, &str); 12] = [
    ("activate", "Approve / activate"),
    ("deactivate", "Deactivate"),
    ("set-roles", "Set project role"),
    ("set-system-roles", "Set system roles"),
    ("add-to-groups", "Add to groups"),
    ("remove-from-groups", "Remove from groups"),
    ("create-ftp-accounts", "Create FTP accounts"),
    ("delete-ftp-accounts", "Delete FTP accounts"),
    ("ftp-rescan", "Recount FTP usage"),
    ("send-email", "Send email"),
    ("mask", "Mask personal data (GDPR)"),
    ("delete", "Delete"),
];

/// Refuses callers without a system role.
pub(super) fn admin_only(user: &WebUser) -> Result<(), Refusal> {
    match has_capability(&user.principal.user, Capability::ReadDirectory) {
        true => Ok(()),
        false => Err(Refusal("These pages are for administrators.")),
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Nav,
    counts: Vec<(&'static str, usize)>,
    ftp: Vec<crate::service::dashboard::FtpUsage>,
    queued: Option<usize>,
    last_sync: Option<String>,
    chart: Vec<Bar>,
}

/// One hour's bar of the sign-in chart (SVG units: 24 bars of 10 in 240 × 100).
struct Bar {
    x: u64,
    ok_y: u64,
    ok_height: u64,
    refused_y: u64,
    refused_height: u64,
    label: String,
    ok: u64,
    refused: u64,
}

/// Bars scaled to the busiest hour: successes below, refusals stacked on top.
fn chart(hours: &[crate::service::hourly::HourCount]) -> Vec<Bar> {
    let most = hours
        .iter()
        .map(|h| h.ok + h.refused)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |count: u64| count * 96 / most;
    hours
        .iter()
        .enumerate()
        .map(|(slot, hour)| {
            let (ok_height, refused_height) = (scale(hour.ok), scale(hour.refused));
            let label = chrono::DateTime::from_timestamp(hour.hour, 0)
                .map_or_else(String::new, |t| t.format("%H:00 UTC").to_string());
            Bar {
                x: slot as u64 * 10 + 1,
                ok_y: 100 - ok_height,
                ok_height,
                refused_y: 100 - ok_height - refused_height,
                refused_height,
                label,
                ok: hour.ok,
                refused: hour.refused,
            }
        })
        .collect()
}

pub async fn dashboard(State(state): State<AppState>, user: WebUser) -> Response {
    if let Err(refusal) = admin_only(&user) {
        return refusal.into_response();
    }
    match state.directory.dashboard(&user.principal) {
        Ok(board) => render(
            StatusCode::OK,
            &DashboardPage {
                nav: Nav::of(&user),
                counts: board.counts,
                ftp: board.ftp,
                queued: board.queued_mail,
                last_sync: board.last_sync,
                chart: chart(&board.sign_ins),
            },
        ),
        Err(error) => failed(Nav::of(&user), error),
    }
}

/// The filters, as the form sends them.
#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    user_type: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    organization: String,
    /// Users after this id (the next page).
    after: Option<u64>,
}

impl Filter {
    /// The filter as a query string, for the next page and the CSV export.
    fn query_string(&self) -> String {
        // As `users_page` queries: "archived" is its own filter in the API.
        let (status, archived) = match self.status.as_str() {
            "archived" => ("", "only"),
            status => (status, ""),
        };
        [
            ("q", self.q.as_str()),
            ("status", status),
            ("archived", archived),
            ("type", self.user_type.as_str()),
            ("group", self.group.trim()),
            ("organization", self.organization.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            format!(
                "{name}={}",
                url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A user's row.
struct Row {
    id: u64,
    login: String,
    name: String,
    user_type: String,
    status: String,
    ftp: String,
}

/// One user's result after Go.
struct Outcome {
    ok: bool,
    label: String,
    message: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Nav,
    filter: Filter,
    users: Vec<Row>,
    actions: [(&'static str, &'static str); 12],
    projects: Vec<(u64, String)>,
    organizations: Vec<(u64, String)>,
    /// The next page's link, and the CSV export's.
    next_page: Option<String>,
    export: String,
    action: String,
    succeeded: usize,
    failed: usize,
    results: Vec<Outcome>,
}

/// The changelist with `filter` applied, and what the last action did.
fn users_page(state: &AppState, user: &WebUser, filter: Filter, done: Done) -> Response {
    let mut query = UserQuery {
        limit: PAGE,
        after: filter.after,
        group: Some(filter.group.trim().to_owned()).filter(|g| !g.is_empty()),
        organization: filter.organization.parse().ok(),
        search_fields: DEFAULT_SEARCH_FIELDS.to_vec(),
        text: Some(crate::domain::names::fold(&filter.q)).filter(|q| !q.is_empty()),
        ..UserQuery::default()
    };
    match filter.status.as_str() {
        "archived" => query.archived = crate::service::index::ArchivedFilter::Only,
        status => query.statuses = parse_enum(status).into_iter().collect(),
    }
    query.types = match parse_enum(&filter.user_type) {
        Some(user_type) => vec![user_type],
        None => crate::http::LISTED_BY_DEFAULT.to_vec(),
    };
    let directory = &state.directory;
    let page = match directory.accounts.list_users(&user.principal, &query) {
        Ok(page) => page,
        Err(error) => return failed(Nav::of(user), error),
    };
    let users = page
        .users
        .iter()
        .map(|u| Row {
            id: u.id,
            login: u
                .login
                .as_ref()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
            name: u.effective_display_name(),
            user_type: wire_name(u.user_type),
            status: if u.is_archived() {
                "archived".into()
            } else {
                wire_name(u.status)
            },
            ftp: match (u.ftp.enabled, u.ftp.quota_mb) {
                (false, _) => String::new(),
                (true, Some(quota)) => format!(
                    "{:.1} of {quota} MB",
                    u.ftp.used_bytes as f64 / f64::from(1 << 20)
                ),
                (true, None) => format!("{:.1} MB", u.ftp.used_bytes as f64 / f64::from(1 << 20)),
            },
        })
        .collect();
    let projects = directory
        .projects
        .list_projects(&user.principal)
        .map(|projects| projects.into_iter().map(|p| (p.id, p.name)).collect())
        .unwrap_or_default();
    let organizations = directory
        .organizations
        .list_organizations(&user.principal)
        .map(|all| all.into_iter().map(|o| (o.id, o.code)).collect())
        .unwrap_or_default();
    let query_string = filter.query_string();
    let next_page = page
        .next_cursor
        .map(|after| format!("/admin/users?{query_string}&after={after}"));
    let export = format!("/api/v1/users.csv?{query_string}");
    let status = if done.results.iter().all(|r| r.ok) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        &UsersPage {
            nav: Nav::of(user),
            filter,
            users,
            actions: ACTIONS,
            projects,
            organizations,
            next_page,
            export,
            action: done.action,
            succeeded: done.results.iter().filter(|r| r.ok).count(),
            failed: done.results.iter().filter(|r| !r.ok).count(),
            results: done.results,
        },
    )
}

/// What Go did.
#[derive(Default)]
struct Done {
    action: String,
    results: Vec<Outcome>,
}

pub async fn users(
    State(state): State<AppState>,
    user: WebUser,
    Query(filter): Query<Filter>,
) -> Response {
    if let Err(refusal) = admin_only(&user) {
        return refusal.into_response();
    }
    users_page(&state, &user, filter, Done::default())
}

/// A user's login for a result line, or their id.
fn login_of(state: &AppState, user: &WebUser, id: u64) -> String {
    state
        .directory
        .accounts
        .get_user(&user.principal, id)
        .ok()
        .and_then(|found| found.login.as_ref().map(|l| l.as_str().to_owned()))
        .unwrap_or_else(|| format!("user {id}"))
}

/// The bulk action the form asks for, or why it cannot be run.
fn chosen_action(form: &Fields) -> Result<BulkAction, &'static str> {
    let activate = field(form, "activate") == "true";
    Ok(match field(form, "action") {
        "activate" => BulkAction::Activate,
        "deactivate" => BulkAction::Deactivate,
        "mask" => BulkAction::Mask,
        "delete" => BulkAction::Delete,
        "delete-ftp-accounts" => BulkAction::DeleteFtpAccounts,
        "ftp-rescan" => BulkAction::RescanFtp,
        "create-ftp-accounts" => BulkAction::CreateFtpAccounts {
            quota_mb: match field(form, "quota_mb").trim() {
                "" => None,
                raw => Some(
                    raw.parse()
                        .map_err(|_| "The FTP quota must be a whole number of MB.")?,
                ),
            },
            quota_files: None,
            activate,
        },
        "set-system-roles" => BulkAction::SetSystemRoles(
            form.iter()
                .filter(|(key, _)| key == "roles")
                .filter_map(|(_, value)| parse_enum(value))
                .collect(),
        ),
        "add-to-groups" | "remove-from-groups" => {
            let groups: std::collections::BTreeSet<String> = field(form, "groups")
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect();
            if groups.is_empty() {
                return Err("Name the groups, separated by commas.");
            }
            match field(form, "action") {
                "add-to-groups" => BulkAction::AddToGroups(groups),
                _ => BulkAction::RemoveFromGroups(groups),
            }
        }
        "set-roles" => {
            let project = field(form, "project")
                .parse()
                .map_err(|_| "Choose a project.")?;
            let role: ProjectRole = parse_enum(field(form, "role")).ok_or("Choose a role.")?;
            BulkAction::SetRoles {
                projects: vec![(project, role)],
                activate,
            }
        }
        _ => return Err("Choose an action."),
    })
}

/// Mails the form's subject and text to the selected users, a result per user.
fn send_email(state: &AppState, user: &WebUser, form: &Fields, ids: &[u64]) -> Done {
    let (subject, body) = (field(form, "subject"), field(form, "body"));
    let results = match state
        .directory
        .mail
        .send_message(&user.principal, ids, subject, body)
    {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| {
                let (ok, message) = match outcome.result {
                    Ok(Ok(_)) => (true, "queued".to_owned()),
                    Ok(Err(reason)) => (false, reason.message().to_owned()),
                    Err(error) => (false, crate::http::ApiError::from(error).message),
                };
                Outcome {
                    ok,
                    label: login_of(state, user, outcome.id),
                    message,
                }
            })
            .collect(),
        Err(error) => vec![Outcome {
            ok: false,
            label: "mail".into(),
            message: crate::http::ApiError::from(error).message,
        }],
    };
    Done {
        action: "Send email".into(),
        results,
    }
}

/// Runs the chosen bulk action on the selected users and shows each result.
pub async fn users_action(
    State(state): State<AppState>,
    Posted { user, form }: Posted,
) -> Response {
    if let Err(refusal) = admin_only(&user) {
        return refusal.into_response();
    }
    let ids = checked(&form, "ids");
    let problem = |message: &str| Done {
        action: "Nothing done".into(),
        results: vec![Outcome {
            ok: false,
            label: "form".into(),
            message: message.into(),
        }],
    };
    let destructive = match field(&form, "action") {
        "mask" | "delete" => true,
        "set-system-roles" => !form.iter().any(|(key, _)| key == "roles"),
        _ => false,
    };
    let done = match (chosen_action(&form), ids.is_empty()) {
        (_, true) => problem("Select at least one user."),
        _ if destructive && field(&form, "confirm") != "yes" => problem(
            "Masking, deleting and taking every system role cannot be undone here: tick the confirmation.",
        ),
        (_, false) if ids.len() > PAGE => problem("Select at most one page of users."),
        _ if field(&form, "action") == "send-email" => send_email(&state, &user, &form, &ids),
        (Err(message), _) => problem(message),
        (Ok(action), false) => {
            let directory = state.directory.clone();
            let principal = user.principal.clone();
            let outcomes =
                tokio::task::spawn_blocking(move || directory.bulk(&principal, &action, &ids))
                    .await;
            match outcomes {
                Ok(Ok(outcomes)) => Done {
                    action: ACTIONS
                        .iter()
                        .find(|(value, _)| *value == field(&form, "action"))
                        .map_or("Action", |(_, label)| label)
                        .to_owned(),
                    results: outcomes
                        .into_iter()
                        .map(|outcome| Outcome {
                            ok: outcome.result.is_ok(),
                            label: login_of(&state, &user, outcome.id),
                            message: match outcome.result {
                                Ok(_) => "done".into(),
                                Err(error) => crate::http::ApiError::from(error).message,
                            },
                        })
                        .collect(),
                },
                Ok(Err(error)) => return failed(Nav::of(&user), error),
                Err(_) => problem("The action failed; see the server log."),
            }
        }
    };
    users_page(&state, &user, Filter::default(), done)
}
