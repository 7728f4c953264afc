//! OpenID Connect sign-in (openidconnect over reqwest with rustls): discovery
//! of each configured provider, the authorization code flow with state,
//! nonce and PKCE (S256), the code exchange and the verification of the ID
//! token (signature, issuer, audience, expiry, nonce). What the verified
//! claims mean for an account is the service's (`service::sso`).

mod pending;

pub use pending::Answer;

use crate::config::{SsoConfig, SsoProviderConfig};
use crate::domain::sso::{SsoIdentity, SsoPolicy};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, Client, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use pending::{Pending, PendingLogins};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Every claim of the ID token, so the configured claim names can be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AllClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, Value>,
}
impl AdditionalClaims for AllClaims {}

/// The discovery document's logout endpoint, shown to sign-in pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogoutMetadata {
    end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
type TokenFields = IdTokenFields<
    AllClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = Client<
    AllClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<TokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long a discovery document (and its keys) is used before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);
/// How long a failed discovery is remembered before the provider is asked again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);
/// The signature algorithms an ID token may use.
const PUBLIC_KEY_ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why a sign-in failed; logged, never shown (the caller sees one neutral answer).
#[derive(Debug, thiserror::Error)]
pub enum SsoFailure {
    #[error("no provider named `{0}`")]
    UnknownProvider(String),
    #[error("the provider is unreachable or its discovery document is bad: {0}")]
    ProviderDown(String),
    #[error("unknown, used or expired state")]
    BadState,
    #[error("the state is not this browser's")]
    ForeignState,
    #[error("the provider answered with an error: {0}")]
    ProviderError(String),
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    #[error("the ID token did not verify: {0}")]
    IdToken(String),
    #[error("the ID token lacks a usable `{0}` claim")]
    MissingClaim(&'static str),
    #[error("setup: {0}")]
    Setup(String),
    #[error("the token response holds no ID token")]
    NoIdToken,
    #[error("refused: {0}")]
    Refused(crate::domain::sso::Refusal),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("too many sign-ins in flight from this address")]
    TooManyPending,
}

/// A provider's settings, rules and (once read) discovery document.
struct Provider {
    config: SsoProviderConfig,
    secret: Option<ClientSecret>,
    policy: SsoPolicy,
    redirect: RedirectUrl,
    discovery: tokio::sync::Mutex<Discovery>,
}

/// The last discovery document read, and the last failure to read one.
#[derive(Default)]
struct Discovery {
    document: Option<(Metadata, Instant)>,
    failure: Option<(String, Instant)>,
}

/// What a sign-in page may show about a provider.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    pub name: String,
    pub display_name: String,
    pub login_url: String,
    /// The provider's logout URL, when its discovery document names one.
    pub logout_url: Option<String>,
}

/// A verified sign-in, ready for the account rules.
pub struct Verified {
    pub identity: SsoIdentity,
    pub policy: SsoPolicy,
    pub return_to: String,
    pub answer: Answer,
}

/// Every configured provider and the sign-ins in flight.
pub struct SsoProviders {
    providers: Vec<Provider>,
    pending: PendingLogins,
    login_timeout: Duration,
    http: openidconnect::reqwest::Client,
    public_url: String,
}

