//! Mail routes: the outbox for admins (list, read, retry, cancel), a test
//! mail, mail to selected users, and the public password-reset request.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::views::OutboxEntryView;
use crate::domain::mail::{MailId, MailKind, MailStatus};
use crate::domain::user::UserId;
use crate::service::mail::{MessageOutcome, OutboxQuery};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Recipients of one mail to selected users at most.
const MAX_RECIPIENTS: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mail/outbox", get(list))
        .route("/mail/outbox/{id}", get(read).delete(cancel))
        .route("/mail/outbox/{id}/retry", post(retry))
        .route("/mail/test", post(test))
        .route("/users/actions/send-email", post(send_email))
        .route("/password-reset/request", post(request_reset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<MailStatus>,
    kind: Option<MailKind>,
    to: Option<String>,
    user: Option<UserId>,
    after: Option<MailId>,
    limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) =
        query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let page = state.directory.mail.list(
        &principal,
        &OutboxQuery {
            status: query.status,
            kind: query.kind,
            to: query.to,
            user: query.user,
            after: query.after,
            limit,
        },
    )?;
    let entries: Vec<OutboxEntryView> = page.entries.iter().map(OutboxEntryView::from).collect();
    Ok(Json(json!({ "entries": entries, "next_after": page.next })))
}

fn mail_id(raw: &str) -> ApiResult<MailId> {
    raw.parse()
        .map_err(|_| ApiError::invalid("id", "must be a mail id (a positive integer)"))
}

async fn read(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.entry(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

async fn retry(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.retry(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

async fn cancel(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.cancel(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    to: String,
}

async fn test(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<TestRequest>,
) -> ApiResult<(StatusCode, Json<OutboxEntryView>)> {
    let entry = state.directory.mail.send_test(&principal, &request.to)?;
    Ok((StatusCode::ACCEPTED, Json(OutboxEntryView::from(&entry))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendEmailRequest {
    ids: Vec<UserId>,
    subject: String,
    body: String,
}

async fn send_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<SendEmailRequest>,
) -> ApiResult<Json<Value>> {
    if request.ids.is_empty() || request.ids.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(
            "ids",
            format!("select 1 to {MAX_RECIPIENTS} users"),
        ));
    }
    let outcomes = state.directory.mail.send_message(
        &principal,
        &request.ids,
        &request.subject,
        &request.body,
    )?;
    let results: Vec<Value> = outcomes.into_iter().map(outcome_json).collect();
    let queued = results.iter().filter(|r| r["result"] == "queued").count();
    Ok(Json(json!({
        "action": "send-email",
        "queued": queued,
        "not_queued": results.len() - queued,
        "results": results,
    })))
}

fn outcome_json(outcome: MessageOutcome) -> Value {
    match outcome.result {
        Ok(Ok(mail)) => json!({ "id": outcome.id, "result": "queued", "mail": mail }),
        Ok(Err(reason)) => {
            json!({ "id": outcome.id, "result": reason, "message": reason.message() })
        }
        Err(error) => {
            json!({ "id": outcome.id, "result": "error", "error": ApiError::from(error).body() })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    login: String,
}

/// Answers 202 at once, the same for every name; the work happens afterwards.
async fn request_reset(
    State(state): State<AppState>,
    super::client::ClientIp(client): super::client::ClientIp,
    ApiJson(request): ApiJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if request.login.trim().is_empty() || request.login.len() > 320 {
        state.directory.mail.admit_reset_request(client)?;
        return Err(ApiError::invalid("login", "a login or email address"));
    }
    if state.directory.mail.admit_reset_request(client)? {
        let directory = state.directory.clone();
        tokio::spawn(async move {
            let name = request.login;
            let outcome =
                tokio::task::spawn_blocking(move || directory.mail.request_password_reset(&name))
                    .await;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "password reset request failed"),
                Err(error) => tracing::warn!(%error, "password reset request task failed"),
            }
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "message": "if the account exists and may reset its password, a link is on its way" }),
        ),
    ))
}
