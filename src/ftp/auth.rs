//! FTPS sign-in through the directory (same rules as the HTTP door), and the
//! per-session user details: id, name and home directory.

use crate::domain::user::UserId;
use crate::service::{Directory, ServiceError};
use async_trait::async_trait;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use unftp_core::auth::{
    AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal, UserDetail,
    UserDetailError, UserDetailProvider,
};

/// Checks FTPS credentials against the directory.
pub struct FtpAuthenticator {
    directory: Arc<Directory>,
}

impl FtpAuthenticator {
    pub fn new(directory: Arc<Directory>) -> Self {
        Self { directory }
    }
}

impl fmt::Debug for FtpAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FtpAuthenticator")
    }
}

#[async_trait]
impl Authenticator for FtpAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        credentials: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if credentials.command_channel_security != ChannelEncryptionState::Tls {
            return Err(AuthenticationError::new("sign-in requires TLS (AUTH TLS)"));
        }
        let password = credentials
            .password
            .clone()
            .ok_or(AuthenticationError::BadPassword)?;
        match self
            .directory
            .ftp
            .ftp_sign_in(username, password, credentials.source_ip)
            .await
        {
            Ok(user) => Ok(Principal {
                username: user.id.to_string(),
            }),
            Err(ServiceError::InvalidCredentials) => Err(AuthenticationError::BadPassword),
            Err(other) => Err(AuthenticationError::new(other.to_string())),
        }
    }
}

/// A signed-in FTP user.
#[derive(Debug, Clone)]
pub struct FtpUser {
    pub id: UserId,
    pub name: String,
    pub home: PathBuf,
}

impl fmt::Display for FtpUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl UserDetail for FtpUser {
    fn home(&self) -> Option<&Path> {
        Some(&self.home)
    }
}

/// Turns the principal the authenticator returned (a user id) into an [`FtpUser`].
pub struct FtpUsers {
    directory: Arc<Directory>,
}

impl FtpUsers {
    pub fn new(directory: Arc<Directory>) -> Self {
        Self { directory }
    }
}

impl fmt::Debug for FtpUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FtpUsers")
    }
}

#[async_trait]
impl UserDetailProvider for FtpUsers {
    type User = FtpUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<FtpUser, UserDetailError> {
        let not_found = || UserDetailError::UserNotFound {
            username: principal.username.clone(),
        };
        let id: UserId = principal.username.parse().map_err(|_| not_found())?;
        let (name, home) = self.directory.ftp.ftp_home(id).map_err(|_| not_found())?;
        Ok(FtpUser { id, name, home })
    }
}
