//! The one place service errors become HTTP statuses and the JSON error body
//! `{"error":{"code","message","field"?}}`.

use crate::service::ServiceError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code, a message for people, the offending field.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `invalid_field`, `not_found`, `forbidden`, ...
    pub code: String,
    pub message: String,
    /// The request field or parameter at fault (`invalid_field`, `duplicate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Also sent as the `X-Request-Id` header; find it in the server log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error answer of the admin API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A 400 naming the offending field.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        let message = format!("{field}: {message}");
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The object under `"error"`, also used per id in bulk results.
    pub fn body(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
            request_id: super::request_id::current(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::Invalid(invalid) => Self::invalid(invalid.field, invalid.message),
            ServiceError::NotFound(what) => Self::not_found(what),
            ServiceError::Duplicate { field } => Self {
                field: Some(field.to_owned()),
                ..Self::new(StatusCode::CONFLICT, "duplicate", message)
            },
            ServiceError::Conflict { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            ServiceError::Forbidden(_) | ServiceError::NotPermitted(_) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            ServiceError::ObligationPending { code, message } => {
                Self::new(StatusCode::FORBIDDEN, code, message)
            }
            ServiceError::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            ServiceError::InvalidCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            ServiceError::TooManyAttempts { retry_after } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
            },
            ServiceError::InvalidToken => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_token", message)
            }
            ServiceError::Disabled(_) => Self::new(StatusCode::FORBIDDEN, "disabled", message),
            internal @ (ServiceError::Store(_)
            | ServiceError::Hashing(_)
            | ServiceError::HasherStopped
            | ServiceError::Sealing
            | ServiceError::SealingKeyMismatch
            | ServiceError::Io { .. }) => {
                tracing::error!(error = %internal, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.body() };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Runs a CPU-heavy or long service call off the async runtime.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::service::ServiceResult<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )),
    }
}
