//! Secrets that belong to an account, kept apart from the user record: the
//! password hash, the hashes of its live tokens, and its TOTP secret.

use super::clock::Timestamp;
use super::user::{Status, User, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token is for; its prefix makes a leaked one recognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Session,
    Api,
    Activation,
    PasswordReset,
    EmailConfirmation,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Session => "gh_ses_",
            Self::Api => "gh_api_",
            Self::Activation => "gh_act_",
            Self::PasswordReset => "gh_rst_",
            Self::EmailConfirmation => "gh_eml_",
        }
    }

    /// Single-use tokens are consumed by the first successful redemption.
    pub fn is_single_use(self) -> bool {
        matches!(
            self,
            Self::Activation | Self::PasswordReset | Self::EmailConfirmation
        )
    }

    /// Tokens that authenticate requests as their user.
    pub fn authenticates(self) -> bool {
        matches!(self, Self::Session | Self::Api)
    }

    /// The page a link for this kind opens, for kinds sent as links.
    pub fn link_page(self) -> Option<&'static str> {
        match self {
            Self::Activation => Some("activate"),
            Self::PasswordReset => Some("reset-password"),
            Self::EmailConfirmation => Some("confirm-email"),
            Self::Session | Self::Api => None,
        }
    }

    /// Whether a token of this kind may be issued for `user`; a refusal gives a
    /// code and a message.
    pub fn issuable_for(self, user: &User) -> Result<(), (&'static str, &'static str)> {
        match self {
            Self::Activation if user.status != Status::Pending => Err((
                "not_pending",
                "activation tokens are only for pending users",
            )),
            Self::PasswordReset if user.status != Status::Active || user.is_archived() => {
                Err(("not_active", "reset tokens are only for active users"))
            }
            Self::EmailConfirmation if user.email.is_none() => {
                Err(("no_email", "the user has no email address"))
            }
            _ => Ok(()),
        }
    }
}

/// A stored token: only its hash is the key, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl TokenRecord {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// The SHA-256 (hex) under which a token is stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    data_encoding::HEXLOWER.encode(&digest)
}

/// An account's secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Argon2id PHC string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Hashes of every token issued to this user and not yet revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<(TokenKind, String)>,
    /// Base32 TOTP secret once enrolment is confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// Base32 TOTP secret offered but not yet confirmed by a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_pending: Option<String>,
    /// The time step of the last TOTP code accepted; codes of it or earlier
    /// steps are refused (a code works once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_last_step: Option<i64>,
}

impl Credentials {
    /// Forgets the hashes of `kind` tokens and returns them for removal.
    pub fn take_tokens(&mut self, kind: TokenKind) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.tokens)
            .into_iter()
            .partition(|(k, _)| *k == kind);
        self.tokens = kept;
        taken.into_iter().map(|(_, hash)| hash).collect()
    }

    /// Forgets every token hash and returns them for removal.
    pub fn take_all_tokens(&mut self) -> Vec<String> {
        std::mem::take(&mut self.tokens)
            .into_iter()
            .map(|(_, hash)| hash)
            .collect()
    }

    /// Records `step` as used, if it is later than the last one used.
    pub fn use_totp_step(&mut self, step: i64) -> bool {
        if self.totp_last_step.is_some_and(|last| step <= last) {
            return false;
        }
        self.totp_last_step = Some(step);
        true
    }

    pub fn forget_token(&mut self, hash: &str) {
        self.tokens.retain(|(_, h)| h != hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bookkeeping() {
        let mut credentials = Credentials::default();
        credentials.tokens.push((TokenKind::Api, "a".into()));
        credentials.tokens.push((TokenKind::Session, "s1".into()));
        credentials.tokens.push((TokenKind::Session, "s2".into()));
        assert_eq!(
            credentials.take_tokens(TokenKind::Session),
            vec!["s1", "s2"]
        );
        assert_eq!(credentials.tokens, vec![(TokenKind::Api, "a".to_owned())]);
        credentials.forget_token("a");
        assert!(credentials.take_all_tokens().is_empty());
        assert_eq!(token_hash("x").len(), 64);
        let mut user = User::new(
            1,
            crate::domain::user::UserType::Local,
            Status::Pending,
            chrono::Utc::now(),
        );
        assert_eq!(TokenKind::Activation.issuable_for(&user), Ok(()));
        assert_eq!(
            TokenKind::PasswordReset
                .issuable_for(&user)
                .map_err(|e| e.0),
            Err("not_active")
        );
        assert_eq!(
            TokenKind::EmailConfirmation
                .issuable_for(&user)
                .map_err(|e| e.0),
            Err("no_email")
        );
        user.status = Status::Active;
        assert_eq!(
            TokenKind::Activation.issuable_for(&user).map_err(|e| e.0),
            Err("not_pending")
        );
        assert_eq!(TokenKind::Api.issuable_for(&user), Ok(()));
        assert_ne!(token_hash("x"), token_hash("y"));
    }
}
