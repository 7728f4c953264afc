//! Public and self-service routes: sign-in, registration, token redemption,
//! and the signed-in user's own record, password, API token and 2FA.

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use super::users::user_json;
use super::views::UserView;
use crate::domain::user_input::Registration;
use crate::service::{Enrolment, IssuedToken, LoginRequest, Session};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(register))
        .routes(routes!(activate))
        .routes(routes!(reset_password))
        .routes(routes!(confirm_email))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(issue_api_token))
        .routes(routes!(begin_two_factor, disable_two_factor))
        .routes(routes!(confirm_two_factor))
}

/// A new session.
#[derive(Serialize, ToSchema)]
struct SessionAnswer {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    user: UserView,
}

/// Signs in with login (or email) and password, plus a 2FA code when enrolled.
#[utoipa::path(post, path = "/login", tag = "account", security(()),
    request_body = LoginRequest,
    responses((status = 200, description = "Signed in", body = SessionAnswer)))]
async fn login(
    State(state): State<AppState>,
    super::client::ClientIp(client): super::client::ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<SessionAnswer>> {
    let session: Session = state.directory.signin.login(request, client).await?;
    Ok(Json(SessionAnswer {
        token: session.token,
        expires_at: session.expires_at,
        user: UserView::from(session.user.as_ref()),
    }))
}

/// Registers a visitor as a pending, self-registered user.
#[utoipa::path(post, path = "/register", tag = "account", security(()),
    request_body = Registration,
    responses((status = 201, description = "Registered, pending approval", body = UserView)))]
async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<Registration>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = state.directory.accounts.register(request).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenWithPassword {
    token: String,
    password: String,
}

/// Redeems an activation link's token, setting the first password.
#[utoipa::path(post, path = "/activate", tag = "account", security(()),
    request_body = TokenWithPassword,
    responses((status = 200, description = "Activated", body = UserView)))]
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

/// Redeems a password-reset link's token.
#[utoipa::path(post, path = "/password-reset", tag = "account", security(()),
    request_body = TokenWithPassword,
    responses((status = 200, description = "Password set", body = UserView)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenOnly {
    token: String,
}

/// Redeems an email-confirmation link's token.
#[utoipa::path(post, path = "/confirm-email", tag = "account", security(()),
    request_body = TokenOnly,
    responses((status = 200, description = "Address confirmed", body = UserView)))]
async fn confirm_email(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenOnly>,
) -> ApiResult<Json<Value>> {
    let user = state.directory.credentials.confirm_email(&request.token)?;
    Ok(Json(user_json(&user)))
}

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "account", security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The signed-in user", body = UserView)))]
async fn me(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Json<Value>> {
    let user = state.directory.credentials.me(&principal)?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// Changes one's own password, proving the old one.
#[utoipa::path(post, path = "/me/password", tag = "account",
    request_body = PasswordChange,
    responses((status = 204, description = "Changed")))]
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

/// Issues one's own API token (also the FTP password of SSO users), replacing the old one.
#[utoipa::path(post, path = "/me/api-token", tag = "account",
    responses((status = 201, description = "Shown once", body = IssuedToken)))]
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

/// Starts TOTP enrolment: the secret and its `otpauth://` URI.
#[utoipa::path(post, path = "/me/2fa", tag = "account",
    responses((status = 201, description = "Enrolment started", body = Enrolment)))]
async fn begin_two_factor(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<(StatusCode, Json<Enrolment>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.directory.credentials.begin_two_factor(&principal)?),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// Confirms TOTP enrolment with a current code.
#[utoipa::path(post, path = "/me/2fa/confirm", tag = "account",
    request_body = Code,
    responses((status = 200, description = "2FA on", body = UserView)))]
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

/// Turns one's own TOTP off with a current code.
#[utoipa::path(delete, path = "/me/2fa", tag = "account",
    request_body = Code,
    responses((status = 200, description = "2FA off", body = UserView)))]
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
