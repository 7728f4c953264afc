//! Sign-in and sign-out, and one's own account: password, TOTP enrolment
//! (QR code and secret), API token, projects.

use super::pages::{Nav, failed, render};
use super::session::{WebUser, cookie_name, cookie_value, session_cookie};
use crate::http::{AppState, ClientIp};
use crate::service::LoginRequest;
use crate::sso::ProviderInfo;
use askama::Template;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    error: Option<&'static str>,
    notice: Option<&'static str>,
    login: String,
    providers: Vec<ProviderInfo>,
}

/// What the sign-in page says above the form.
enum Say {
    Nothing,
    Error(&'static str),
    Notice(&'static str),
}

async fn login_form(state: &AppState, status: StatusCode, say: Say, login: String) -> Response {
    let (error, notice) = match say {
        Say::Nothing => (None, None),
        Say::Error(message) => (Some(message), None),
        Say::Notice(message) => (None, Some(message)),
    };
    let page = LoginPage {
        nav: Nav::anonymous(),
        error,
        notice,
        login,
        providers: state.sso.list().await,
    };
    render(status, &page)
}

pub async fn login_page(State(state): State<AppState>) -> Response {
    login_form(&state, StatusCode::OK, Say::Nothing, String::new()).await
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    totp: String,
}

/// Signs in as the API does (same throttle, same one answer for every
/// refusal) and sets the session cookie.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Form(form): Form<LoginForm>,
) -> Response {
    let request = LoginRequest {
        login: form.login.clone(),
        password: form.password,
        totp: Some(form.totp.trim().to_owned()).filter(|code| !code.is_empty()),
    };
    match state.directory.signin.login(request, client).await {
        Ok(session) => {
            let max_age = state.directory.signin.settings.session_ttl.as_secs();
            let cookie = session_cookie(&session.token, max_age, state.sso.https());
            let mut response = Redirect::to("/account").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(crate::service::ServiceError::TooManyAttempts { .. }) => {
            let message = Say::Error("Too many attempts. Wait a moment and try again.");
            login_form(&state, StatusCode::TOO_MANY_REQUESTS, message, form.login).await
        }
        Err(_) => {
            let message = Say::Error("Sign-in failed. Check your login, password and code.");
            login_form(&state, StatusCode::UNAUTHORIZED, message, form.login).await
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends the session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: WebUser,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refusal) = user.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    if let Some(token) = cookie_value(&headers, cookie_name(state.sso.https())) {
        if let Err(error) = state.directory.signin.logout(&token) {
            return failed(Nav::of(&user), error);
        }
    }
    let mut response = Redirect::to("/login").into_response();
    let clear = session_cookie("", 0, state.sso.https());
    response.headers_mut().insert(header::SET_COOKIE, clear);
    response
}

/// TOTP enrolment in progress: the secret, and its QR code as SVG.
struct Enrolling {
    secret: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    notice: Option<&'static str>,
    error: Option<String>,
    login: String,
    display_name: String,
    email: String,
    two_factor: bool,
    enrolment: Option<Enrolling>,
    api_token: Option<String>,
    /// Name, kind and one's role.
    projects: Vec<(String, String, String)>,
}

/// What the account page shows besides the user's own data.
#[derive(Default)]
struct Extras {
    notice: Option<&'static str>,
    error: Option<String>,
    enrolment: Option<Enrolling>,
    api_token: Option<String>,
}

impl Extras {
    /// A notice when `result` succeeded, else its error's message.
    fn after<T>(result: crate::service::ServiceResult<T>, notice: &'static str) -> Self {
        match result {
            Ok(_) => Self {
                notice: Some(notice),
                ..Self::default()
            },
            Err(error) => Self {
                error: Some(crate::http::ApiError::from(error).message),
                ..Self::default()
            },
        }
    }
}

fn account_page(state: &AppState, user: &WebUser, extras: Extras) -> Response {
    let directory = &state.directory;
    let me = match directory.credentials.me(&user.principal) {
        Ok(me) => me,
        // An obligation (password change, 2FA) pending: the page still shows.
        Err(_) => user.principal.user.clone(),
    };
    let projects = directory
        .projects
        .my_projects(&user.principal)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name, p.kind, crate::http::wire_name(p.role)))
        .collect();
    // An obligation pending (a password change, 2FA enrolment) is said first.
    let obligation = user
        .principal
        .unrestricted()
        .err()
        .map(|pending| crate::http::ApiError::from(pending).message);
    let page = AccountPage {
        nav: Nav::of(user),
        notice: extras.notice,
        error: extras.error.or(obligation),
        login: me
            .login
            .as_ref()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default(),
        display_name: me.effective_display_name(),
        email: me
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        two_factor: me.two_factor_enabled,
        enrolment: extras.enrolment,
        api_token: extras.api_token,
        projects,
    };
    let status = match page.error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    render(status, &page)
}

pub async fn page(State(state): State<AppState>, user: WebUser) -> Response {
    account_page(&state, &user, Extras::default())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    old_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(refusal) = user.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    let changed = state
        .directory
        .credentials
        .change_own_password(&user.principal, form.old_password, form.new_password)
        .await;
    match changed {
        // Changing one's password ends one's sessions, this one too.
        Ok(()) => {
            let notice = Say::Notice("Password changed. Sign in with the new one.");
            let mut page = login_form(&state, StatusCode::OK, notice, String::new()).await;
            let clear = session_cookie("", 0, state.sso.https());
            page.headers_mut().insert(header::SET_COOKIE, clear);
            page
        }
        Err(error) => account_page(&state, &user, Extras::after(Err::<(), _>(error), "")),
    }
}

/// The QR code of an `otpauth://` URI, as SVG markup.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(192, 192)
            .build(),
        Err(_) => String::new(),
    }
}

