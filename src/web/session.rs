//! Who is signed in to the pages: the `gh_session` cookie (set by the sign-in
//! page, SameSite=Strict, or by single sign-on), and the CSRF token every form
//! carries: derived from the session token, which only the signed-in browser
//! knows (the cookie is HttpOnly), so another site cannot forge a form post.

use crate::http::AppState;
use crate::service::Principal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

/// The session cookie the pages (and single sign-on) use; under https with
/// the `__Host-` prefix, so no sibling host or plain-HTTP answer can plant one.
pub fn cookie_name(https: bool) -> &'static str {
    match https {
        true => "__Host-gh_session",
        false => "gh_session",
    }
}

/// The value of cookie `name`, if the browser sent it.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
}

/// The pages' session cookie for `token` (an empty token and no age clear it).
pub fn session_cookie(token: &str, max_age: u64, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let name = cookie_name(https);
    let text =
        format!("{name}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("gh_session=; Max-Age=0"))
}

/// The CSRF token of a session.
pub fn csrf_token(session: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gatehouse csrf\0")
        .chain_update(session.as_bytes())
        .finalize();
    data_encoding::HEXLOWER.encode(&digest)
}

/// A signed-in page visitor: who, their session token, and its CSRF token.
pub struct WebUser {
    pub principal: Principal,
    pub token: String,
    pub csrf: String,
}

impl WebUser {
    /// Whether a posted form carries this session's CSRF token.
    pub fn check_csrf(&self, sent: &str) -> Result<(), super::pages::Refusal> {
        let expected = self.csrf.as_bytes();
        let same = expected.len() == sent.len()
            && expected
                .iter()
                .zip(sent.as_bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        match same {
            true => Ok(()),
            false => Err(super::pages::Refusal(
                "This form has expired or did not come from this site. Go back, reload and try again.",
            )),
        }
    }
}

/// Whether a form post comes from anywhere but this site's own pages: the
/// browser says so (`Sec-Fetch-Site`, sent by every current browser), or,
/// from one that does not, its `Origin` is not this host. Refused before
/// anything, so no site can sign a visitor in as someone else (login CSRF).
pub fn cross_site(headers: &HeaderMap) -> bool {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match value("sec-fetch-site") {
        Some("same-origin" | "none") => false,
        Some(_) => true,
        None => match (value("origin"), value("host")) {
            (Some("null"), _) => true,
            (Some(origin), Some(host)) => {
                origin.split_once("://").map_or(origin, |(_, rest)| rest) != host
            }
            _ => false,
        },
    }
}

/// A form posted by a signed-in visitor, its CSRF token checked: the one way
/// the pages take a change.
pub struct Posted {
    pub user: WebUser,
    pub form: super::pages::Fields,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let user = WebUser::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = axum::extract::Request::from_parts(parts, body);
        let axum::extract::Form(form) =
            axum::extract::Form::<super::pages::Fields>::from_request(request, state)
                .await
                .map_err(IntoResponse::into_response)?;
        user.check_csrf(super::pages::field(&form, "csrf"))
            .map_err(IntoResponse::into_response)?;
        Ok(Self { user, form })
    }
}

/// Not signed in: to the sign-in page.
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to("/login").into_response()
    }
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignInFirst> {
        let name = cookie_name(state.sso.https());
        let token = cookie_value(&parts.headers, name).ok_or(SignInFirst)?;
        let principal = state
            .directory
            .signin
            .authenticate(&token)
            .map_err(|_| SignInFirst)?;
        let csrf = csrf_token(&token);
        Ok(Self {
            principal,
            token,
            csrf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_per_session_and_cookies_are_strict() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a").len(), 64);
        let cookie = session_cookie("gh_ses_x", 60, true);
        let text = cookie.to_str().unwrap_or("");
        assert!(
            text.contains("HttpOnly")
                && text.contains("SameSite=Strict")
                && text.contains("Secure")
        );
    }
}
