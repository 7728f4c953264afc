//! Sign-in throttling: repeated failures lock out the login and the client
//! address for a while. Kept in memory; a restart forgets it.

use crate::config::SignInConfig;
use crate::domain::clock::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Entries kept before stale ones are swept.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    first_failure: Timestamp,
    locked_until: Option<Timestamp>,
}

pub struct SignInThrottle {
    max_failures: u32,
    window: chrono::Duration,
    lockout: chrono::Duration,
    records: Mutex<HashMap<String, Record>>,
}

fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl SignInThrottle {
    pub fn new(config: &SignInConfig) -> Self {
        Self {
            max_failures: config.max_failures,
            window: to_chrono(config.failure_window),
            lockout: to_chrono(config.lockout),
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The longest remaining lockout among `keys`, if any is locked at `now`.
    pub fn locked(&self, keys: &[String], now: Timestamp) -> Option<Duration> {
        let records = self.records();
        keys.iter()
            .filter_map(|key| records.get(key)?.locked_until)
            .filter(|until| *until > now)
            .max()
            .map(|until| (until - now).to_std().unwrap_or_default())
    }

    /// Counts a failure against every key; a key reaching the limit is locked.
    pub fn fail(&self, keys: &[String], now: Timestamp) {
        let mut records = self.records();
        if records.len() > SWEEP_THRESHOLD {
            let horizon = self.window.max(self.lockout);
            records.retain(|_, r| {
                now - r.first_failure < horizon || r.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in keys {
            let record = records.entry(key.clone()).or_insert(Record {
                failures: 0,
                first_failure: now,
                locked_until: None,
            });
            if now - record.first_failure >= self.window
                || record.locked_until.is_some_and(|u| u <= now)
            {
                *record = Record {
                    failures: 0,
                    first_failure: now,
                    locked_until: None,
                };
            }
            record.failures += 1;
            if record.failures >= self.max_failures {
                record.locked_until = Some(now + self.lockout);
            }
        }
    }

    /// Forgets the failures of `key` after a successful sign-in.
    pub fn succeed(&self, key: &str) {
        self.records().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn locks_after_limit_and_releases_after_lockout() {
        let throttle = SignInThrottle::new(&SignInConfig {
            max_failures: 3,
            failure_window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        });
        let keys = vec!["login:a".to_owned(), "addr:1".to_owned()];
        let now = Utc::now();
        throttle.fail(&keys, now);
        throttle.fail(&keys, now);
        assert_eq!(throttle.locked(&keys, now), None);
        throttle.fail(&keys, now);
        assert!(throttle.locked(&keys, now).is_some());
        assert!(throttle.locked(&["addr:1".to_owned()], now).is_some());
        assert_eq!(
            throttle.locked(&keys, now + chrono::Duration::seconds(301)),
            None
        );
        throttle.succeed("login:a");
        assert_eq!(throttle.locked(&["login:a".to_owned()], now), None);
    }
}
