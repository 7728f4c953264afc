//! Sign-ins on their way through a provider: what the callback needs (PKCE
//! verifier, nonce, where to go after) under the `state` sent along. Each is
//! taken once; they expire after `[sso] login_timeout`; there are at most
//! [`MAX_PENDING`] at a time, the oldest making room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sign-ins in flight at most.
const MAX_PENDING: usize = 10_000;

/// How the caller wants the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A session cookie and a redirect to `return_to` (browsers).
    Redirect,
    /// The session as JSON (API clients).
    Json,
}

/// One sign-in in flight.
#[derive(Debug, Clone)]
pub struct Pending {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
    pub answer: Answer,
    started: Instant,
}

impl Pending {
    pub fn new(
        provider: &str,
        pkce_verifier: String,
        nonce: String,
        return_to: String,
        answer: Answer,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            pkce_verifier,
            nonce,
            return_to,
            answer,
            started: Instant::now(),
        }
    }
}

pub struct PendingLogins {
    ttl: Duration,
    by_state: Mutex<HashMap<String, Pending>>,
}

impl PendingLogins {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            by_state: Mutex::new(HashMap::new()),
        }
    }

    pub fn insert(&self, state: String, pending: Pending) {
        let mut by_state = self.by_state.lock().unwrap_or_else(|p| p.into_inner());
        if by_state.len() >= MAX_PENDING {
            by_state.retain(|_, p| p.started.elapsed() < self.ttl);
        }
        if by_state.len() >= MAX_PENDING {
            let oldest = by_state
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(s, _)| s.clone());
            if let Some(oldest) = oldest {
                by_state.remove(&oldest);
            }
        }
        by_state.insert(state, pending);
    }

    /// Takes the sign-in started with `state`, if it is live; a state works once.
    pub fn take(&self, state: &str) -> Option<Pending> {
        let mut by_state = self.by_state.lock().unwrap_or_else(|p| p.into_inner());
        by_state
            .remove(state)
            .filter(|p| p.started.elapsed() < self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_works_once_and_expires() {
        let pending = PendingLogins::new(Duration::from_millis(50));
        let entry = || Pending::new("idp", "v".into(), "n".into(), "/".into(), Answer::Json);
        pending.insert("s1".into(), entry());
        assert!(pending.take("s1").is_some());
        assert!(pending.take("s1").is_none(), "used");
        pending.insert("s2".into(), entry());
        std::thread::sleep(Duration::from_millis(60));
        assert!(pending.take("s2").is_none(), "expired");
        assert!(pending.take("never").is_none());
    }
}
