//! CSV exchange routes: `GET /users.csv` streams the export page by page, and
//! `POST /users/import` plans or applies an import. The import route sits
//! outside the request timeout and has its own body limit.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::Auth;
use super::user_query::parse_query;
use crate::service::exchange::{ImportMode, ImportReport, UserExchange};
use crate::service::{Directory, Principal};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The export; merged under the request timeout with the other routes.
pub fn export_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// The import, with `max_import_bytes` as its body limit and no timeout.
pub fn import_routes(max_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .layer(DefaultBodyLimit::max(max_bytes))
}

/// Where the export stands between pages.
struct Export {
    directory: Arc<Directory>,
    principal: Principal,
    query: crate::service::index::UserQuery,
    done: bool,
}

/// The users as CSV, with the same filters as `GET /users` (but every type
/// unless `type` is given); streamed page by page.
#[utoipa::path(get, path = "/users.csv", tag = "users",
    params(("type" = Option<String>, Query, description = "Filters as for GET /users"),
        ("status" = Option<String>, Query), ("group" = Option<String>, Query),
        ("archived" = Option<String>, Query), ("q" = Option<String>, Query)),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)))]
async fn export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    params.remove("limit");
    let every_type = !params.contains_key("type");
    let (mut query, _) = parse_query(&params)?;
    if every_type {
        // Unlike the list, the export holds anonymous and collection users too.
        query.types.clear();
    }
    // The first page is read before answering, so a refusal is a proper error.
    let first = state.directory.exchange.export_page(&principal, &query)?;
    let mut csv = UserExchange::header();
    csv.extend_from_slice(&first.csv);
    let rest = Export {
        directory: state.directory.clone(),
        principal,
        query: crate::service::index::UserQuery {
            after: first.next,
            ..query
        },
        done: first.next.is_none(),
    };
    let pages = futures_util::stream::unfold(rest, |mut export| async move {
        if export.done {
            return None;
        }
        let page = export
            .directory
            .exchange
            .export_page(&export.principal, &export.query);
        let chunk = match page {
            Ok(page) => {
                export.query.after = page.next;
                export.done = page.next.is_none();
                Ok(Bytes::from(page.csv))
            }
            Err(error) => {
                export.done = true;
                tracing::error!(%error, "CSV export stopped");
                Err(std::io::Error::other(error.to_string()))
            }
        };
        Some((chunk, export))
    });
    let head = futures_util::stream::once(async move { Ok(Bytes::from(csv)) });
    let body = Body::from_stream(futures_util::StreamExt::chain(head, pages));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"users.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    mode: ImportMode,
    /// Plan only; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Plans or applies a users CSV; 400 (or 409 on a version conflict) naming
/// the first bad line, with every problem and the plan.
#[utoipa::path(post, path = "/users/import", tag = "users", params(ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "The plan, applied unless a dry run", body = ImportReport)))]
async fn import(
    State(state): State<AppState>,
    Auth(principal): Auth,
    params: Result<Query<ImportParams>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let Query(params) = params.map_err(|e| ApiError::invalid("mode", e.body_text()))?;
    let report = state
        .directory
        .exchange
        .import(&principal, &body, params.mode, params.dry_run)
        .await?;
    Ok(report_response(report))
}

/// 200 with the report; 400 (409 when a row changed since its export) naming
/// the first problem, with every problem and the plan so far.
fn report_response(mut report: ImportReport) -> Response {
    let errors = std::mem::take(&mut report.errors);
    let Some(first) = errors.first() else {
        return Json(report).into_response();
    };
    let conflict = errors.iter().any(|e| e.conflict);
    let (status, code) = match conflict {
        true => (StatusCode::CONFLICT, "version_conflict"),
        false => (StatusCode::BAD_REQUEST, "invalid_csv"),
    };
    let place = match &first.column {
        Some(column) => format!("line {}, column {column}", first.line),
        None => format!("line {}", first.line),
    };
    let more = match errors.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let body = json!({
        "error": {
            "code": code,
            "message": format!("{place}: {}{more}; nothing was imported", first.message),
            "field": first.column,
            "line": first.line,
            "errors": errors,
        },
        "plan": report,
    });
    (status, Json(body)).into_response()
}
