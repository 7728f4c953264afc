//! Verified passwords remembered for a short time (what SFTPGo calls password
//! caching), so a burst of sign-ins of one user (twenty FTPS sessions of a
//! camera trap) pays for one argon2 verification. Only a keyed hash is kept:
//! HMAC-SHA256 under a key made at start and never stored, over the user's
//! id, status, last change and stored password hash plus the password. Any
//! change to the user or their password gives a different key, so the entry
//! is never found again; the rest of the sign-in rules run every time.

use crate::domain::user::User;
use ring::hmac;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; past it, expired ones go, and if none has, all.
const MAX_ENTRIES: usize = 65_536;

/// Remembered verifications; a zero lifetime turns the cache off.
pub struct PasswordCache {
    lifetime: Duration,
    key: hmac::Key,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

/// What a verification is remembered by.
pub struct Fingerprint([u8; 32]);

impl PasswordCache {
    pub fn new(lifetime: Duration) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()));
        Self {
            lifetime,
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fingerprint of `password` for `user` whose stored hash is `stored`;
    /// None when the cache is off.
    pub fn fingerprint(&self, user: &User, stored: &str, password: &str) -> Option<Fingerprint> {
        if self.lifetime.is_zero() {
            return None;
        }
        let mut context = hmac::Context::with_key(&self.key);
        let status = format!("{:?}", user.status);
        let changed = user.updated_at.timestamp_micros().to_be_bytes();
        for part in [
            &user.id.to_be_bytes()[..],
            status.as_bytes(),
            &changed[..],
            stored.as_bytes(),
            password.as_bytes(),
        ] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.sign().as_ref());
        Some(Fingerprint(out))
    }

    /// Whether this verification succeeded within the lifetime.
    pub fn knows(&self, fingerprint: &Fingerprint) -> bool {
        let mut entries = self.entries();
        match entries.get(&fingerprint.0) {
            Some(at) if at.elapsed() < self.lifetime => true,
            Some(_) => {
                entries.remove(&fingerprint.0);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful verification.
    pub fn remember(&self, fingerprint: Fingerprint) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, at| at.elapsed() < self.lifetime);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(fingerprint.0, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::{Status, UserType};
    use chrono::Utc;

    #[test]
    fn any_change_to_the_user_or_password_misses() {
        let cache = PasswordCache::new(Duration::from_secs(60));
        let mut user = User::new(7, UserType::Local, Status::Active, Utc::now());
        let print = |user: &User, hash: &str, pw: &str| cache.fingerprint(user, hash, pw);
        let remembered = print(&user, "$h1", "pw").map(|f| cache.remember(f));
        assert!(remembered.is_some());
        assert!(print(&user, "$h1", "pw").is_some_and(|f| cache.knows(&f)));
        assert!(!print(&user, "$h1", "pw2").is_some_and(|f| cache.knows(&f)));
        assert!(!print(&user, "$h2", "pw").is_some_and(|f| cache.knows(&f)));
        user.status = Status::Deactivated;
        assert!(!print(&user, "$h1", "pw").is_some_and(|f| cache.knows(&f)));
        user.status = Status::Active;
        user.updated_at += chrono::Duration::seconds(1);
        assert!(!print(&user, "$h1", "pw").is_some_and(|f| cache.knows(&f)));
        let off = PasswordCache::new(Duration::ZERO);
        assert!(off.fingerprint(&user, "$h1", "pw").is_none());
    }
}
