//! The LDAP side of directory sign-in and sync (ldap3 over rustls/ring): finds
//! users with the service account, checks passwords by binding as the user,
//! reads users and group memberships with paged searches (RFC 2696), and maps
//! entries to [`DirectoryUser`]s. What to do with them is the service's job.

mod mapping;

use crate::config::LdapConfig;
use crate::domain::clock::Timestamp;
use crate::domain::external::DirectoryUser;
use crate::service::sync::{ExternalDirectory, ExternalError, Snapshot};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use mapping::Mapper;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// LDAP result code of a failed bind.
const INVALID_CREDENTIALS: u32 = 49;

#[derive(Debug, thiserror::Error)]
pub enum LdapSetupError {
    #[error("ldap.url is not set")]
    NoUrl,
    #[error("ldap.ca_file = {0}: {1}")]
    CaFile(String, String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// A configured LDAP directory.
pub struct LdapDirectory {
    url: String,
    starttls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: Option<(String, crate::config::Secret)>,
    config: LdapConfig,
    mapper: Mapper,
}

fn unreachable(error: impl std::fmt::Display) -> ExternalError {
    ExternalError(error.to_string())
}

/// A rustls client trusting the CA certificates in `path`.
fn tls_trusting(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, LdapSetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |e: &dyn std::fmt::Display| {
        LdapSetupError::CaFile(path.display().to_string(), e.to_string())
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl LdapDirectory {
    pub fn new(config: &LdapConfig) -> Result<Self, LdapSetupError> {
        let url = config.url.clone().ok_or(LdapSetupError::NoUrl)?;
        let tls = config.ca_file.as_deref().map(tls_trusting).transpose()?;
        let password = config.service_password()?;
        let bind = config.bind_dn.clone().zip(password);
        Ok(Self {
            url,
            starttls: config.starttls,
            tls,
            bind,
            mapper: Mapper::new(config),
            config: config.clone(),
        })
    }

    async fn connect(&self) -> Result<Ldap, ExternalError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(CONNECT_TIMEOUT)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (connection, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(unreachable)?;
        ldap3::drive!(connection);
        ldap.with_timeout(OPERATION_TIMEOUT);
        Ok(ldap)
    }

    /// A connection bound as the service account (or anonymous without one).
    async fn service_connection(&self) -> Result<Ldap, ExternalError> {
        let mut ldap = self.connect().await?;
        if let Some((dn, password)) = &self.bind {
            ldap.simple_bind(dn, password.expose())
                .await
                .and_then(|r| r.success())
                .map_err(unreachable)?;
        }
        Ok(ldap)
    }

    /// Runs a paged search and returns every entry; `progress` hears the count.
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: &[String],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<SearchEntry>, ExternalError> {
        let page_size = i32::try_from(self.config.page_size).unwrap_or(i32::MAX);
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(page_size)),
        ];
        let mut stream = ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(unreachable)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(unreachable)? {
            entries.push(SearchEntry::construct(entry));
            if entries.len() % 1000 == 0 {
                progress(entries.len());
            }
        }
        stream.finish().await.success().map_err(unreachable)?;
        progress(entries.len());
        Ok(entries)
    }

    /// Mapped automatic groups per member DN (case-folded), from groups matching `filter`.
    async fn memberships(
        &self,
        ldap: &mut Ldap,
        filter: &str,
    ) -> Result<HashMap<String, BTreeSet<String>>, ExternalError> {
        if self.config.group_map.is_empty() || self.config.group_base.is_empty() {
            return Ok(HashMap::new());
        }
        let attrs = vec!["cn".to_owned(), self.config.group_member_attribute.clone()];
        let groups = self
            .search(ldap, &self.config.group_base, filter, &attrs, &|_| {})
            .await?;
        Ok(self.mapper.memberships(&groups))
    }
}

#[async_trait::async_trait]
impl ExternalDirectory for LdapDirectory {
    async fn check(&self) -> Result<(), ExternalError> {
        let mut ldap = self.service_connection().await?;
        let _ = ldap.unbind().await;
        Ok(())
    }

    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<DirectoryUser>, ExternalError> {
        if password.is_empty() {
            return Ok(None);
        }
        let mut service = self.service_connection().await?;
        let filter = format!(
            "(&{}({}={}))",
            self.config.user_filter,
            self.config.login_attribute,
            ldap_escape(login)
        );
        let found = self
            .search(
                &mut service,
                &self.config.user_base,
                &filter,
                &self.mapper.user_attributes(),
                &|_| {},
            )
            .await?;
        let [entry] = found.as_slice() else {
            return Ok(None);
        };
        let mut as_user = self.connect().await?;
        let bound = as_user
            .simple_bind(&entry.dn, password)
            .await
            .map_err(unreachable)?;
        let _ = as_user.unbind().await;
        match bound.rc {
            0 => {}
            INVALID_CREDENTIALS => return Ok(None),
            other => {
                return Err(ExternalError(format!(
                    "bind failed with LDAP result {other}: {}",
                    bound.text
                )));
            }
        }
        let member = ldap_escape(&entry.dn).into_owned();
        let group_filter = format!(
            "(&{}({}={member}))",
            self.config.group_filter, self.config.group_member_attribute
        );
        let memberships = self.memberships(&mut service, &group_filter).await?;
        let _ = service.unbind().await;
        Ok(self.mapper.user(entry, &memberships))
    }

    async fn snapshot(
        &self,
        since: Option<Timestamp>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Snapshot, ExternalError> {
        let mut ldap = self.service_connection().await?;
        let filter = match since {
            Some(since) => format!(
                "(&{}(modifyTimestamp>={}))",
                self.config.user_filter,
                since.format("%Y%m%d%H%M%SZ")
            ),
            None => self.config.user_filter.clone(),
        };
        let entries = self
            .search(
                &mut ldap,
                &self.config.user_base,
                &filter,
                &self.mapper.user_attributes(),
                progress,
            )
            .await?;
        let group_filter = self.config.group_filter.clone();
        let memberships = self.memberships(&mut ldap, &group_filter).await?;
        let _ = ldap.unbind().await;
        let users = entries
            .iter()
            .filter_map(|entry| self.mapper.user(entry, &memberships))
            .collect();
        Ok(Snapshot { users, memberships })
    }
}
