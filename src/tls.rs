//! TLS material for FTPS and the admin API: the configured certificate and
//! key, or, when none is configured and none exists yet, a self-signed
//! development pair generated on first start under `certs/`; and
//! [`CertStore`], which serves the pair to every new handshake and can read
//! it again (SIGHUP) without touching connections already open.

use crate::config::TlsConfig;
use std::io::Write;
use std::path::{Path, PathBuf};

const DEFAULT_CERT: &str = "certs/gatehouse.crt";
const DEFAULT_KEY: &str = "certs/gatehouse.key";

/// Where the PEM certificate chain and private key are.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} = {path}: cannot read it: {source}")]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{present} exists but {missing} does not; provide both or neither")]
    HalfPair { present: PathBuf, missing: PathBuf },
    #[error("cannot generate a development certificate: {0}")]
    Generate(String),
}

/// Resolves the certificate pair: configured paths must be readable; the
/// defaults are generated when neither file exists.
pub fn resolve(config: &TlsConfig) -> Result<CertPaths, TlsError> {
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        check_readable("tls.cert", cert)?;
        check_readable("tls.key", key)?;
        return Ok(CertPaths {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let paths = CertPaths {
        cert: PathBuf::from(DEFAULT_CERT),
        key: PathBuf::from(DEFAULT_KEY),
    };
    match (paths.cert.exists(), paths.key.exists()) {
        (true, true) => {}
        (false, false) => {
            generate_self_signed(&paths.cert, &paths.key)?;
            tracing::warn!(cert = %paths.cert.display(), key = %paths.key.display(),
                "no TLS certificate configured: generated a self-signed one for development");
        }
        (true, false) => {
            return Err(TlsError::HalfPair {
                present: paths.cert,
                missing: paths.key,
            });
        }
        (false, true) => {
            return Err(TlsError::HalfPair {
                present: paths.key,
                missing: paths.cert,
            });
        }
    }
    Ok(paths)
}

fn check_readable(key: &'static str, path: &Path) -> Result<(), TlsError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|source| TlsError::Unreadable {
            key,
            path: path.to_owned(),
            source,
        })
}

/// Writes a self-signed certificate for localhost and its key (mode 0600).
pub fn generate_self_signed(cert: &Path, key: &Path) -> Result<(), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let io = |e: std::io::Error| TlsError::Generate(e.to_string());
    for path in [cert, key] {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
    }
    std::fs::write(cert, generated.cert.pem()).map_err(io)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(key).map_err(io)?;
    file.write_all(generated.signing_key.serialize_pem().as_bytes())
        .map_err(io)
}

/// The certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read the certificate {0}: {1}")]
    Certificate(String, String),
    #[error("cannot read the private key {0}: {1}")]
    Key(String, String),
}

/// The current certificate pair, handed to each new TLS handshake.
#[derive(Debug)]
pub struct CertStore {
    paths: CertPaths,
    current: arc_swap::ArcSwap<rustls::sign::CertifiedKey>,
}

impl CertStore {
    pub fn load(paths: CertPaths) -> Result<Self, CertError> {
        let current = arc_swap::ArcSwap::from_pointee(read_pair(&paths)?);
        Ok(Self { paths, current })
    }

    /// Reads the files again; new handshakes get the new pair, open
    /// connections keep theirs. A pair that does not load leaves the old one.
    pub fn reload(&self) -> Result<(), CertError> {
        let pair = read_pair(&self.paths)?;
        self.current.store(std::sync::Arc::new(pair));
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for CertStore {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_pair(paths: &CertPaths) -> Result<rustls::sign::CertifiedKey, CertError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_name = paths.cert.display().to_string();
    let key_name = paths.key.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| CertError::Certificate(cert_name.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(CertError::Certificate(
            cert_name,
            "no certificate in it".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| CertError::Key(key_name.clone(), e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::Key(key_name.clone(), e.to_string()))?;
    let pair = rustls::sign::CertifiedKey::new(certs, signing);
    // A certificate renewed before its key (or the other way round) is no pair.
    pair.keys_match()
        .map_err(|e| CertError::Key(key_name, format!("does not match the certificate: {e}")))?;
    Ok(pair)
}

/// A TLS server configuration (TLS 1.2 and 1.3, ring) serving `store`'s pair.
pub fn server_config(
    store: std::sync::Arc<CertStore>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_paths_must_exist_and_generation_writes_a_pair() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        let config = TlsConfig {
            cert: Some(cert.clone()),
            key: Some(key.clone()),
        };
        let error = resolve(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("tls.cert"), "{error}");
        generate_self_signed(&cert, &key).unwrap_or_else(|e| panic!("{e}"));
        assert!(resolve(&config).is_ok());
        let pem = std::fs::read_to_string(&cert).unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (cert_a, key_a) = (dir.path().join("a.crt"), dir.path().join("a.key"));
        let (cert_b, key_b) = (dir.path().join("b.crt"), dir.path().join("b.key"));
        generate_self_signed(&cert_a, &key_a).unwrap_or_else(|e| panic!("{e}"));
        generate_self_signed(&cert_b, &key_b).unwrap_or_else(|e| panic!("{e}"));
        let pair = |cert: &Path, key: &Path| CertPaths {
            cert: cert.to_owned(),
            key: key.to_owned(),
        };
        assert!(CertStore::load(pair(&cert_a, &key_a)).is_ok());
        let mixed = CertStore::load(pair(&cert_a, &key_b))
            .err()
            .map(|e| e.to_string());
        assert!(mixed.is_some_and(|e| e.contains("does not match")));
        let store = CertStore::load(pair(&cert_b, &key_b)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(&key_a, &key_b).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.reload().is_err(), "a half-renewed pair is kept out");
    }
}
