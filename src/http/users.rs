//! User administration routes: CRUD, listing, passwords, tokens, copy,
//! 2FA reset and record users' owner and access (bulk actions: `bulk`;
//! listing parameters: `user_query`).

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth, user_id};
use super::user_query::{parse_enum, parse_query, select_fields};
use super::views::UserView;
use crate::domain::credentials::TokenKind;
use crate::domain::user::{Status, User, UserId};
use crate::domain::user_input::{NewUser, UserPatch};
use crate::service::IssuedToken;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(read_user, update_user, delete_user))
        .routes(routes!(set_password))
        .routes(routes!(issue_token, revoke_token))
        .routes(routes!(copy))
        .routes(routes!(reset_two_factor))
        .routes(routes!(rescan_ftp))
        .routes(routes!(set_owner))
        .routes(routes!(set_access))
}

/// The user a route acts on.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct UserPath {
    /// The user's numeric id.
    pub id: String,
}

/// A user as the API shows it (see [`UserView`]).
pub fn user_json(user: &User) -> Value {
    serde_json::to_value(UserView::from(user)).unwrap_or(Value::Null)
}

/// Creates a user; without a password a local user is `pending` and gets an activation link.
#[utoipa::path(post, path = "/users", tag = "users",
    request_body = NewUser,
    responses((status = 201, description = "Created", body = UserView)))]
async fn create_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = state
        .directory
        .accounts
        .create_user(&principal, request)
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

#[utoipa::path(get, path = "/users/{id}", tag = "users", params(UserPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The user", body = UserView)))]
async fn read_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .accounts
        .get_user(&principal, user_id(&id)?)?;
    Ok(Json(user_json(&user)))
}

/// Changes profile fields; absent fields stay, `null` clears. A `status` of
/// `active` or `deactivated` also activates or deactivates the user, under
/// the same rules as the bulk actions, in the same unit of work.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(UserPath),
    request_body = UserUpdate,
    responses((status = 200, description = "Updated", body = UserView)))]
async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let update = UserUpdate::parse(body)?;
    let user = state.directory.accounts.update_user(
        &principal,
        user_id(&id)?,
        update.patch,
        update.status,
    )?;
    Ok(Json(user_json(&user)))
}

/// A profile change, optionally with a status change.
#[derive(ToSchema)]
struct UserUpdate {
    status: Option<Status>,
    #[schema(inline)]
    #[serde(flatten)]
    patch: UserPatch,
}

impl UserUpdate {
    /// Splits `status` off the body; the rest must be a [`UserPatch`].
    fn parse(mut body: serde_json::Map<String, Value>) -> ApiResult<Self> {
        let status = match body.remove("status") {
            Some(raw) => Some(
                serde_json::from_value::<Status>(raw)
                    .map_err(|_| ApiError::invalid("status", "must be active or deactivated"))?,
            ),
            None => None,
        };
        let rest = serde_json::to_vec(&body).unwrap_or_default();
        let patch = super::extract::parse_json(&rest)?;
        Ok(Self { status, patch })
    }
}

/// Archives (200 with the archived user) or deletes (204), per `accounts.on_delete`.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(UserPath),
    responses((status = 200, description = "Archived", body = UserView),
        (status = 204, description = "Deleted")))]
