//! CSV import of users from the changelist: the file is checked first (a dry
//! run) and its plan shown; only applying the plan changes anything. The
//! import service decides, exactly as for `POST /api/v1/users/import`.

use super::pages::{Nav, field, render};
use super::session::{Posted, WebUser};
use crate::http::AppState;
use crate::service::exchange::{ImportMode, ImportReport};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    nav: Nav,
    mode: String,
    csv: String,
    plan: Vec<String>,
    can_apply: bool,
    /// The checked plan's fingerprint: "Apply" applies only that plan.
    fingerprint: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// A fingerprint of a plan's lines.
fn fingerprint(plan: &[String]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(plan.join("\n").as_bytes());
    data_encoding::HEXLOWER.encode(&digest)
}

pub async fn page(user: WebUser) -> Response {
    if let Err(refusal) = super::admin::admin_only(&user) {
        return refusal.into_response();
    }
    let page = ImportPage {
        nav: Nav::of(&user),
        mode: "add".into(),
        csv: String::new(),
        plan: Vec::new(),
        can_apply: false,
        fingerprint: String::new(),
        error: None,
        notice: None,
    };
    render(StatusCode::OK, &page)
}

/// The plan as lines a person reads.
fn plan_lines(report: &ImportReport) -> Vec<String> {
    let name = |login: &Option<String>, email: &Option<String>| {
        login.clone().or_else(|| email.clone()).unwrap_or_default()
    };
    let mut lines: Vec<String> = report
        .add
        .iter()
        .map(|add| format!("line {}: add {}", add.line, name(&add.login, &add.email)))
        .collect();
    lines.extend(report.update.iter().map(|update| {
        let fields: Vec<&str> = update.changes.keys().copied().collect();
        format!(
            "line {}: update user {} ({})",
            update.line,
            update.id,
            fields.join(", ")
        )
    }));
    lines.extend(report.delete.iter().map(|delete| {
        format!(
            "line {}: delete user {} {}",
            delete.line,
            delete.id,
            delete.login.clone().unwrap_or_default()
        )
    }));
    lines.extend(report.errors.iter().map(|error| match &error.column {
        Some(column) => format!("line {}, column {column}: {}", error.line, error.message),
        None => format!("line {}: {}", error.line, error.message),
    }));
    lines
}

/// Checks (`step=check`) or applies (`step=apply`) a pasted CSV.
pub async fn import(State(state): State<AppState>, Posted { user, form }: Posted) -> Response {
    let mode_name = field(&form, "mode");
    let csv = field(&form, "csv").replace("\r\n", "\n");
    let apply = field(&form, "step") == "apply";
    let mut page = ImportPage {
        nav: Nav::of(&user),
        mode: mode_name.to_owned(),
        csv: csv.clone(),
        plan: Vec::new(),
        can_apply: false,
        fingerprint: String::new(),
        error: None,
        notice: None,
    };
    let Some(mode) = crate::http::parse_enum::<ImportMode>(mode_name) else {
        page.error = Some("Choose add, update or delete.".into());
        return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
    };
    let exchange = &state.directory.exchange;
    if apply {
        // Only the plan that was shown is applied: check again, compare.
        let replan = exchange
            .import(&user.principal, csv.as_bytes(), mode, true)
            .await;
        let same = replan
            .as_ref()
            .is_ok_and(|report| fingerprint(&plan_lines(report)) == field(&form, "fingerprint"));
        if !same {
            page.error =
                Some("The directory changed since the check: check the file again.".into());
            return render(StatusCode::CONFLICT, &page);
        }
    }
    match exchange
        .import(&user.principal, csv.as_bytes(), mode, !apply)
        .await
    {
        Ok(report) => {
            page.plan = plan_lines(&report);
            page.fingerprint = fingerprint(&page.plan);
            page.can_apply = !apply && report.errors.is_empty() && !page.plan.is_empty();
            if apply && report.applied {
                page.notice = Some("The plan was applied.");
            } else if !report.errors.is_empty() {
                page.error = Some("The file has problems; nothing was imported.".into());
            }
            let status = match report.errors.is_empty() {
                true => StatusCode::OK,
                false => StatusCode::UNPROCESSABLE_ENTITY,
            };
            render(status, &page)
        }
        Err(error) => {
            page.error = Some(crate::http::ApiError::from(error).message);
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
    }
}
