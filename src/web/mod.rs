//! Server-rendered pages (askama templates; htmx, served from here, only
//! for partial updates): sign-in, one's own
//! account (password, TOTP enrolment with a QR code, API token, projects),
//! project pages (members, records and who is assigned) and, for users with a
//! system role, the dashboard and the users changelist with its bulk actions. Pages call the same services as the API, so every
//! rule holds; forms carry a CSRF token; every answer carries a strict
//! Content-Security-Policy and clickjacking headers.

mod account;
mod admin;
mod directory;
mod exchange;
mod pages;
mod projects;
mod records;
pub mod session;

use crate::http::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

/// The stylesheet, built into the binary.
const STYLESHEET: &str = include_str!("../../assets/gatehouse.css");
/// htmx 2.0.11 (0BSD, from npm `htmx.org`), for partial updates; every page
/// works without it.
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");

/// Scripts only from this site's own files (htmx), never inline; no
/// framing; forms only to this site.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/assets/gatehouse.css", get(stylesheet))
        .route("/assets/htmx.min.js", get(htmx))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route("/forgot", get(account::forgot_page).post(account::forgot))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/2fa", post(account::begin_two_factor))
        .route("/account/2fa/confirm", post(account::confirm_two_factor))
        .route("/account/api-token", post(account::issue_api_token))
        .route("/projects", get(projects::list))
        .route("/projects/{id}", get(projects::page))
        .route("/projects/{id}/members", post(projects::members))
        .route("/projects/{id}/records", post(projects::records))
        .route("/projects/{id}/thumbnails", post(projects::thumbnails))
        .route("/jobs/{id}/progress", get(projects::job_progress))
        .route("/admin", get(admin::dashboard))
        .route("/admin/users", get(admin::users).post(admin::users_action))
        .route(
            "/admin/users/import",
            get(exchange::page).post(exchange::import),
        )
        .route(
            "/admin/users/{id}",
            get(records::user).post(records::change_user),
        )
        .route(
            "/admin/groups",
            get(directory::page).post(directory::groups),
        )
        .route("/admin/organizations", post(directory::organizations))
        .route("/admin/audit", get(records::audit))
        .route("/admin/outbox", get(records::outbox))
        .layer(axum::middleware::from_fn(same_site_posts))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Form posts from other sites are refused before any handler runs.
async fn same_site_posts(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() == axum::http::Method::POST && session::cross_site(request.headers()) {
        return pages::refused("Forms are only accepted from this site's own pages.");
    }
    next.run(request).await
}

async fn htmx() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        HTMX,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// Headers every page answer carries.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
