//! What every page shares: the navigation, rendering a template into a
//! response, and the message page for refusals and errors.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// The navigation bar's inputs.
pub struct Nav {
    pub signed_in: bool,
    /// Whether the admin pages are offered (a system role).
    pub admin: bool,
    pub csrf: String,
}

impl Nav {
    pub fn anonymous() -> Self {
        Self {
            signed_in: false,
            admin: false,
            csrf: String::new(),
        }
    }

    pub fn of(user: &super::session::WebUser) -> Self {
        Self {
            signed_in: true,
            admin: !user.principal.user.system_roles.is_empty(),
            csrf: user.csrf.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
}

/// Renders `page` with `status`; a template failure is logged and a 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "page template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log",
            )
                .into_response()
        }
    }
}

/// A refusal, answered as a 403 page saying why.
pub struct Refusal(pub &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        refused(self.0)
    }
}

/// A 403 page saying why.
pub fn refused(message: &str) -> Response {
    let page = Message {
        nav: Nav::anonymous(),
        title: "Not allowed",
        message,
    };
    render(StatusCode::FORBIDDEN, &page)
}

/// A page for a service error: its status and message, never internals.
pub fn failed(nav: Nav, error: crate::service::ServiceError) -> Response {
    let api = crate::http::ApiError::from(error);
    let page = Message {
        nav,
        title: "That did not work",
        message: &api.message,
    };
    render(api.status, &page)
}

/// A posted form as name-value pairs (checkbox names repeat).
pub type Fields = Vec<(String, String)>;

/// The first value of field `name`, or "".
pub fn field<'a>(form: &'a Fields, name: &str) -> &'a str {
    form.iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

/// The ids checked under `name`, each once.
pub fn checked(form: &Fields, name: &str) -> Vec<u64> {
    form.iter()
        .filter(|(key, _)| key == name)
        .filter_map(|(_, value)| value.parse().ok())
        .collect::<std::collections::BTreeSet<u64>>()
        .into_iter()
        .collect()
}
