//! The mails account changes send: activation for a new pending user,
//! welcome and confirmation when their flags are set (API, CSV import), a notice to the old
//! address when the address changes, and the plain notices (password
//! changed, 2FA reset, approved, deactivated). Each is queued in the unit of
//! work of the change itself.

use super::Letter;
use crate::domain::credentials::TokenKind;
use crate::domain::mail::MailKind;
use crate::domain::user::{Status, User};
use crate::service::{Credentials, ServiceResult, Unit};

impl Unit<'_> {
    /// Queues a plain notice of `kind` for `user`; a user who cannot get it
    /// (no address, masked, schedule `never`, mail off) simply does not.
    pub(crate) fn notify(&self, user: &User, kind: MailKind) -> ServiceResult<()> {
        self.mail_user(user, Letter::new(kind)).map(|_| ())
    }

    /// Queues a token link mail of `kind` for `user`, issuing the token in
    /// this unit. Nothing is issued when the mail could not go anywhere.
    fn mail_token(&self, user: &User, kind: MailKind, token_kind: TokenKind) -> ServiceResult<()> {
        if self.undeliverable(user).is_some() {
            return Ok(());
        }
        let ttl = self.core.settings.token_lifetime(token_kind);
        let (token, _) = Credentials::issue_token(self, user.id, token_kind, ttl)?;
        let page = token_kind.link_page().unwrap_or_default();
        let letter = Letter::new(kind).with_link(self.core.settings.link(page, &token));
        self.mail_user(user, letter).map(|_| ())
    }

    /// The account mails a created (`before` = `None`) or changed user is due.
    /// `has_password`: whether a new user got a password (else, when pending,
    /// the activation mail lets them set one).
    pub(crate) fn account_mails(
        &self,
        user: &User,
        before: Option<&User>,
        has_password: bool,
    ) -> ServiceResult<()> {
        if before.is_none() && user.status == Status::Pending && !has_password {
            self.mail_token(user, MailKind::Activation, TokenKind::Activation)?;
        }
        if user.welcome_email && !before.is_some_and(|b| b.welcome_email) {
            self.notify(user, MailKind::Welcome)?;
        }
        if user.confirm_email && !before.is_some_and(|b| b.confirm_email) {
            self.mail_token(
                user,
                MailKind::EmailConfirmation,
                TokenKind::EmailConfirmation,
            )?;
        }
        let old = before.and_then(|b| b.email.as_ref());
        if let Some(old) = old.filter(|old| Some(old.key()) != user.email.as_ref().map(|e| e.key()))
        {
            let new = user
                .email
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            let letter = Letter::new(MailKind::EmailChanged)
                .with("old_email", old.to_string())
                .with("new_email", new);
            self.mail_address_of(user, old.as_str(), letter)?.ok();
        }
        Ok(())
    }
}
