//! The SMTP side: connections to the configured server (plain, STARTTLS or
//! implicit TLS, rustls with ring), kept open while a burst of mail goes out,
//! and one delivery attempt of a rendered mail, classified as sent, worth
//! retrying (connection trouble, 4xx) or refused for good (5xx).
//!
//! lettre's own pooled transport leaves Nagle's algorithm on, which costs
//! 40 ms per message on every server that delays its ACKs (lettre PR #1159,
//! merged upstream, not yet released). So connections are opened here with
//! `TCP_NODELAY` and handed to lettre's SMTP client; lettre still speaks the
//! protocol, builds and encodes the messages.

use super::templates::Rendered;
use crate::config::MailConfig;
use crate::domain::mail::Attempt;
use crate::service::mail::Outgoing;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("mail.{key}: {message}")]
    Setting { key: &'static str, message: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

fn setting(key: &'static str) -> impl Fn(&dyn std::fmt::Display) -> TransportError {
    move |message| TransportError::Setting {
        key,
        message: message.to_string(),
    }
}

/// How the connection is secured.
enum Security {
    Plain,
    /// STARTTLS, required: a server that does not offer it gets no mail.
    StartTls(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Implicit(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
}

/// Sends mails through the configured SMTP server.
pub struct Sender {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    /// Open connections waiting for the next mail.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

/// The CA certificates to trust: `ca_file` when set, else the web PKI roots.
fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, TransportError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| setting("ca_file")(&e))?;
                roots.add(cert).map_err(|e| setting("ca_file")(&e))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

impl Sender {
    pub fn new(config: &MailConfig) -> Result<Self, TransportError> {
        let raw = config
            .smtp_url
            .as_deref()
            .ok_or_else(|| setting("smtp_url")(&"is not set"))?;
        let url = url::Url::parse(raw).map_err(|e| setting("smtp_url")(&e))?;
        let host = url
            .host_str()
            .ok_or_else(|| setting("smtp_url")(&"names no host"))?
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let ca_pem = config
            .ca_file
            .as_ref()
            .map(|path| std::fs::read(path).map_err(|e| setting("ca_file")(&e)))
            .transpose()?;
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => Security::Plain,
            ("smtp", Some("starttls" | "required")) => {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(pem) = &ca_pem {
                    let cert = Certificate::from_pem(pem).map_err(|e| setting("ca_file")(&e))?;
                    builder = builder
                        .certificate_store(lettre::transport::smtp::client::CertificateStore::None)
                        .add_root_certificate(cert);
                }
                Security::StartTls(
                    builder
                        .build_rustls()
                        .map_err(|e| setting("smtp_url")(&e))?,
                )
            }
            ("smtps", None) => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let client = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| setting("smtp_url")(&e))?
                    .with_root_certificates(roots(ca_pem.as_deref())?)
                    .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| setting("smtp_url")(&e))?;
                Security::Implicit(tokio_rustls::TlsConnector::from(Arc::new(client)), name)
            }
            (scheme, tls) => {
                return Err(setting("smtp_url")(&format!(
                    "`{scheme}://` with tls={tls:?}: use smtp://, smtp://...?tls=starttls or smtps://"
                )));
            }
        };
        let default_port = match security {
            Security::Plain => 25,
            Security::StartTls(_) => 587,
            Security::Implicit(..) => 465,
        };
        let credentials = match &config.username {
            Some(username) => {
                let password = config
                    .smtp_password()?
                    .map(|p| p.expose().to_owned())
                    .unwrap_or_default();
                Some(Credentials::new(username.clone(), password))
            }
            None => None,
        };
        let mailbox =
            |key: &'static str, raw: &str| raw.parse::<Mailbox>().map_err(|e| setting(key)(&e));
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello: ClientId::default(),
            timeout: config.timeout,
            idle: Mutex::new(Vec::new()),
            from: mailbox("from", &config.from)?,
            reply_to: config
                .reply_to
                .as_deref()
                .map(|raw| mailbox("reply_to", raw))
                .transpose()?,
        })
    }

    /// Opens, secures and (when configured) authenticates a connection, all
    /// of it within `timeout`.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Attempt> {
        tokio::time::timeout(self.timeout, self.open())
            .await
            .unwrap_or_else(|_| Err(self.too_slow()))
    }

    fn too_slow(&self) -> Attempt {
        Attempt::Transient(format!(
            "no answer from {}:{} in time",
            self.host, self.port
        ))
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, Attempt> {
        let transient = |what: &str, error: &dyn std::fmt::Display| {
            Attempt::Transient(format!("{what} {}:{}: {error}", self.host, self.port))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transient("connecting to", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| transient("connecting to", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(connector, name) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| transient("TLS with", &e))?;
                Box::new(TlsTcp(tls))
            }
            _ => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(classify)?;
        if let Security::StartTls(parameters) = &self.security {
            connection
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(connection)
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

    /// One delivery attempt, on an idle connection or a new one. A
    /// connection that failed is dropped; a good one waits for the next mail.
    pub async fn send(&self, mail: &Outgoing, rendered: Rendered) -> Attempt {
        let message = match self.message(mail, rendered) {
            Ok(message) => message,
            Err(refusal) => return refusal,
        };
        let formatted = message.formatted();
        let reused = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(connection) = reused.filter(|c| !c.has_broken()) {
            match self.send_on(connection, &message, &formatted).await {
                // The server closed the idle connection before taking the
                // mail: a new connection cannot make it a duplicate.
                Delivery::ConnectionLost(_) => {}
                Delivery::Done(attempt) => return attempt,
            }
        }
        match self.connect().await {
            Ok(connection) => match self.send_on(connection, &message, &formatted).await {
                Delivery::Done(attempt) | Delivery::ConnectionLost(attempt) => attempt,
            },
            Err(attempt) => attempt,
        }
    }

    async fn send_on(
        &self,
        mut connection: AsyncSmtpConnection,
        message: &Message,
        formatted: &[u8],
    ) -> Delivery {
        let sent =
            tokio::time::timeout(self.timeout, connection.send(message.envelope(), formatted))
                .await;
        match sent {
            Ok(Ok(_)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(connection);
                Delivery::Done(Attempt::Sent)
            }
            Ok(Err(error)) => {
                let _ = tokio::time::timeout(self.timeout, connection.abort()).await;
                // No answer from the server at all, and no timeout: the
                // connection was gone before the mail was taken.
                let lost = !error.is_response()
                    && !error.is_transient()
                    && !error.is_permanent()
                    && !error.is_timeout();
                match lost {
                    true => Delivery::ConnectionLost(classify(error)),
                    false => Delivery::Done(classify(error)),
                }
            }
            // The mail may have arrived: no second try now (that could be a
            // duplicate); the outbox retries it later under the same Message-ID.
            Err(_) => Delivery::Done(self.too_slow()),
        }
    }

    /// Says goodbye on every idle connection (the queue ran dry).
    pub async fn close_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for mut connection in idle {
            let _ = tokio::time::timeout(self.timeout, connection.quit()).await;
        }
    }
}

/// How one send on one connection ended.
enum Delivery {
    Done(Attempt),
    /// The connection failed before the server answered anything.
    ConnectionLost(Attempt),
}

/// A 5xx answer is permanent; everything else is worth another try.
fn classify(error: lettre::transport::smtp::Error) -> Attempt {
    match error.is_permanent() {
        true => Attempt::Permanent(error.to_string()),
        false => Attempt::Transient(error.to_string()),
    }
}

/// A TLS stream lettre's SMTP client can speak over.
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
