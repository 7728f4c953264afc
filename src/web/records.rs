//! Admin views of the record of what happened: a user's page (fields,
//! status changes, one-time links, 2FA reset, their recent audit entries),
//! the audit trail and the mail outbox. The services decide who may see and
//! do what, as for the API.

use super::pages::{Fields, Nav, failed, field, render};
use super::session::{Posted, WebUser};
use crate::domain::credentials::TokenKind;
use crate::domain::user::User;
use crate::http::AppState;
use crate::http::wire_name;
use crate::service::mail::OutboxQuery;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Audit entries on one page, and searched for a user's history.
const AUDIT_PAGE: usize = 100;
const HISTORY_SCAN: usize = 1000;

fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn who(id: Option<u64>) -> String {
    id.map_or_else(|| "system".into(), |id| format!("user {id}"))
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    id: u64,
    login: String,
    fields: Vec<(&'static str, String)>,
    notice: Option<&'static str>,
    error: Option<String>,
    link: Option<String>,
    /// When, who, what.
    history: Vec<(String, String, String)>,
    /// Field name, label, value, input type.
    profile: Vec<(&'static str, &'static str, String, &'static str)>,
    /// Role and whether held.
    roles: Vec<(&'static str, bool)>,
    /// Id, code, whether the user's.
    organizations: Vec<(u64, String, bool)>,
    /// The user's groups and whether automatic.
    groups: Vec<(String, bool)>,
    /// Manual groups the user is not in.
    joinable: Vec<String>,
}

/// What the last form on the user page did.
#[derive(Default)]
struct Said {
    notice: Option<&'static str>,
    error: Option<String>,
    link: Option<String>,
}

fn user_page(state: &AppState, viewer: &WebUser, id: u64, said: Said) -> Response {
    let directory = &state.directory;
    let user: std::sync::Arc<User> = match directory.accounts.get_user(&viewer.principal, id) {
        Ok(user) => user,
        Err(error) => return failed(Nav::of(viewer), error),
    };
    let text = |value: Option<&str>| value.unwrap_or("").to_owned();
    let ftp = match user.ftp.enabled {
        true => format!(
            "{:.1} MB used of {}",
            user.ftp.used_bytes as f64 / f64::from(1 << 20),
            user.ftp
                .quota_mb
                .map_or("no quota".into(), |q| format!("{q} MB"))
        ),
        false => "no account".into(),
    };
    let fields = vec![
        ("Name", user.effective_display_name()),
        ("Email", text(user.email.as_ref().map(|e| e.as_str()))),
        ("Type", wire_name(user.user_type)),
        (
            "Status",
            if user.is_archived() {
                "archived".into()
            } else {
                wire_name(user.status)
            },
        ),
        (
            "System roles",
            user.system_roles
                .iter()
                .map(|r| wire_name(*r))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Groups",
            user.groups.iter().cloned().collect::<Vec<_>>().join(", "),
        ),
        (
            "Automatic groups",
            user.automatic_groups
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Organization",
            user.organization.map(|o| o.to_string()).unwrap_or_default(),
        ),
        (
            "Valid from",
            user.login_valid_from.map(when).unwrap_or_default(),
        ),
        (
            "Valid to",
            user.login_valid_to.map(when).unwrap_or_default(),
        ),
        (
            "Two-factor sign-in",
            if user.two_factor_enabled {
                "on".into()
            } else {
                "off".into()
            },
        ),
        ("FTP", ftp),
    ];
    let history = directory
        .audit
        .audit_trail(&viewer.principal, None, HISTORY_SCAN)
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.target == Some(id))
        .take(20)
        .map(|entry| (when(entry.at), who(entry.actor), wire_name(entry.action)))
        .collect();
    let day = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    // "Until D" means to the end of day D: stored as the next midnight.
    let until = |at: Option<chrono::DateTime<chrono::Utc>>| {
        day(at.map(|t| t - chrono::Duration::seconds(1)))
    };
    let profile = vec![
        (
            "first_name",
            "First name",
            text(user.first_name.as_deref()),
            "text",
        ),
        (
            "last_name",
            "Last name",
            text(user.last_name.as_deref()),
            "text",
        ),
        (
            "display_name",
            "Display name",
            text(user.display_name.as_deref()),
            "text",
        ),
        (
            "email",
            "Email",
            text(user.email.as_ref().map(|e| e.as_str())),
            "email",
        ),
        ("phone", "Phone", text(user.phone.as_deref()), "tel"),
        (
            "login_valid_from",
            "May sign in from (date, UTC)",
            day(user.login_valid_from),
            "date",
        ),
        (
            "login_valid_to",
            "May sign in until (date, UTC)",
            until(user.login_valid_to),
            "date",
        ),
    ];
    let roles = ["admin", "user_manager", "auditor"]
        .into_iter()
        .map(|role| {
            (
                role,
                user.system_roles
                    .iter()
                    .any(|held| wire_name(*held) == role),
            )
        })
        .collect();
    let organizations = directory
        .organizations
        .list_organizations(&viewer.principal)
        .unwrap_or_default()
        .into_iter()
        .map(|o| (o.id, o.code, user.organization == Some(o.id)))
        .collect();
    let mut groups: Vec<(String, bool)> = user.groups.iter().map(|g| (g.clone(), false)).collect();
    groups.extend(user.automatic_groups.iter().map(|g| (g.clone(), true)));
    let joinable = directory
        .groups
        .list_groups(&viewer.principal)
        .unwrap_or_default()
        .into_iter()
        .filter(|g| !g.group.automatic && !user.groups.contains(&g.group.name))
        .map(|g| g.group.name)
        .collect();
    let status = match said.error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    render(
        status,
        &UserPage {
            nav: Nav::of(viewer),
            id,
            login: text(user.login.as_ref().map(|l| l.as_str())),
            fields,
            notice: said.notice,
            error: said.error,
            link: said.link,
            history,
            profile,
            roles,
            organizations,
            groups,
            joinable,
        },
    )
}

pub async fn user(State(state): State<AppState>, viewer: WebUser, Path(id): Path<u64>) -> Response {
    if let Err(refusal) = super::admin::admin_only(&viewer) {
        return refusal.into_response();
    }
    user_page(&state, &viewer, id, Said::default())
}

/// One change on the user page: activate, deactivate, a one-time link, 2FA reset.
pub async fn change_user(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Posted { user: viewer, form }: Posted,
) -> Response {
    let directory = &state.directory;
    let principal = &viewer.principal;
    let link = |kind| {
        directory
            .credentials
            .issue_token_for(principal, id, kind)
            .map(|issued| issued.link.unwrap_or(issued.token))
    };
    let outcome = match field(&form, "do") {
        "activate" => directory.accounts.activate(principal, id).map(|_| None),
        "deactivate" => directory.accounts.deactivate(principal, id).map(|_| None),
        "activation-token" => link(TokenKind::Activation).map(Some),
        "reset-token" => link(TokenKind::PasswordReset).map(Some),
        "reset-2fa" => directory
            .credentials
            .reset_two_factor(principal, id)
            .map(|_| None),
        "profile" => match profile_patch(&form) {
            Ok(patch) => directory
                .accounts
                .update_user(principal, id, patch, None)
                .map(|_| None),
            Err(error) => Err(error),
        },
        "roles" => {
            let roles = form
                .iter()
                .filter(|(key, _)| key == "roles")
                .filter_map(|(_, value)| crate::http::parse_enum(value))
                .collect();
            directory
                .accounts
                .set_system_roles(principal, id, &roles)
                .map(|_| None)
        }
        "organization" => {
            let organization = field(&form, "organization").parse().ok();
            directory
                .organizations
                .set_user_organization(principal, id, organization)
                .map(|()| None)
        }
        "add-group" | "remove-group" => {
            let group = std::collections::BTreeSet::from([field(&form, "group").to_owned()]);
            let add = field(&form, "do") == "add-group";
            directory
                .groups
                .change_membership(principal, id, &group, add)
                .map(|()| None)
        }

        _ => {
            let said = Said {
                error: Some("Choose a change.".into()),
                ..Said::default()
            };
            return user_page(&state, &viewer, id, said);
        }
    };
    let said = match outcome {
        Ok(link) => Said {
            notice: Some("Done."),
            link,
            ..Said::default()
        },
        Err(error) => Said {
            error: Some(crate::http::ApiError::from(error).message),
            ..Said::default()
        },
    };
    user_page(&state, &viewer, id, said)
}

/// The profile form as a patch: what it sends replaces the field, an empty
/// field clears it; a changed "from" date is the start of that day in UTC, a
/// changed "until" date the end of it.
fn profile_patch(
    form: &Fields,
) -> crate::service::ServiceResult<crate::domain::user_input::UserPatch> {
    let mut patch = serde_json::Map::new();
    for name in ["first_name", "last_name", "display_name", "email", "phone"] {
        let value = field(form, name).trim();
        patch.insert(
            name.into(),
            (!value.is_empty()).then(|| value.to_owned()).into(),
        );
    }
    for name in ["login_valid_from", "login_valid_to"] {
        let day = field(form, name).trim();
        // A date left as shown leaves the stored time as it is.
        if day == field(form, &format!("was_{name}")).trim() {
            continue;
        }
        let time = match (day, name) {
            ("", _) => serde_json::Value::Null,
            (day, "login_valid_to") => match chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                Ok(date) => format!("{}T00:00:00Z", date.succ_opt().unwrap_or(date)).into(),
                Err(_) => day.into(),
            },
            (day, _) => format!("{day}T00:00:00Z").into(),
        };
        patch.insert(name.into(), time);
    }
    serde_json::from_value(serde_json::Value::Object(patch))
        .map_err(|error| crate::domain::ValidationError::new("profile", error.to_string()).into())
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<AuditRow>,
    older: Option<u64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<u64>,
}

pub async fn audit(
    State(state): State<AppState>,
    viewer: WebUser,
    Query(query): Query<AuditQuery>,
) -> Response {
    let entries =
        match state
            .directory
            .audit
            .audit_trail(&viewer.principal, query.before, AUDIT_PAGE)
        {
            Ok(entries) => entries,
            Err(error) => return failed(Nav::of(&viewer), error),
        };
    let older = (entries.len() == AUDIT_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let entries = entries
        .into_iter()
        .map(|entry| AuditRow {
            at: when(entry.at),
            actor: who(entry.actor),
            action: wire_name(entry.action),
            target: entry
                .target
                .map(|t| format!("user {t}"))
                .unwrap_or_default(),
            details: entry.details.to_string(),
        })
        .collect();
    render(
        StatusCode::OK,
        &AuditPage {
            nav: Nav::of(&viewer),
            entries,
            older,
        },
    )
}

struct MailRow {
    id: u64,
    to: String,
    kind: String,
    status: String,
    attempts: u32,
    error: String,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    nav: Nav,
    status: String,
    mails: Vec<MailRow>,
}

#[derive(Deserialize)]
pub struct OutboxFilter {
    #[serde(default)]
    status: String,
}

pub async fn outbox(
    State(state): State<AppState>,
    viewer: WebUser,
    Query(filter): Query<OutboxFilter>,
) -> Response {
    let query = OutboxQuery {
        status: crate::http::parse_enum(&filter.status),
        kind: None,
        to: None,
        user: None,
        after: None,
        limit: AUDIT_PAGE,
    };
    let page = match state.directory.mail.list(&viewer.principal, &query) {
        Ok(page) => page,
        Err(error) => return failed(Nav::of(&viewer), error),
    };
    let mails = page
        .entries
        .iter()
        .map(|mail| MailRow {
            id: mail.id,
            to: mail.to.clone(),
            kind: wire_name(mail.kind),
            status: wire_name(mail.status),
            attempts: mail.attempts,
            error: mail.last_error.clone().unwrap_or_default(),
        })
        .collect();
    render(
        StatusCode::OK,
        &OutboxPage {
            nav: Nav::of(&viewer),
            status: filter.status,
            mails,
        },
    )
}
