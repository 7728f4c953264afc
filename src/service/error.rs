//! The service layer's error: what went wrong in terms every transport can
//! translate (HTTP status, FTP reply, CLI message).

use crate::domain::ValidationError;
use crate::domain::roles::Denial;
use crate::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field} is already taken")]
    Duplicate { field: &'static str },
    /// The request is valid but the current state forbids it.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Forbidden(#[from] Denial),
    /// The permission rule said no, for this reason.
    #[error("{0}")]
    NotPermitted(&'static str),
    /// Signed in, but an obligation (password change, 2FA enrolment) comes first.
    #[error("{message}")]
    ObligationPending {
        code: &'static str,
        message: &'static str,
    },
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    #[error("invalid login or password")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again later")]
    TooManyAttempts { retry_after: Duration },
    #[error("the token is invalid, used, expired or revoked")]
    InvalidToken,
    #[error("{0} is disabled")]
    Disabled(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Duplicate { field } => Self::Duplicate { field },
            other => Self::Internal(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
