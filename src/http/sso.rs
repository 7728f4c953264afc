//! Single sign-on routes: `/sso/{provider}/login` sends the browser to the
//! provider, `/sso/{provider}/callback` brings it back signed in (a session
//! cookie and a redirect, or the session as JSON), and
//! `/api/v1/sso/providers` lists the providers for sign-in pages. Every
//! failure gets the same neutral answer; the reason goes to the log.

use super::AppState;
use super::users::user_json;
use crate::sso::{Answer, SsoFailure};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The cookie carrying the state from the login to the callback; under
/// https with the `__Host-` prefix, so no sibling host can plant one.
fn state_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-gh_sso_state"
    } else {
        "gh_sso_state"
    }
}
pub use crate::web::session::cookie_value;

/// `/sso/...`, mounted at the root.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sso_login))
        .routes(routes!(sso_callback))
}

/// `/sso/providers`, mounted under `/api/v1`.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(providers))
}

/// The configured providers, for sign-in pages.
#[derive(Serialize, ToSchema)]
struct ProviderList {
    providers: Vec<crate::sso::ProviderInfo>,
}

/// The configured providers with their login (and logout) URLs; no network call.
#[utoipa::path(get, path = "/sso/providers", tag = "sso", security(()),
    responses((status = 200, description = "The providers", body = ProviderList)))]
async fn providers(State(state): State<AppState>) -> Json<ProviderList> {
    Json(ProviderList {
        providers: state.sso.list().await,
    })
}

/// The provider a sign-in goes through.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct ProviderPath {
    /// The provider's configured `name`.
    provider: String,
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

/// The one answer every failed sign-in gets.
fn neutral(provider: &str, failure: &SsoFailure, json: bool) -> Response {
    tracing::info!(provider, reason = %failure, "single sign-on refused");
    let message = "single sign-on did not succeed; try again or ask your administrator";
    if json {
        let body = json!({ "error": { "code": "sso_failed", "message": message } });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>\
         <body><h1>Sign-in failed</h1><p>The {message}.</p><p><a href=\"/\">Back</a></p></body></html>"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

fn cookie(name: &str, value: &str, max_age: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).ok()
}

/// Answers carrying a session are never cached.
fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LoginQuery {
    /// A path on this site to return to after signing in.
    return_to: Option<String>,
    /// `json` to get the session as JSON at the callback.
    response: Option<String>,
}

/// Starts a sign-in: a 303 to the provider, with a state cookie.
#[utoipa::path(get, path = "/sso/{provider}/login", tag = "sso", security(()),
    params(ProviderPath, LoginQuery),
    responses((status = 303, description = "To the provider's sign-in page")))]
async fn sso_login(
    State(state): State<AppState>,
    super::client::ClientIp(client): super::client::ClientIp,
    Path(ProviderPath { provider }): Path<ProviderPath>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let answer = match query.response.as_deref() {
        Some("json") => Answer::Json,
        _ => Answer::Redirect,
    };
    let json = wants_json(&headers) || answer == Answer::Json;
    let return_to = query.return_to.as_deref();
    match state.sso.begin(&provider, return_to, answer, client).await {
        Ok((url, login_state)) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            if let Ok(location) = HeaderValue::from_str(&url) {
                headers.insert(header::LOCATION, location);
            }
            let https = state.sso.https();
            let max_age = state.sso.login_timeout().as_secs();
            if let Some(value) = cookie(state_cookie_name(https), &login_state, max_age, https) {
                headers.insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(SsoFailure::UnknownProvider(_)) => {
            super::ApiError::not_found("SSO provider").into_response()
        }
        Err(failure) => neutral(&provider, &failure, json),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Where the provider sends the browser back: signs in and answers with the
/// `gh_session` cookie and a 303 to `return_to`, or the session as JSON.
#[utoipa::path(get, path = "/sso/{provider}/callback", tag = "sso", security(()),
    params(ProviderPath, CallbackQuery),
    responses((status = 303, description = "Signed in; the session cookie is set"),
        (status = 200, description = "Signed in (JSON answer)", body = serde_json::Value)))]
async fn sso_callback(
    State(state): State<AppState>,
    Path(ProviderPath { provider }): Path<ProviderPath>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let https = state.sso.https();
    let name = state_cookie_name(https);
    let mut response = finish(&state, &provider, query, &headers).await;
    // The state is used up either way.
    if let Some(clear) = cookie(name, "", 0, https) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

async fn finish(
    state: &AppState,
    provider: &str,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Response {
    let json = wants_json(headers);
    if let Some(error) = query.error {
        return neutral(provider, &SsoFailure::ProviderError(error), json);
    }
    let (Some(code), Some(login_state)) = (query.code, query.state) else {
        return neutral(provider, &SsoFailure::BadState, json);
    };
    let https = state.sso.https();
    let browser_state = cookie_value(headers, state_cookie_name(https));
    let verified = match state
        .sso
        .finish(provider, &login_state, browser_state.as_deref(), &code)
        .await
    {
        Ok(verified) => verified,
        Err(failure) => return neutral(provider, &failure, json),
    };
    let json = json || verified.answer == Answer::Json;
    let session = match state
        .directory
        .signin
        .sso_sign_in(&verified.identity, &verified.policy)
    {
        Ok(Ok(session)) => session,
        Ok(Err(refusal)) => return neutral(provider, &SsoFailure::Refused(refusal), json),
        Err(error) => return neutral(provider, &SsoFailure::Internal(error.to_string()), json),
    };
    tracing::info!(
        provider,
        user_id = session.user.id,
        "signed in through single sign-on"
    );
    let mut response = if json {
        Json(json!({
            "token": session.token,
            "expires_at": session.expires_at,
            "user": user_json(&session.user),
        }))
        .into_response()
    } else {
        let max_age = session
            .expires_at
            .map(|at| {
                (at - state.directory.now())
                    .num_seconds()
                    .max(0)
                    .unsigned_abs()
            })
            .unwrap_or_default();
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&verified.return_to) {
            headers.insert(header::LOCATION, location);
        }
        let name = crate::web::session::cookie_name(https);
        if let Some(value) = cookie(name, &session.token, max_age, https) {
            headers.append(header::SET_COOKIE, value);
        }
        response
    };
    no_store(&mut response);
    response
}
