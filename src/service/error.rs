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
    #[error(transparent)]
    Store(StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
    #[error("the password hashing threads have stopped")]
    HasherStopped,
    #[error("a sealed secret could not be sealed or opened (wrong or damaged secret.key?)")]
    Sealing,
    #[error(
        "secret.key is not the key this directory's secrets are sealed with \
         (on a shared store, copy secret.key from the first daemon's data directory)"
    )]
    SealingKeyMismatch,
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
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
            other => Self::Store(other),
        }
    }
}

impl From<argon2::password_hash::Error> for ServiceError {
    fn from(error: argon2::password_hash::Error) -> Self {
        Self::Hashing(error)
    }
}

impl ServiceError {
    /// A file-system failure: what was being done, to which path.
    pub fn io(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// Whether the fault is the server's (store, disk, hashing), not the request's.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Self::Store(_)
                | Self::Hashing(_)
                | Self::HasherStopped
                | Self::Sealing
                | Self::SealingKeyMismatch
                | Self::Io { .. }
        )
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
