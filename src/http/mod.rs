//! The HTTP admin API (axum): routes, JSON shapes and authentication. Every
//! handler calls the service layer; errors map to statuses in `error.rs`.

mod account;
mod backup;
mod bulk;
mod client;
mod entries;
mod error;
mod exchange;
mod extract;
mod groups;
mod mail;
mod media;
mod openapi;
mod organizations;
mod projects;
mod records;
mod request_id;
pub mod server;
mod sso;
mod user_query;
mod users;
mod views;

pub use client::ClientIp;
pub use error::ApiError;
pub(crate) use user_query::{LISTED_BY_DEFAULT, parse_enum, wire_name};

use crate::config::HttpConfig;
use crate::service::Directory;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use std::sync::Arc;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<Directory>,
    pub sso: Arc<crate::sso::SsoProviders>,
    pub proxies: Arc<client::TrustedProxies>,
}

/// The whole admin API.
pub fn router(
    directory: Arc<Directory>,
    sso: Arc<crate::sso::SsoProviders>,
    config: &HttpConfig,
) -> Router {
    let picture_limit = directory.records.settings.media.picture_max_bytes;
    let limited = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .merge(sso::routes())
        .nest(
            "/api/v1",
            users::routes()
                .merge(bulk::routes())
                .merge(exchange::export_routes())
                .merge(account::routes())
                .merge(groups::routes())
                .merge(mail::routes())
                .merge(sso::api_routes())
                .merge(organizations::routes())
                .merge(projects::routes())
                .merge(records::routes())
                .merge(entries::routes())
                .merge(media::routes()),
        )
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ));
    let (routes, description) = limited
        .nest("/api/v1", exchange::import_routes(config.max_import_bytes))
        .nest("/api/v1", backup::routes())
        .nest("/api/v1", media::upload_routes(picture_limit))
        .split_for_parts();
    // The pages, under the same body limit and timeout as the API.
    let pages = crate::web::routes()
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ));
    routes
        .merge(pages)
        .merge(
            utoipa_swagger_ui::SwaggerUi::new(openapi::DOCS_PATH)
                .url(openapi::SPEC_PATH, openapi::finish(description)),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(axum::middleware::from_fn(track))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = %id)
        }))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(AppState {
            directory,
            sso,
            proxies: Arc::new(client::TrustedProxies::new(
                config.trusted_proxies.clone(),
                config.forwarded_header,
            )),
        })
}

/// Counts every answered request by declared route, method and status.
async fn track(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let route = route.as_ref().map_or("unmatched", |path| path.as_str());
    crate::telemetry::http_request(method.as_str(), route, response.status().as_u16(), seconds);
    response
}

/// Prometheus text: counters and histograms, and the outbox and store
/// sizes and the scheduler leadership read now.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4",
        content_type = "text/plain", body = String)))]
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let directory = state.directory.clone();
    let sizes = tokio::task::spawn_blocking(move || {
        (directory.mail.queued_count(), directory.store_size())
    })
    .await;
    let leader = *state.directory.leadership().borrow();
    if let Ok((queued, store)) = sizes {
        crate::telemetry::scraped(
            queued.unwrap_or_default(),
            store.unwrap_or_default(),
            leader,
        );
    }
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        crate::telemetry::render(),
    )
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 when every check passes, else 503; each check with its reason.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Ready", body = crate::service::readiness::Readiness),
        (status = 503, description = "Not ready; see the failing check", body = crate::service::readiness::Readiness)))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (StatusCode, axum::Json<crate::service::readiness::Readiness>) {
    let readiness = state.directory.readiness().await;
    let status = match readiness.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(readiness))
}
