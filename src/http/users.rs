//! User administration routes: CRUD, listing with filters, bulk actions,
//! passwords, tokens, copy and 2FA reset.

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, Auth, user_id};
use super::views::UserView;
use crate::domain::credentials::TokenKind;
use crate::domain::roles::SystemRole;
use crate::domain::user::{Status, User, UserId, UserType};
use crate::domain::user_input::{NewUser, UserPatch};
use crate::service::BulkAction;
use crate::service::index::{ArchivedFilter, DEFAULT_SEARCH_FIELDS, SEARCH_FIELDS, UserQuery};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
const MAX_BULK_IDS: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/actions/{action}", post(bulk))
        .route("/users/{id}", get(read).patch(update).delete(remove))
        .route("/users/{id}/password", post(set_password))
        .route("/users/{id}/api-token", token_routes(TokenKind::Api))
        .route(
            "/users/{id}/activation-token",
            token_routes(TokenKind::Activation),
        )
        .route(
            "/users/{id}/reset-token",
            token_routes(TokenKind::PasswordReset),
        )
        .route(
            "/users/{id}/email-confirmation-token",
            token_routes(TokenKind::EmailConfirmation),
        )
        .route("/users/{id}/copy", post(copy))
        .route("/users/{id}/2fa", axum::routing::delete(reset_two_factor))
        .route("/users/{id}/ftp/rescan", post(rescan_ftp))
        .route("/users/{id}/owner", axum::routing::put(set_owner))
        .route("/users/{id}/access", axum::routing::put(set_access))
}

/// A user as the API shows it (see [`UserView`]).
pub fn user_json(user: &User) -> Value {
    serde_json::to_value(UserView::from(user)).unwrap_or(Value::Null)
}

/// Field names a `fields` selection may use.
static USER_FIELDS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    let sample = User::new(
        0,
        UserType::Local,
        Status::Active,
        chrono::DateTime::UNIX_EPOCH,
    );
    match user_json(&sample) {
        Value::Object(map) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
});

async fn create(
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

async fn read(
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

async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<Value>> {
    let user = state
        .directory
        .accounts
        .update_user(&principal, user_id(&id)?, patch)?;
    Ok(Json(user_json(&user)))
}

/// Archives or deletes per `accounts.on_delete`: 200 with the archived user, or 204.
async fn remove(
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

/// Splits a comma list, parsing each item with `parse`; errors name `field`.
fn comma_list<T>(field: &str, raw: &str, parse: impl Fn(&str) -> Option<T>) -> ApiResult<Vec<T>> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            parse(item).ok_or_else(|| ApiError::invalid(field, format!("unknown value `{item}`")))
        })
        .collect()
}

fn parse_enum<T: serde::de::DeserializeOwned>(item: &str) -> Option<T> {
    serde_json::from_value(Value::String(item.to_owned())).ok()
}

fn parse_time(field: &str, raw: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 timestamp"))
}

/// Reads the listing parameters; an unknown parameter or bad value is a 400 naming it.
pub(super) fn parse_query(
    params: &HashMap<String, String>,
) -> ApiResult<(UserQuery, Option<Vec<String>>)> {
    let mut query = UserQuery {
        limit: DEFAULT_PAGE,
        search_fields: DEFAULT_SEARCH_FIELDS.to_vec(),
        ..Default::default()
    };
    let mut fields = None;
    for (key, raw) in params {
        match key.as_str() {
            "type" => query.types = comma_list(key, raw, parse_enum)?,
            "status" => query.statuses = comma_list(key, raw, parse_enum)?,
            "group" => query.group = Some(raw.clone()),
            "exclude_group" => query.exclude_group = Some(raw.clone()),
            "archived" => {
                query.archived = match raw.as_str() {
                    "exclude" => ArchivedFilter::Exclude,
                    "only" => ArchivedFilter::Only,
                    "include" => ArchivedFilter::Include,
                    _ => return Err(ApiError::invalid(key, "must be exclude, only or include")),
                }
            }
            "archived_after" => query.archived_after = Some(parse_time(key, raw)?),
            "archived_before" => query.archived_before = Some(parse_time(key, raw)?),
            "q" => query.text = Some(crate::domain::names::fold(raw)).filter(|q| !q.is_empty()),
            "search_fields" => {
                query.search_fields = comma_list(key, raw, |name| {
                    SEARCH_FIELDS.iter().position(|(n, _)| *n == name)
                })?
            }
            "fields" => {
                let names = comma_list(key, raw, |name| {
                    USER_FIELDS.contains(name).then(|| name.to_owned())
                })?;
                fields = Some(names);
            }
            "limit" => {
                query.limit = raw
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::invalid(key, format!("must be 1 to {MAX_PAGE}")))?
            }
            "cursor" => {
                query.after = Some(
                    raw.parse()
                        .map_err(|_| ApiError::invalid(key, "must be a cursor from next_cursor"))?,
                )
            }
            _ => return Err(ApiError::invalid(key.clone(), "unknown query parameter")),
        }
    }
    Ok((query, fields))
}

