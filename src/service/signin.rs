//! Who is calling: bearer-token authentication, and password sign-in with
//! lockout and 2FA, issuing short-lived sessions.

use super::core::FtpSettings;
use super::core::area_service;
use super::credentials::Credentials;
use super::password_cache::PasswordCache;
use super::sync::DirectorySync;
use super::throttle::{Attempt, Refusal, SignInThrottle};

/// Longest a sign-in waits for its turn behind attempts in flight.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a waiting sign-in looks again.
const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(10);
use super::{ServiceError, ServiceResult};
use crate::domain::audit::AuditAction;
use crate::domain::clock::Timestamp;
use crate::domain::credentials::{TokenKind, token_hash};
use crate::domain::signin::{Obligation, check_account, pending_obligation};
use crate::domain::user::{User, UserId, UserType};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    /// The kind of token that authenticated the call.
    pub via: TokenKind,
}

impl Principal {
    /// The caller, provided no obligation (password change, 2FA enrolment) is pending.
    pub fn unrestricted(&self) -> ServiceResult<&User> {
        match pending_obligation(&self.user) {
            None => Ok(&self.user),
            Some(Obligation::ChangePassword) => Err(ServiceError::ObligationPending {
                code: "password_change_required",
                message: "change your password first (POST /api/v1/me/password)",
            }),
            Some(Obligation::EnrolTwoFactor) => Err(ServiceError::ObligationPending {
                code: "two_factor_enrolment_required",
                message: "enrol a second factor first (POST /api/v1/me/2fa)",
            }),
        }
    }
}

/// A password sign-in attempt.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login or email.
    pub login: String,
    pub password: String,
    pub totp: Option<String>,
}

/// A signed-in session.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: Option<Timestamp>,
    #[serde(skip)]
    pub user: Arc<User>,
}

area_service!(
    /// Sign-in at every door (HTTP, FTPS, directory), bearer authentication
    /// and sessions, with one throttle for all of them.
    SignIn {
        throttle: SignInThrottle,
        sync: std::sync::Arc<DirectorySync>,
        password_cache: PasswordCache,
        /// Sign-ins per hour, for the dashboard.
        hourly: super::hourly::HourlyCounts,
    }
);

impl SignIn {
    /// Sign-ins per hour over the last day, oldest first.
    pub fn sign_ins_per_hour(&self) -> Vec<super::hourly::HourCount> {
        self.hourly.last_day(self.now())
    }

    /// Resolves a bearer token (session or API) to its live, allowed user.
    /// A token this daemon does not know yet may have just been issued by
    /// another daemon on a shared store: it catches up once before refusing.
    pub fn authenticate(&self, bearer: &str) -> ServiceResult<Principal> {
        let now = self.now();
        let hash = token_hash(bearer);
        let mut snapshot = self.snapshot();
        let mut record = snapshot.token(&hash)?;
        if record.is_none() && self.store().shares_state() {
            super::core::offload(|| self.store().catch_up())?;
            snapshot = self.snapshot();
            record = snapshot.token(&hash)?;
        }
        let record = record.ok_or(ServiceError::Unauthenticated)?;
        if !record.kind.authenticates() || !record.is_live(now) {
            return Err(ServiceError::Unauthenticated);
        }
        let user = snapshot
            .user(record.user_id)?
            .map(Arc::new)
            .ok_or(ServiceError::Unauthenticated)?;
        check_account(&user, now).map_err(|_| ServiceError::Unauthenticated)?;
        Ok(Principal {
            user,
            via: record.kind,
        })
    }

    /// Ends the session `token` (signing out); any other token is left alone.
    pub fn logout(&self, token: &str) -> ServiceResult<()> {
        let hash = token_hash(token);
        let record = self.snapshot().token(&hash)?;
        let Some(record) = record.filter(|r| r.kind == TokenKind::Session) else {
            return Ok(());
        };
        self.write(Some(record.user_id), |unit| {
            unit.tx.remove_token(&hash)?;
            Ok(())
        })
    }

    /// Signs in with login (or email) and password, plus a TOTP code when the
    /// user has 2FA. Every refusal looks the same to the caller; the reason is logged.
    pub async fn login(&self, request: LoginRequest, client: IpAddr) -> ServiceResult<Session> {
        let door = Door::Http { totp: request.totp };
        let user = self
            .check_sign_in(&request.login, request.password, door, client)
            .await?;
        self.open_session(user.id)
    }

