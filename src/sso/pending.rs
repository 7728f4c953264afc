//! Sign-ins on their way through a provider: what the callback needs (PKCE
//! verifier, nonce, where to go after) under the `state` sent along. Each is
//! taken once; they expire after `[sso] login_timeout`; there are at most
//! [`MAX_PENDING`] at a time, the oldest making room, and at most
//! [`MAX_PER_CLIENT`] from one client address, so one client cannot push
//! everybody else's sign-ins out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sign-ins in flight at most.
const MAX_PENDING: usize = 10_000;
/// Sign-ins in flight from one client address (an IPv6 /64) at most.
const MAX_PER_CLIENT: usize = 50;

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
    client: IpAddr,
    started: Instant,
}

impl Pending {
    pub fn new(
        provider: &str,
        pkce_verifier: String,
        nonce: String,
        return_to: String,
        answer: Answer,
        client: IpAddr,
    ) -> Self {
        Self {
            client: crate::domain::signin::client_bucket(client),
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
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_state: HashMap<String, Pending>,
    per_client: HashMap<IpAddr, usize>,
}

impl Inner {
    fn remove(&mut self, state: &str) -> Option<Pending> {
        let pending = self.by_state.remove(state)?;
        if let Some(count) = self.per_client.get_mut(&pending.client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&pending.client);
            }
        }
        Some(pending)
    }

    fn drop_expired(&mut self, ttl: Duration) {
        let expired: Vec<String> = self
            .by_state
            .iter()
            .filter(|(_, p)| p.started.elapsed() >= ttl)
            .map(|(s, _)| s.clone())
            .collect();
        for state in expired {
            self.remove(&state);
        }
    }
}

/// A client with too many sign-ins in flight.
#[derive(Debug)]
pub struct TooMany;

impl PendingLogins {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn insert(&self, state: String, pending: Pending) -> Result<(), TooMany> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let full = |inner: &Inner| {
            inner.per_client.get(&pending.client).copied().unwrap_or(0) >= MAX_PER_CLIENT
        };
        if full(&inner) || inner.by_state.len() >= MAX_PENDING {
            inner.drop_expired(self.ttl);
        }
        if full(&inner) {
            return Err(TooMany);
        }
        if inner.by_state.len() >= MAX_PENDING {
            let oldest = inner
                .by_state
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(s, _)| s.clone());
            if let Some(oldest) = oldest {
                inner.remove(&oldest);
            }
        }
        *inner.per_client.entry(pending.client).or_default() += 1;
        inner.by_state.insert(state, pending);
        Ok(())
    }

    /// Takes the sign-in started with `state`, if it is live; a state works once.
    pub fn take(&self, state: &str) -> Option<Pending> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
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
        let client: IpAddr = [192, 0, 2, 1].into();
        let entry = || {
            Pending::new(
                "idp",
                "v".into(),
                "n".into(),
                "/".into(),
                Answer::Json,
                client,
            )
        };
        assert!(pending.insert("s1".into(), entry()).is_ok());
        assert!(pending.take("s1").is_some());
        assert!(pending.take("s1").is_none(), "used");
        assert!(pending.insert("s2".into(), entry()).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(pending.take("s2").is_none(), "expired");
        assert!(pending.take("never").is_none());
    }

    #[test]
    fn one_client_cannot_crowd_out_the_others() {
        let pending = PendingLogins::new(Duration::from_secs(60));
        let entry = |client: IpAddr| {
            Pending::new(
                "idp",
                "v".into(),
                "n".into(),
                "/".into(),
                Answer::Json,
                client,
            )
        };
        let flooder: IpAddr = "2001:db8::1".parse().unwrap_or_else(|e| panic!("{e}"));
        let neighbour: IpAddr = "2001:db8::2".parse().unwrap_or_else(|e| panic!("{e}"));
        for n in 0..MAX_PER_CLIENT {
            assert!(pending.insert(format!("f{n}"), entry(flooder)).is_ok());
        }
        assert!(
            pending.insert("more".into(), entry(neighbour)).is_err(),
            "same /64"
        );
        assert!(
            pending
                .insert("other".into(), entry([192, 0, 2, 9].into()))
                .is_ok()
        );
        assert!(pending.take("f0").is_some());
        assert!(
            pending.insert("again".into(), entry(flooder)).is_ok(),
            "room again"
        );
    }
}