/// Keeps `id` and the selected fields of a user's JSON.
fn select_fields(mut value: Value, fields: &[String]) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|key, _| key == "id" || fields.iter().any(|f| f == key));
    }
    value
}

async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(
        json!({ "users": users, "next_cursor": page.next_cursor }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    ids: Vec<UserId>,
    roles: Option<BTreeSet<SystemRole>>,
    groups: Option<BTreeSet<String>>,
    quota_mb: Option<u64>,
    quota_files: Option<u64>,
    #[serde(default)]
    activate: bool,
    projects: Option<Vec<ProjectRoleEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectRoleEntry {
    id: u64,
    role: crate::domain::projects::ProjectRole,
}

/// Builds the action named in the path from the request's parameters.
fn bulk_action(name: &str, request: &BulkRequest) -> ApiResult<BulkAction> {
    let groups = || {
        request
            .groups
            .clone()
            .ok_or_else(|| ApiError::invalid("groups", "required for this action"))
    };
    Ok(match name {
        "activate" => BulkAction::Activate,
        "deactivate" => BulkAction::Deactivate,
        "delete" => BulkAction::Delete,
        "mask" => BulkAction::Mask,
        "set-system-roles" => BulkAction::SetSystemRoles(
            request
                .roles
                .clone()
                .ok_or_else(|| ApiError::invalid("roles", "required for this action"))?,
        ),
        "add-to-groups" => BulkAction::AddToGroups(groups()?),
        "remove-from-groups" => BulkAction::RemoveFromGroups(groups()?),
        "create-ftp-accounts" => BulkAction::CreateFtpAccounts {
            quota_mb: request.quota_mb,
            quota_files: request.quota_files,
            activate: request.activate,
        },
        "delete-ftp-accounts" => BulkAction::DeleteFtpAccounts,
        "ftp-rescan" => BulkAction::RescanFtp,
        "set-roles" => BulkAction::SetRoles {
            projects: request
                .projects
                .as_ref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ApiError::invalid("projects", "name at least one project and role"))?
                .iter()
                .map(|entry| (entry.id, entry.role))
                .collect(),
            activate: request.activate,
        },
        _ => return Err(ApiError::not_found("action")),
    })
}

async fn bulk(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<BulkRequest>,
) -> ApiResult<Json<Value>> {
    let action = bulk_action(&name, &request)?;
    if request.ids.is_empty() || request.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!("select 1 to {MAX_BULK_IDS} users"),
        ));
    }
    let outcomes = state.directory.bulk(&principal, &action, &request.ids)?;
    let succeeded = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|outcome| match outcome.result {
            Ok(user) => {
                json!({ "id": outcome.id, "ok": true, "user": user.map(|u| user_json(&u)) })
            }
            Err(error) => {
                json!({ "id": outcome.id, "ok": false, "error": ApiError::from(error).body() })
            }
        })
        .collect();
    let failed = results.len() - succeeded;
    Ok(Json(
        json!({ "action": name, "succeeded": succeeded, "failed": failed, "results": results }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPasswordRequest {
    password: String,
    #[serde(default)]
    override_policy: bool,
}

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

/// `POST` issues (replacing) and `DELETE` revokes a user's token of `kind`.
fn token_routes(kind: TokenKind) -> axum::routing::MethodRouter<AppState> {
    post(move |State(state): State<AppState>, Auth(principal): Auth, Path(id): Path<String>| async move {
        let issued = state.directory.credentials.issue_token_for(&principal, user_id(&id)?, kind)?;
        ApiResult::Ok((StatusCode::CREATED, Json(issued)))
    })
    .delete(move |State(state): State<AppState>, Auth(principal): Auth, Path(id): Path<String>| async move {
        state.directory.credentials.revoke_token_for(&principal, user_id(&id)?, kind)?;
        ApiResult::Ok(StatusCode::NO_CONTENT)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyRequest {
    login: Option<String>,
    email: Option<String>,
}

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

async fn rescan_ftp(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state.directory.ftp.rescan_ftp(&principal, user_id(&id)?)?;
    Ok(Json(user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerChoice {
    owner: UserId,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessList {
    grants: Vec<crate::domain::user::AccessGrant>,
}

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