    /// The one sign-in rule every door applies: lockout, secret, account state,
    /// then what the door itself requires.
    pub(crate) async fn check_sign_in(
        &self,
        login: &str,
        secret: String,
        door: Door,
        client: IpAddr,
    ) -> ServiceResult<Arc<User>> {
        // Counted as failed before the secret is looked at: a locked attempt
        // is refused alike whether the login exists or the secret is right.
        // An account named by its login or its email shares one budget.
        let mut snapshot = self.snapshot();
        let mut local_id = snapshot.user_id_by_login_or_email(login)?;
        if local_id.is_none() && self.store().shares_state() {
            // Perhaps created a moment ago on another daemon.
            super::core::offload(|| self.store().catch_up())?;
            snapshot = self.snapshot();
            local_id = snapshot.user_id_by_login_or_email(login)?;
        }
        let subject = match local_id {
            Some(id) => format!("\u{0}account {id}"),
            None => login.to_owned(),
        };
        let attempt = self.begin_attempt(&subject, client, &door).await?;
        if !attempt.delay.is_zero() {
            tokio::time::sleep(attempt.delay).await;
        }
        let local = match local_id {
            Some(id) => snapshot.user(id)?.map(Arc::new),
            None => None,
        };
        let local_credentials = match &local {
            Some(user) => snapshot.credentials(user.id)?,
            None => Default::default(),
        };
        let hash = local_credentials.password_hash.clone();
        let (user, verdict) = self.check_secret(local, login, secret, hash, &door).await?;
        let credentials = match &user {
            Some(user) if Some(user.id) != local_id => self.snapshot().credentials(user.id)?,
            _ => local_credentials,
        };
        let now = self.now();
        let mut refusal = match &user {
            _ if verdict.is_err() => verdict.err(),
            None => Some("unknown login".to_owned()),
            Some(user) => check_account(user, now)
                .err()
                .map(|r| r.to_string())
                .or_else(|| door.refusal(&self.settings.ftp, user).map(str::to_owned)),
        };
        if let (None, Some(user), Door::Http { totp }, Some(sealed)) =
            (&refusal, &user, &door, &credentials.totp_secret)
        {
            refusal = self
                .use_totp_code(user.id, sealed, totp.as_deref(), now)?
                .map(str::to_owned);
        }
        match (refusal, user) {
            (None, Some(user)) => {
                attempt.succeed();
                crate::telemetry::sign_in(door.name(), "ok");
                self.hourly.record(now, true);
                Ok(user)
            }
            (reason, user) => {
                crate::telemetry::sign_in(door.name(), "refused");
                self.hourly.record(now, false);
                let reason = reason.unwrap_or_default();
                tracing::info!(user_id = user.map(|u| u.id), %client, door = door.name(), reason, "sign-in refused");
                Err(ServiceError::InvalidCredentials)
            }
        }
    }