pub async fn begin_two_factor(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refusal) = user.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    match state
        .directory
        .credentials
        .begin_two_factor(&user.principal)
    {
        Ok(enrolment) => {
            let enrolling = Enrolling {
                qr_svg: qr_svg(&enrolment.otpauth_uri),
                secret: enrolment.secret,
            };
            let extras = Extras {
                enrolment: Some(enrolling),
                ..Extras::default()
            };
            account_page(&state, &user, extras)
        }
        Err(error) => failed(Nav::of(&user), error),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    code: String,
}

pub async fn confirm_two_factor(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Err(refusal) = user.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    let confirmed = state
        .directory
        .credentials
        .confirm_two_factor(&user.principal, form.code.trim());
    let extras = Extras::after(confirmed, "Two-factor sign-in is on.");
    account_page(&state, &user, extras)
}

pub async fn issue_api_token(
    State(state): State<AppState>,
    user: WebUser,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refusal) = user.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    match state
        .directory
        .credentials
        .issue_own_api_token(&user.principal)
    {
        Ok(issued) => {
            let extras = Extras {
                api_token: Some(issued.token),
                ..Extras::default()
            };
            account_page(&state, &user, extras)
        }
        Err(error) => failed(Nav::of(&user), error),
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    nav: Nav,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

pub async fn forgot_page() -> Response {
    let page = ForgotPage {
        nav: Nav::anonymous(),
        notice: None,
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    login: String,
}

/// Asks for a reset link as the API does: the same answer whoever is named,
/// under the same limits; the work happens after the answer.
pub async fn forgot(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Form(form): Form<ForgotForm>,
) -> Response {
    let name = form.login.trim().to_owned();
    let mail = &state.directory.mail;
    let page = |status, notice, error| {
        let page = ForgotPage {
            nav: Nav::anonymous(),
            notice,
            error,
        };
        render(status, &page)
    };
    match mail.admit_reset_request(client) {
        Err(crate::service::ServiceError::TooManyAttempts { .. }) => {
            let message = Some("Too many requests from here. Wait a while and try again.");
            return page(StatusCode::TOO_MANY_REQUESTS, None, message);
        }
        Err(error) => return failed(Nav::anonymous(), error),
        Ok(false) => {}
        Ok(true) if name.is_empty() || name.len() > 320 => {
            let message = Some("Enter your login or email address.");
            return page(StatusCode::BAD_REQUEST, None, message);
        }
        Ok(true) => {
            let directory = state.directory.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(error) = directory.mail.request_password_reset(&name) {
                    tracing::warn!(%error, "password reset request failed");
                }
            });
        }
    }
    let notice = Some("If the account exists and may reset its password, a link is on its way.");
    page(StatusCode::OK, notice, None)
}
