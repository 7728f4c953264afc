//! Mail routes: the outbox for admins (list, read, retry, cancel), a test
//! mail, mail to selected users, and the public password-reset request.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth};
use super::views::OutboxEntryView;
use crate::domain::mail::{MailId, MailKind, MailStatus};
use crate::domain::user::UserId;
use crate::service::mail::{MessageOutcome, OutboxQuery};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Recipients of one mail to selected users at most.
const MAX_RECIPIENTS: usize = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_outbox))
        .routes(routes!(read_mail, cancel_mail))
        .routes(routes!(retry_mail))
        .routes(routes!(send_test_mail))
        .routes(routes!(send_email))
        .routes(routes!(request_reset))
}

/// One page of the outbox, oldest first.
#[derive(Serialize, ToSchema)]
struct OutboxPage {
    entries: Vec<OutboxEntryView>,
    /// Pass as `after` for the next page; null on the last.
    next_after: Option<MailId>,
}

/// The outbox entry a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct MailPath {
    /// The mail's id.
    id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<MailStatus>,
    kind: Option<MailKind>,
    to: Option<String>,
    user: Option<UserId>,
    after: Option<MailId>,
    limit: Option<usize>,
}

/// The outbox: queued, sent, failed and cancelled mails, with filters.
#[utoipa::path(get, path = "/mail/outbox", tag = "mail", params(ListQuery),
    responses((status = 200, description = "One page", body = OutboxPage)))]
async fn list_outbox(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<OutboxPage>> {
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
    Ok(Json(OutboxPage {
        entries,
        next_after: page.next,
    }))
}

fn mail_id(raw: &str) -> ApiResult<MailId> {
    raw.parse()
        .map_err(|_| ApiError::invalid("id", "must be a mail id (a positive integer)"))
}

/// One outbox entry.
#[utoipa::path(get, path = "/mail/outbox/{id}", tag = "mail", params(MailPath),
    responses((status = 200, description = "The entry", body = OutboxEntryView)))]
async fn read_mail(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MailPath { id }): Path<MailPath>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.entry(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

/// Sends a failed or cancelled mail again, now.
#[utoipa::path(post, path = "/mail/outbox/{id}/retry", tag = "mail", params(MailPath),
    responses((status = 200, description = "Queued again", body = OutboxEntryView)))]
async fn retry_mail(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MailPath { id }): Path<MailPath>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.retry(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

/// Cancels a queued mail.
#[utoipa::path(delete, path = "/mail/outbox/{id}", tag = "mail", params(MailPath),
    responses((status = 200, description = "Cancelled", body = OutboxEntryView)))]
async fn cancel_mail(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(MailPath { id }): Path<MailPath>,
) -> ApiResult<Json<OutboxEntryView>> {
    let entry = state.directory.mail.cancel(&principal, mail_id(&id)?)?;
    Ok(Json(OutboxEntryView::from(&entry)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    to: String,
}

/// Queues a test mail to an address.
#[utoipa::path(post, path = "/mail/test", tag = "mail", request_body = TestRequest,
    responses((status = 202, description = "Queued", body = OutboxEntryView)))]
async fn send_test_mail(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<TestRequest>,
) -> ApiResult<(StatusCode, Json<OutboxEntryView>)> {
    let entry = state.directory.mail.send_test(&principal, &request.to)?;
    Ok((StatusCode::ACCEPTED, Json(OutboxEntryView::from(&entry))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendEmailRequest {
    ids: Vec<UserId>,
    subject: String,
    body: String,
}

/// Mails a subject and text to selected users, one result per id.
#[utoipa::path(post, path = "/users/actions/send-email", tag = "mail",
    request_body = SendEmailRequest,
    responses((status = 200, description = "Per-id results", body = SendEmailAnswer)))]
async fn send_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<SendEmailRequest>,
) -> ApiResult<Json<SendEmailAnswer>> {
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
    let results: Vec<SendEmailResult> = outcomes.into_iter().map(SendEmailResult::from).collect();
    let queued = results.iter().filter(|r| r.mail.is_some()).count();
    Ok(Json(SendEmailAnswer {
        action: "send-email",
        queued,
        not_queued: results.len() - queued,
        results,
    }))
}

/// What mailing each selected user came to.
#[derive(Serialize, ToSchema)]
struct SendEmailAnswer {
    action: &'static str,
    queued: usize,
    not_queued: usize,
    results: Vec<SendEmailResult>,
}

/// One user's result: `queued` with the mail's id, a reason it was not
/// queued (`no_address`, `masked`, `deleted`, `schedule_never`, `mail_off`),
/// or `error`.
#[derive(Serialize, ToSchema)]
struct SendEmailResult {
    id: UserId,
    result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mail: Option<MailId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<super::error::ErrorDetail>,
}

impl From<MessageOutcome> for SendEmailResult {
    fn from(outcome: MessageOutcome) -> Self {
        let mut result = Self {
            id: outcome.id,
            result: "queued".into(),
            mail: None,
            message: None,
            error: None,
        };
        match outcome.result {
            Ok(Ok(mail)) => result.mail = Some(mail),
            Ok(Err(reason)) => {
                result.result = reason.code().into();
                result.message = Some(reason.message());
            }
            Err(error) => {
                result.result = "error".into();
                result.error = Some(ApiError::from(error).body());
            }
        }
        result
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    login: String,
}

/// The same answer for every name, at once.
#[derive(Serialize, ToSchema)]
struct ResetAnswer {
    message: &'static str,
}

/// Asks for a password-reset link by login or email. Answers 202 at once, the
/// same for every name; the work happens afterwards.
#[utoipa::path(post, path = "/password-reset/request", tag = "account", security(()),
    request_body = ResetRequest,
    responses((status = 202, description = "Accepted", body = ResetAnswer)))]
async fn request_reset(
    State(state): State<AppState>,
    super::client::ClientIp(client): super::client::ClientIp,
    ApiJson(request): ApiJson<ResetRequest>,
) -> ApiResult<(StatusCode, Json<ResetAnswer>)> {
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
        Json(ResetAnswer {
            message: "if the account exists and may reset its password, a link is on its way",
        }),
    ))
}
