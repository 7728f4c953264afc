//! Image routes: record thumbnails (the generating job, and serving them),
//! background jobs, and user pictures. Uploads sit outside the JSON body
//! limit, with `[pictures] max_mb` as theirs; decoding runs off the runtime.

use super::AppState;
use super::error::{ApiError, ApiResult, blocking};
use super::extract::{ApiJson, Auth, RawBody, user_id};
use super::organizations::{IdPath, number};
use super::users::UserPath;
use super::views::UserView;
use crate::domain::media::StoredImage;
use crate::service::jobs::Job;
use crate::service::records::ThumbnailSelection;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Thumbnails, jobs and reading pictures; under the JSON body limit.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(generate_thumbnails))
        .routes(routes!(read_job))
        .routes(routes!(thumbnail))
        .routes(routes!(read_picture, remove_picture))
        .routes(routes!(read_own_picture, remove_own_picture))
}

/// Picture uploads, with their own body limit.
pub fn upload_routes(max_bytes: u64) -> OpenApiRouter<AppState> {
    let limit = usize::try_from(max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    OpenApiRouter::new()
        .routes(routes!(set_picture))
        .routes(routes!(set_own_picture))
        .layer(DefaultBodyLimit::max(limit))
}

/// An image answer; browsers may keep it briefly, never sniff it.
fn image(image: StoredImage) -> Response {
    (
        [
            (header::CONTENT_TYPE, image.content_type),
            (header::CACHE_CONTROL, "private, max-age=60".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        image.data,
    )
        .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ThumbnailRequest {
    /// These records.
    #[serde(default)]
    ids: Vec<u64>,
    /// Every record with a `media` attribute and no thumbnail yet.
    #[serde(default)]
    missing: bool,
}

/// Makes thumbnails of records' `media` files in the background (admins);
/// answers 202 with the job to follow at `GET /api/v1/jobs/{id}`.
#[utoipa::path(post, path = "/resources/actions/generate-thumbnails", tag = "projects",
    request_body = ThumbnailRequest,
    responses((status = 202, description = "Started", body = Job)))]
async fn generate_thumbnails(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<ThumbnailRequest>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let selection = match (request.missing, request.ids.is_empty()) {
        (true, true) => ThumbnailSelection::Missing,
        (false, false) => ThumbnailSelection::Ids(request.ids),
        _ => {
            return Err(ApiError::invalid(
                "ids",
                "name records in `ids`, or set `missing`",
            ));
        }
    };
    let job = state.directory.generate_thumbnails(&principal, selection)?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A job's progress and its result per item.
#[utoipa::path(get, path = "/jobs/{id}", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "The job", body = Job)))]
async fn read_job(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Json<Job>> {
    Ok(Json(state.directory.job(&principal, number("id", &id)?)?))
}

/// A record's thumbnail, for those who may view the record.
#[utoipa::path(get, path = "/resources/{id}/thumbnail", tag = "projects", params(IdPath),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "JPEG, or PNG when transparent",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png")))))]
async fn thumbnail(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(IdPath { id }): Path<IdPath>,
) -> ApiResult<Response> {
    let directory = state.directory.clone();
    let id = number("id", &id)?;
    Ok(image(directory.records.thumbnail(&principal, id)?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PictureQuery {
    /// `thumbnail` for the small one.
    size: Option<String>,
}

impl PictureQuery {
    /// Whether the thumbnail is asked for; a bad query is a 400 naming it.
    fn thumbnail(
        query: Result<Query<Self>, axum::extract::rejection::QueryRejection>,
    ) -> ApiResult<bool> {
        let Query(query) =
            query.map_err(|rejection| ApiError::invalid("query", rejection.body_text()))?;
        match query.size.as_deref() {
            None | Some("full") => Ok(false),
            Some("thumbnail") => Ok(true),
            Some(_) => Err(ApiError::invalid("size", "must be full or thumbnail")),
        }
    }
}

/// A user's picture, for those who may read the user.
#[utoipa::path(get, path = "/users/{id}/picture", tag = "users", params(UserPath, PictureQuery),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "JPEG, or PNG when transparent",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png")))))]
async fn read_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(UserPath { id }): Path<UserPath>,
    query: Result<Query<PictureQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let thumbnail = PictureQuery::thumbnail(query)?;
    let picture = state
        .directory
        .accounts
        .picture(&principal, user_id(&id)?, thumbnail)?;
    Ok(image(picture))
}

/// One's own picture.
#[utoipa::path(get, path = "/me/picture", tag = "account", params(PictureQuery),
    security(("bearer" = []), ("sso_cookie" = [])),
    responses((status = 200, description = "JPEG, or PNG when transparent",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png")))))]
async fn read_own_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
    query: Result<Query<PictureQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let thumbnail = PictureQuery::thumbnail(query)?;
    let id = principal.unrestricted().map_err(ApiError::from)?.id;
    let picture = state
        .directory
        .accounts
        .picture(&principal, id, thumbnail)?;
    Ok(image(picture))
}

/// Removes a user's picture.
#[utoipa::path(delete, path = "/users/{id}/picture", tag = "users", params(UserPath),
    responses((status = 200, description = "The user, without a picture", body = UserView)))]
async fn remove_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(UserPath { id }): Path<UserPath>,
) -> ApiResult<Json<UserView>> {
    let user = state
        .directory
        .accounts
        .remove_picture(&principal, user_id(&id)?)?;
    Ok(Json(UserView::from(user.as_ref())))
}

/// Removes one's own picture.
#[utoipa::path(delete, path = "/me/picture", tag = "account",
    responses((status = 200, description = "One's account, without a picture", body = UserView)))]
async fn remove_own_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<UserView>> {
    let id = principal.unrestricted().map_err(ApiError::from)?.id;
    let user = state.directory.accounts.remove_picture(&principal, id)?;
    Ok(Json(UserView::from(user.as_ref())))
}

/// Decodes and stores a picture off the async runtime.
async fn store_picture(
    state: &AppState,
    principal: crate::service::Principal,
    id: crate::domain::user::UserId,
    body: axum::body::Bytes,
) -> ApiResult<Json<UserView>> {
    let directory = state.directory.clone();
    let user = blocking(move || directory.accounts.set_picture(&principal, id, &body)).await?;
    Ok(Json(UserView::from(user.as_ref())))
}

/// Sets a user's picture: a JPEG, PNG or WebP body, re-encoded.
#[utoipa::path(put, path = "/users/{id}/picture", tag = "users", params(UserPath),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, description = "The user, with `picture` set", body = UserView)))]
async fn set_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(UserPath { id }): Path<UserPath>,
    RawBody(body): RawBody,
) -> ApiResult<Json<UserView>> {
    let id = user_id(&id)?;
    store_picture(&state, principal, id, body).await
}

/// Sets one's own picture.
#[utoipa::path(put, path = "/me/picture", tag = "account",
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, description = "One's account, with `picture` set", body = UserView)))]
async fn set_own_picture(
    State(state): State<AppState>,
    Auth(principal): Auth,
    RawBody(body): RawBody,
) -> ApiResult<Json<UserView>> {
    let id = principal.unrestricted().map_err(ApiError::from)?.id;
    store_picture(&state, principal, id, body).await
}
