//! Request extractors that answer in the API's error format: JSON bodies with
//! the offending field named, bearer authentication, path ids.

use super::AppState;
use super::error::ApiError;
use crate::domain::user::UserId;
use crate::service::Principal;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; malformed JSON or a bad field is a 400 naming it, an oversized body 413.
pub struct ApiJson<T>(pub T);

/// The request body, within the size limit (413 beyond it).
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_body", rejection.body_text())
            }
        })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse_json(&body_bytes(request, state).await?).map(ApiJson)
    }
}

/// A body taken as it is (image uploads), within the size limit (413 beyond it).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        body_bytes(request, state).await.map(RawBody)
    }
}

/// A UTF-8 text body (CSV uploads); anything else is a 400.
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(request, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(TextBody)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the body must be UTF-8 text",
                )
            })
    }
}

/// Parses JSON, naming the field at fault: its path, or the field a message quotes.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("malformed JSON: {inner}"),
            );
        }
        let path = error.path().to_string();
        let message = inner.to_string();
        let field = if path == "." {
            quoted_name(&message).unwrap_or("body").to_owned()
        } else {
            path
        };
        ApiError::invalid(field, strip_position(&message))
    })?;
    deserializer.end().map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {error}"),
        )
    })?;
    Ok(value)
}

/// The first `backticked` name in a serde message ("unknown field `x`").
fn quoted_name(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// Drops serde_json's " at line 1 column 9" suffix.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// The authenticated caller, from `Authorization: Bearer <token>`, or, for
/// reading (GET and HEAD) only, from the `gh_session` cookie single sign-on
/// sets: a cookie rides along with requests other sites make, so it never
/// authorizes a change (the web pages will pair it with a CSRF token).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| token.trim().to_owned());
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let token = match bearer {
            Some(token) => token,
            None if reading => super::sso::cookie_value(
                &parts.headers,
                crate::web::session::cookie_name(state.sso.https()),
            )
            .ok_or(crate::service::ServiceError::Unauthenticated)?,
            None => return Err(crate::service::ServiceError::Unauthenticated.into()),
        };
        Ok(Auth(state.directory.signin.authenticate(&token)?))
    }
}

/// Parses a user id from the path; anything but a number is a 400.
pub fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid("id", "must be a user id (a positive integer)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn errors_name_fields() {
        let cases = [
            (r#"{"name":"x","count":1,"extra":2}"#, Some("extra")),
            (r#"{"name":"x"}"#, Some("count")),
            (r#"{"name":"x","count":"many"}"#, Some("count")),
            (r#"{"name":"x","#, None),
            (r#"{"name":"x","count":1} trailing"#, None),
        ];
        for (body, field) in cases {
            let error = parse_json::<Body>(body.as_bytes()).err();
            assert_eq!(
                error.as_ref().map(|e| e.status),
                Some(StatusCode::BAD_REQUEST),
                "{body}"
            );
            assert_eq!(error.and_then(|e| e.field).as_deref(), field, "{body}");
        }
    }
}
