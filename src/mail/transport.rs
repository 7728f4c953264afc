//! The SMTP side: a pooled lettre transport (tokio, rustls with ring) built
//! from `[mail]`, and one delivery attempt of a rendered mail, classified as
//! sent, worth retrying (connection trouble, 4xx) or refused for good (5xx).

use super::templates::Rendered;
use crate::config::MailConfig;
use crate::domain::mail::Attempt;
use crate::service::mail::Outgoing;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("mail.smtp_url: {0}")]
    Url(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Sends mails through the configured SMTP server.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

/// lettre spells "STARTTLS required" `tls=required`; we accept `starttls` too.
fn lettre_url(url: &str) -> String {
    url.replace("tls=starttls", "tls=required")
}

impl Sender {
    pub fn new(config: &MailConfig) -> Result<Self, TransportError> {
        let url = config
            .smtp_url
            .as_deref()
            .ok_or_else(|| TransportError::Url("is not set".into()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&lettre_url(url))
            .map_err(|error| TransportError::Url(error.to_string()))?
            .timeout(Some(config.timeout));
        if let Some(username) = &config.username {
            let password = config
                .smtp_password()?
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        let parse = |key: &str, raw: &str| {
            raw.parse::<Mailbox>()
                .map_err(|error| TransportError::Url(format!("{key}: {error}")))
        };
        Ok(Self {
            transport: builder.build(),
            from: parse("from", &config.from)?,
            reply_to: config
                .reply_to
                .as_deref()
                .map(|raw| parse("reply_to", raw))
                .transpose()?,
        })
    }

    /// Builds the message for `mail`; a bad recipient address is permanent.
    fn message(&self, mail: &Outgoing, rendered: Rendered) -> Result<Message, Attempt> {
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|error| Attempt::Permanent(format!("bad recipient address: {error}")))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(mail.message_id.clone()));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(rendered.text),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(rendered.html),
            );
        builder
            .multipart(body)
            .map_err(|error| Attempt::Permanent(format!("cannot build the message: {error}")))
    }

    /// One delivery attempt.
    pub async fn send(&self, mail: &Outgoing, rendered: Rendered) -> Attempt {
        let message = match self.message(mail, rendered) {
            Ok(message) => message,
            Err(refusal) => return refusal,
        };
        match self.transport.send(message).await {
            Ok(_) => Attempt::Sent,
            Err(error) if error.is_permanent() => Attempt::Permanent(error.to_string()),
            Err(error) => Attempt::Transient(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starttls_is_spelled_for_lettre() {
        assert_eq!(
            lettre_url("smtp://h:587?tls=starttls"),
            "smtp://h:587?tls=required"
        );
        assert_eq!(lettre_url("smtps://h"), "smtps://h");
    }
}
