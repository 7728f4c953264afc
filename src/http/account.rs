//! Public and self-service routes: sign-in, registration, token redemption,
//! and the signed-in user's own record, password, API token and 2FA.

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use super::users::user_json;
use crate::domain::user_input::Registration;
use crate::service::{Enrolment, IssuedToken, LoginRequest, Session};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/register", post(register))
        .route("/activate", post(activate))
        .route("/password-reset", post(reset_password))
        .route("/confirm-email", post(confirm_email))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
        .route("/me/api-token", post(issue_api_token))
        .route("/me/2fa", post(begin_two_factor).delete(disable_two_factor))
        .route("/me/2fa/confirm", post(confirm_two_factor))
}

async fn login(
    State(state): State<AppState>,
    super::client::ClientIp(client): super::client::ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<Value>> {
    let session: Session = state.directory.signin.login(request, client).await?;
    Ok(Json(json!({
        "token": session.token,
        "expires_at": session.expires_at,
        "user": user_json(&session.user),
    })))
}

async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<Registration>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = state.directory.accounts.register(request).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenWithPassword {
    token: String,
    password: String,
}

async fn activate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenWithPassword>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .credentials
        .activate_with_token(&request.token, request.password)
        .await?;
    Ok(Json(user_json(&user)))
}

async fn reset_password(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenWithPassword>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .credentials
        .reset_password_with_token(&request.token, request.password)
        .await?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    token: String,
}

async fn confirm_email(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenOnly>,
) -> ApiResult<Json<Value>> {
    let user = state.directory.credentials.confirm_email(&request.token)?;
    Ok(Json(user_json(&user)))
}

async fn me(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Json<Value>> {
    let user = state.directory.credentials.me(&principal)?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .credentials
        .change_own_password(&principal, request.old_password, request.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn issue_api_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .directory
                .credentials
                .issue_own_api_token(&principal)?,
        ),
    ))
}

async fn begin_two_factor(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<(StatusCode, Json<Enrolment>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.directory.credentials.begin_two_factor(&principal)?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

async fn confirm_two_factor(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<Code>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .credentials
        .confirm_two_factor(&principal, &request.code)?;
    Ok(Json(user_json(&user)))
}

async fn disable_two_factor(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<Code>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .credentials
        .disable_own_two_factor(&principal, &request.code)?;
    Ok(Json(user_json(&user)))
}