/// `return_to` when it stays on our own origin (a path), else `/`.
pub fn own_path(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.chars().all(|c| c.is_ascii_graphic() && c != '\\') =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

impl SsoProviders {
    pub fn new(config: &SsoConfig, public_url: &str) -> Result<Self, SsoFailure> {
        let public_url = public_url.trim_end_matches('/').to_owned();
        let setup = |e: &dyn std::fmt::Display| SsoFailure::Setup(e.to_string());
        let providers = config
            .providers
            .iter()
            .map(|config| {
                let secret = config.secret().map_err(|e| setup(&e))?;
                let redirect = format!("{public_url}/sso/{}/callback", config.name);
                Ok(Provider {
                    secret: secret.map(|s| ClientSecret::new(s.expose().to_owned())),
                    policy: SsoPolicy {
                        group_map: config
                            .group_map
                            .iter()
                            .map(|m| (m.claim.clone(), m.group.clone()))
                            .collect(),
                        allowed_groups: config.allowed_groups.clone(),
                        auto_create: config.auto_create,
                        link_by_email: config.link_by_email,
                    },
                    redirect: RedirectUrl::new(redirect).map_err(|e| setup(&e))?,
                    discovery: tokio::sync::Mutex::new(Discovery::default()),
                    config: config.clone(),
                })
            })
            .collect::<Result<_, SsoFailure>>()?;
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would open the door to SSRF through the provider.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| setup(&e))?;
        Ok(Self {
            providers,
            pending: PendingLogins::new(config.login_timeout),
            login_timeout: config.login_timeout,
            http,
            public_url,
        })
    }

    /// Time a sign-in may spend at the provider.
    pub fn login_timeout(&self) -> Duration {
        self.login_timeout
    }

    /// Whether gatehouse is reached over HTTPS (cookies are then `Secure`).
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    fn provider(&self, name: &str) -> Result<&Provider, SsoFailure> {
        self.providers
            .iter()
            .find(|p| p.config.name == name)
            .ok_or_else(|| SsoFailure::UnknownProvider(name.to_owned()))
    }

    /// The provider's discovery document, read again after [`DISCOVERY_TTL`];
    /// when that fails, the last good one is used meanwhile, and a provider
    /// that could not be read at all is not asked again for [`DISCOVERY_RETRY`].
    async fn metadata(&self, provider: &Provider) -> Result<Metadata, SsoFailure> {
        let mut discovery = provider.discovery.lock().await;
        let fresh = |at: &Instant, ttl| at.elapsed() < ttl;
        if let Some((metadata, at)) = &discovery.document {
            if fresh(at, DISCOVERY_TTL) {
                return Ok(metadata.clone());
            }
        }
        if let Some((error, at)) = &discovery.failure {
            if fresh(at, DISCOVERY_RETRY) {
                return match &discovery.document {
                    Some((metadata, _)) => Ok(metadata.clone()),
                    None => Err(SsoFailure::ProviderDown(error.clone())),
                };
            }
        }
        let issuer = IssuerUrl::new(provider.config.issuer.clone())
            .map_err(|e| SsoFailure::Setup(e.to_string()))?;
        match Metadata::discover_async(issuer, &self.http).await {
            Ok(metadata) => {
                discovery.document = Some((metadata.clone(), Instant::now()));
                discovery.failure = None;
                Ok(metadata)
            }
            Err(error) => {
                let error = error.to_string();
                tracing::warn!(provider = provider.config.name, %error, "OpenID Connect discovery failed");
                discovery.failure = Some((error.clone(), Instant::now()));
                match &discovery.document {
                    Some((metadata, _)) => Ok(metadata.clone()),
                    None => Err(SsoFailure::ProviderDown(error)),
                }
            }
        }
    }

    async fn client(&self, provider: &Provider) -> Result<OidcClient, SsoFailure> {
        let metadata = self.metadata(provider).await?;
        Ok(OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.config.client_id.clone()),
            provider.secret.clone(),
        )
        .set_redirect_uri(provider.redirect.clone()))
    }

    /// The configured providers, for sign-in pages. Never reaches out to a
    /// provider (the route is public): the logout URL is there once the
    /// provider's discovery document has been read.
    pub async fn list(&self) -> Vec<ProviderInfo> {
        let mut infos = Vec::with_capacity(self.providers.len());
        for provider in &self.providers {
            let logout_url = provider
                .discovery
                .lock()
                .await
                .document
                .as_ref()
                .and_then(|(m, _)| m.additional_metadata().end_session_endpoint.clone());
            let name = &provider.config.name;
            infos.push(ProviderInfo {
                name: name.clone(),
                display_name: provider
                    .config
                    .display_name
                    .clone()
                    .unwrap_or_else(|| name.clone()),
                login_url: format!("{}/sso/{name}/login", self.public_url),
                logout_url,
            });
        }
        infos
    }

    /// Starts a sign-in: the provider's authorization URL and the state the
    /// browser must bring back (also set as a cookie by the transport).
    pub async fn begin(
        &self,
        name: &str,
        return_to: Option<&str>,
        answer: Answer,
        client_address: std::net::IpAddr,
    ) -> Result<(String, String), SsoFailure> {
        let provider = self.provider(name)?;
        let client = self.client(provider).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &provider.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending::new(
            name,
            verifier.secret().clone(),
            nonce.secret().clone(),
            own_path(return_to),
            answer,
            client_address,
        );
        self.pending
            .insert(state.secret().clone(), pending)
            .map_err(|_| SsoFailure::TooManyPending)?;
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Finishes a sign-in: the state (single use, this browser's), the code
    /// exchange with the PKCE verifier, and the ID token's verification.
    pub async fn finish(
        &self,
        name: &str,
        state: &str,
        browser_state: Option<&str>,
        code: &str,
    ) -> Result<Verified, SsoFailure> {
        let pending = self.pending.take(state).ok_or(SsoFailure::BadState)?;
        if pending.provider != name {
            return Err(SsoFailure::BadState);
        }
        if browser_state != Some(state) {
            return Err(SsoFailure::ForeignState);
        }
        let provider = self.provider(name)?;
        let client = self.client(provider).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoFailure::Setup(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoFailure::Exchange(e.to_string()))?;
        let id_token = token.id_token().ok_or(SsoFailure::NoIdToken)?;
        // Only public-key signatures: an HMAC "signed" with the client
        // secret would let anyone holding the secret mint tokens.
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(PUBLIC_KEY_ALGORITHMS);
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| SsoFailure::IdToken(e.to_string()))?;
        let claims =
            serde_json::to_value(claims).map_err(|e| SsoFailure::IdToken(e.to_string()))?;
        Ok(Verified {
            identity: identity(&provider.config, &claims)?,
            policy: provider.policy.clone(),
            return_to: pending.return_to,
            answer: pending.answer,
        })
    }
}

/// Reads the configured claims out of the verified ID token's claims.
fn identity(config: &SsoProviderConfig, claims: &Value) -> Result<SsoIdentity, SsoFailure> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let groups_claim = config
        .groups_claim
        .as_deref()
        .and_then(|name| claims.get(name));
    let groups = match groups_claim {
        Some(Value::Array(values)) => Some(
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::String(value)) => Some([value.clone()].into()),
        _ => None,
    };
    // `email_verified` speaks of the standard `email` claim only.
    let email_verified = config.email_claim == "email"
        && claims
            .get("email_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    Ok(SsoIdentity {
        provider: config.name.clone(),
        issuer: text("iss").ok_or(SsoFailure::MissingClaim("iss"))?,
        subject: text("sub").ok_or(SsoFailure::MissingClaim("sub"))?,
        login: text(&config.login_claim),
        email: text(&config.email_claim),
        email_verified,
        first_name: text(&config.first_name_claim),
        last_name: text(&config.last_name_claim),
        display_name: text("name"),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_our_origin() {
        let cases = [
            (Some("/admin/users?page=2"), "/admin/users?page=2"),
            (Some("//evil.example/x"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/ok\r\nSet-Cookie: x"), "/"),
            (Some(""), "/"),
            (Some("/caf\u{e9}"), "/"),
            (None, "/"),
        ];
        for (given, expected) in cases {
            assert_eq!(own_path(given), expected, "{given:?}");
        }
    }
}