async fn delete_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(
        match state
            .directory
            .accounts
            .delete_user(&principal, user_id(&id)?)?
        {
            Some(user) => Json(user_json(&user)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

/// Lists users with filters, search and cursor paging.
#[utoipa::path(get, path = "/users", tag = "users",
    params(
        ("type" = Option<String>, Query, description = "Comma list of user types; without it, all but anonymous and collection"),
        ("status" = Option<String>, Query, description = "Comma list of statuses"),
        ("group" = Option<String>, Query, description = "Members of this group"),
        ("exclude_group" = Option<String>, Query, description = "Not members of this group"),
        ("organization" = Option<u64>, Query, description = "Members of this organization"),
        ("archived" = Option<String>, Query, description = "exclude (default), only or include"),
        ("archived_after" = Option<String>, Query, description = "RFC 3339"),
        ("archived_before" = Option<String>, Query, description = "RFC 3339"),
        ("q" = Option<String>, Query, description = "Text search, case- and accent-insensitive"),
        ("search_fields" = Option<String>, Query, description = "Comma list of fields `q` searches"),
        ("fields" = Option<String>, Query, description = "Comma list of fields to return (and `id`)"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "One page", body = UserPage)))]
async fn list_users(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<UserPage>> {
    let (query, fields) = parse_query(&params)?;
    let page = state.directory.accounts.list_users(&principal, &query)?;
    let users: Vec<Value> = page
        .users
        .iter()
        .map(|user| match &fields {
            Some(fields) => select_fields(user_json(user), fields),
            None => user_json(user),
        })
        .collect();
    Ok(Json(UserPage {
        users,
        next_cursor: page.next_cursor,
    }))
}

/// One page of users; fetch the next with `cursor=next_cursor`.
#[derive(serde::Serialize, ToSchema)]
struct UserPage {
    /// Users, or only their selected `fields`.
    #[schema(value_type = Vec<UserView>)]
    users: Vec<Value>,
    next_cursor: Option<UserId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPasswordRequest {
    password: String,
    #[serde(default)]
    override_policy: bool,
}

/// Sets a user's password (an admin's change).
#[utoipa::path(post, path = "/users/{id}/password", tag = "users", params(UserPath),
    request_body = SetPasswordRequest,
    responses((status = 204, description = "Set")))]
async fn set_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    state
        .directory
        .accounts
        .set_password(
            &principal,
            user_id(&id)?,
            request.password,
            request.override_policy,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The token routes under a user, one per kind an admin may issue.
#[derive(Clone, Copy, Deserialize, ToSchema)]
enum TokenRoute {
    #[serde(rename = "api-token")]
    Api,
    #[serde(rename = "activation-token")]
    Activation,
    #[serde(rename = "reset-token")]
    Reset,
    #[serde(rename = "email-confirmation-token")]
    EmailConfirmation,
}

impl From<TokenRoute> for TokenKind {
    fn from(route: TokenRoute) -> Self {
        match route {
            TokenRoute::Api => Self::Api,
            TokenRoute::Activation => Self::Activation,
            TokenRoute::Reset => Self::PasswordReset,
            TokenRoute::EmailConfirmation => Self::EmailConfirmation,
        }
    }
}

/// The token kind a path segment names; anything else is no route.
fn token_kind(segment: &str) -> ApiResult<TokenKind> {
    parse_enum::<TokenRoute>(segment)
        .map(TokenKind::from)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route"))
}

/// Issues a user's token of this kind, replacing the old one; shown once,
/// with its link for activation, reset and confirmation tokens.
#[utoipa::path(post, path = "/users/{id}/{token}", tag = "users",
    params(UserPath, ("token" = inline(TokenRoute), Path, description = "Which token")),
    responses((status = 201, description = "Shown once", body = IssuedToken)))]
async fn issue_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, route)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let kind = token_kind(&route)?;
    let issued = state
        .directory
        .credentials
        .issue_token_for(&principal, user_id(&id)?, kind)?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revokes a user's token of this kind.
#[utoipa::path(delete, path = "/users/{id}/{token}", tag = "users",
    params(UserPath, ("token" = inline(TokenRoute), Path, description = "Which token")),
    responses((status = 204, description = "Revoked")))]
async fn revoke_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, route)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let kind = token_kind(&route)?;
    state
        .directory
        .credentials
        .revoke_token_for(&principal, user_id(&id)?, kind)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CopyRequest {
    login: Option<String>,
    email: Option<String>,
}

/// Creates a user like this one (groups, roles, settings) with a new login and email.
#[utoipa::path(post, path = "/users/{id}/copy", tag = "users", params(UserPath),
    request_body = CopyRequest,
    responses((status = 201, description = "The copy", body = UserView)))]
async fn copy(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CopyRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = state.directory.accounts.copy_user(
        &principal,
        user_id(&id)?,
        request.login,
        request.email,
    )?;
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

/// Removes a user's second factor.
#[utoipa::path(delete, path = "/users/{id}/2fa", tag = "users", params(UserPath),
    responses((status = 200, description = "2FA removed", body = UserView)))]
async fn reset_two_factor(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .credentials
        .reset_two_factor(&principal, user_id(&id)?)?;
    Ok(Json(user_json(&user)))
}

/// Recounts a user's FTP usage from their home.
#[utoipa::path(post, path = "/users/{id}/ftp/rescan", tag = "users", params(UserPath),
    responses((status = 200, description = "Usage recounted", body = UserView)))]
async fn rescan_ftp(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state.directory.ftp.rescan_ftp(&principal, user_id(&id)?)?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OwnerChoice {
    owner: UserId,
}

/// Sets the owner of a record user.
#[utoipa::path(put, path = "/users/{id}/owner", tag = "users", params(UserPath),
    request_body = OwnerChoice,
    responses((status = 200, description = "Owner set", body = UserView)))]
async fn set_owner(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OwnerChoice>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .accounts
        .set_record_owner(&principal, user_id(&id)?, body.owner)?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccessList {
    grants: Vec<crate::domain::user::AccessGrant>,
}

/// Replaces the access list of a record user.
#[utoipa::path(put, path = "/users/{id}/access", tag = "users", params(UserPath),
    request_body = AccessList,
    responses((status = 200, description = "Access set", body = UserView)))]
async fn set_access(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccessList>,
) -> ApiResult<Json<Value>> {
    let user =
        state
            .directory
            .accounts
            .set_record_access(&principal, user_id(&id)?, body.grants)?;
    Ok(Json(user_json(&user)))
}
