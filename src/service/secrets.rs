//! Sealing of secrets kept at rest (TOTP seeds): ChaCha20-Poly1305 under a
//! 256-bit key that lives in its own file in the data directory (mode 0600),
//! never in the store, so a copy of the store alone reveals no seed.

use super::error::{ServiceError, ServiceResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a sealed value; anything else is a seed stored before sealing existed.
const SEALED_PREFIX: &str = "sealed1:";
pub const KEY_LEN: usize = 32;

/// The sealing key's file in the data directory.
pub const KEY_FILE: &str = "secret.key";

pub struct SecretSealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl SecretSealer {
    pub fn new(key: &[u8; KEY_LEN]) -> ServiceResult<Self> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| ServiceError::Sealing)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        })
    }

    /// A fresh random key (for a new data directory).
    pub fn generate_key() -> ServiceResult<[u8; KEY_LEN]> {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| ServiceError::Sealing)?;
        Ok(key)
    }

    /// Encrypts `plain` under a random nonce.
    pub fn seal(&self, plain: &str) -> ServiceResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| ServiceError::Sealing)?;
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .map_err(|_| ServiceError::Sealing)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Whether `stored` was sealed (rather than kept in clear by an older version).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Decrypts a value from [`SecretSealer::seal`]; an unsealed (older) value
    /// is returned as it is.
    pub fn open(&self, stored: &str) -> ServiceResult<String> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| ServiceError::Sealing)?;
        if bytes.len() < NONCE_LEN {
            return Err(ServiceError::Sealing);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ServiceError::Sealing)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| ServiceError::Sealing)?;
        String::from_utf8(plain.to_vec()).map_err(|_| ServiceError::Sealing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_rejects_tampering_or_another_key() {
        let key = SecretSealer::generate_key().unwrap_or([1; KEY_LEN]);
        let Ok(sealer) = SecretSealer::new(&key) else {
            panic!("a 32-byte key is valid");
        };
        let sealed = sealer.seal("JBSWY3DPEHPK3PXP").unwrap_or_default();
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("JBSWY3DP"));
        assert_ne!(
            sealer.seal("JBSWY3DPEHPK3PXP").ok(),
            Some(sealed.clone()),
            "random nonce"
        );
        assert_eq!(
            sealer.open(&sealed).ok().as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert_eq!(
            sealer.open("LEGACYPLAIN").ok().as_deref(),
            Some("LEGACYPLAIN")
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open(&String::from_utf8_lossy(&tampered)).is_err());
        let Ok(other) = SecretSealer::new(&[9; KEY_LEN]) else {
            panic!("valid key");
        };
        assert!(other.open(&sealed).is_err());
    }
}