    /// Begins a throttled attempt, waiting while the attempts in flight could
    /// use up the remaining budget (a burst of right passwords gets in, one
    /// after another); refused when locked, or after waiting [`MAX_WAIT`].
    async fn begin_attempt(
        &self,
        subject: &str,
        client: IpAddr,
        door: &Door,
    ) -> ServiceResult<Attempt<'_>> {
        let started = std::time::Instant::now();
        loop {
            match self.throttle.begin(subject, client, self.now()) {
                Ok(attempt) => return Ok(attempt),
                Err(Refusal::Busy) if started.elapsed() < MAX_WAIT => {
                    tokio::time::sleep(WAIT_STEP).await;
                }
                Err(refusal) => {
                    crate::telemetry::sign_in(door.name(), "locked");
                    tracing::info!(%client, door = door.name(), ?refusal, "sign-in refused: locked out");
                    let retry_after = match refusal {
                        Refusal::Locked(wait) => wait,
                        Refusal::Busy => WAIT_STEP,
                    };
                    return Err(ServiceError::TooManyAttempts { retry_after });
                }
            }
        }
    }

    /// Checks a 2FA code against the sealed seed and uses it up: a code (its
    /// time step) is accepted once, even by two sign-ins at the same moment.
    fn use_totp_code(
        &self,
        id: UserId,
        sealed: &str,
        code: Option<&str>,
        now: Timestamp,
    ) -> ServiceResult<Option<&'static str>> {
        let step = match self.totp_step(sealed, code, now) {
            Ok(step) => step,
            // Answered like any refusal (the caller learns nothing), logged
            // for the operator: the seed cannot be opened with secret.key.
            Err(error) => {
                tracing::error!(user_id = id, %error, "2FA seed cannot be opened");
                return Ok(Some("2FA seed unreadable"));
            }
        };
        let Some(step) = step else {
            return Ok(Some("missing or wrong 2FA code"));
        };
        self.write(Some(id), |unit| {
            let mut credentials = unit.tx.credentials(id)?;
            if !credentials.use_totp_step(step) {
                return Ok(Some("2FA code already used"));
            }
            unit.tx.put_credentials(id, &credentials)?;
            Ok(None)
        })
    }

    /// Checks the secret (`password_hash` is the local user's): through the external directory for directory users (and
    /// unknown logins when one is configured), else the local password or, for
    /// doors that want one, the API token. Returns the (possibly new) user.
    async fn check_secret(
        &self,
        local: Option<Arc<User>>,
        login: &str,
        secret: String,
        password_hash: Option<String>,
        door: &Door,
    ) -> ServiceResult<(Option<Arc<User>>, Result<(), String>)> {
        if let Some(external) = self.sync.external_for(local.as_deref()) {
            // Only names that are valid logins reach the directory, NFKC-normalised,
            // so a spelling the directory would fold differently gets no
            // budget of its own.
            let Ok(login) = crate::domain::names::Login::parse(login) else {
                self.hasher.verify(secret, None).await?;
                return Ok((local, Err("not a valid login".into())));
            };
            let login = login.as_str();
            return Ok(
                match self.sync.sign_in_externally(external, login, &secret).await {
                    Ok(Some(user)) => (Some(user), Ok(())),
                    Ok(None) => (local, Err("directory refused the password".into())),
                    Err(reason) => (local, Err(reason)),
                },
            );
        }
        let matched = match &local {
            Some(user) if door.takes_api_token(user) => self.is_api_token_of(&secret, user.id)?,
            _ => {
                self.verify_password(local.as_deref(), secret, password_hash)
                    .await?
            }
        };
        Ok((
            local,
            if matched {
                Ok(())
            } else {
                Err("wrong password".into())
            },
        ))
    }

    /// Verifies a local password, or finds it verified moments ago (see
    /// `password_cache.rs`).
    async fn verify_password(
        &self,
        user: Option<&User>,
        password: String,
        stored: Option<String>,
    ) -> ServiceResult<bool> {
        let fingerprint = match (user, &stored) {
            (Some(user), Some(stored)) => self.password_cache.fingerprint(user, stored, &password),
            _ => None,
        };
        if fingerprint
            .as_ref()
            .is_some_and(|f| self.password_cache.knows(f))
        {
            return Ok(true);
        }
        let matched = self.hasher.verify(password, stored).await?;
        if let (true, Some(fingerprint)) = (matched, fingerprint) {
            self.password_cache.remember(fingerprint);
        }
        Ok(matched)
    }

    /// Whether `token` is a live API token of user `id`.
    fn is_api_token_of(&self, token: &str, id: u64) -> ServiceResult<bool> {
        let record = self.snapshot().token(&token_hash(token))?;
        Ok(record
            .is_some_and(|r| r.kind == TokenKind::Api && r.user_id == id && r.is_live(self.now())))
    }

    /// Records the sign-in and issues a session token.
    pub(super) fn open_session(&self, user_id: u64) -> ServiceResult<Session> {
        let ttl = self.settings.token_lifetime(TokenKind::Session);
        let (token, expires_at) = self.write(Some(user_id), |unit| {
            let mut user = unit.user(user_id)?;
            user.last_active_at = Some(unit.now);
            unit.save(&user)?;
            let issued = Credentials::issue_token(unit, user_id, TokenKind::Session, ttl)?;
            unit.audit(AuditAction::UserSignIn, Some(user_id), json!({}))?;
            Ok(issued)
        })?;
        Ok(Session {
            token,
            expires_at,
            user: self.current_user(user_id)?,
        })
    }
}

/// Which door a sign-in comes through, with what that door requires.
pub(crate) enum Door {
    /// The admin API and self service: a TOTP code when the user has 2FA.
    Http { totp: Option<String> },
    /// FTPS: an FTP account; users with 2FA or SSO give their API token as password.
    Ftp,
}

impl Door {
    fn name(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::Ftp => "ftp",
        }
    }

    fn takes_api_token(&self, user: &User) -> bool {
        matches!(self, Self::Ftp) && (user.two_factor_enabled || user.user_type == UserType::Sso)
    }

    /// What the door itself refuses (the 2FA code of HTTP sign-ins is checked
    /// apart, as it is used up).
    pub(crate) fn refusal(&self, ftp: &FtpSettings, user: &User) -> Option<&'static str> {
        match self {
            Self::Http { .. } => None,
            Self::Ftp if !ftp.grants_access(user) => Some("no FTP account"),
            // FTP has no way to change a password or enrol: refused until done.
            Self::Ftp => pending_obligation(user).map(|_| "an obligation is pending"),
        }
    }
}
