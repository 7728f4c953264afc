//! The vocabulary and rules of gatehouse: pure types and functions, no I/O.

pub mod audit;
pub mod clock;
pub mod credentials;
pub mod entries;
pub mod external;
pub mod ftp;
pub mod group;
pub mod mail;
pub mod media;
pub mod names;
pub mod password;
pub mod permissions;
pub mod projects;
pub mod roles;
pub mod schedule;
pub mod signin;
pub mod sso;
pub mod totp;
pub mod user;
pub mod user_input;

/// A rejected input, naming the field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
