//! Sign-in throttling for every door (HTTP, FTPS, directory sign-in), in the
//! way of SFTPGo's defender and Keycloak's brute-force detection:
//!
//! - Attempts in flight count against the budget *before* their secret is
//!   checked, so a concurrent burst gets at most `max_failures` guesses
//!   through, never one more; the rest wait their turn ([`Refusal::Busy`])
//!   instead of being locked, so twenty sessions of one camera trap signing
//!   in at once all get in. An attempt not marked successful counts as failed.
//! - The lock is per login *and* client address, with exponential backoff:
//!   an attacker elsewhere cannot lock the owner out.
//! - Across addresses a login only slows down (a bounded delay), and each
//!   address has a budget of failures over all logins (against spraying).
//! - State lives in a fixed-size table of hashed keys, so a flood of distinct
//!   logins costs a bounded amount of memory; the stalest entry makes room.
//! - On a store shared by several daemons the failures are also counted in
//!   the store ([`shared`]), and a lock found there holds here too.

mod shared;
mod table;

use crate::config::SignInConfig;
use crate::domain::clock::Timestamp;
use crate::domain::names::fold;
use crate::domain::signin::client_bucket;
use crate::store::shared::FailureLedger;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use table::{PROBE, Slot, Table};

/// Longest delay a login's failures from other addresses add to an attempt.
const MAX_LOGIN_DELAY: Duration = Duration::from_secs(2);
/// First step of that delay.
const LOGIN_DELAY_STEP: Duration = Duration::from_millis(100);

/// One attempt in progress: a failure when dropped, unless [`Attempt::succeed`]ed.
pub struct Attempt<'a> {
    throttle: &'a SignInThrottle,
    pair: u64,
    address: u64,
    login: u64,
    /// Unix seconds when it began.
    began: i64,
    ended: bool,
    /// The keys of the same counters in the store's ledger, if shared, and
    /// whether there were failures to forgive under them.
    shared: Option<(shared::SharedKeys, bool)>,
    /// How long to wait before checking the secret.
    pub delay: Duration,
}

/// Why an attempt may not begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked for this long.
    Locked(Duration),
    /// As many attempts as failures may still be made are in flight: try
    /// again once one ends.
    Busy,
}

pub struct SignInThrottle {
    max_failures: u32,
    address_failures: u32,
    window: i64,
    lockout: i64,
    max_lockout: i64,
    hasher: RandomState,
    table: Mutex<Table>,
    shared: Option<shared::SharedCounters>,
}

impl SignInThrottle {
    pub fn new(config: &SignInConfig) -> Self {
        let capacity = config.tracked_entries.max(PROBE).next_power_of_two();
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            max_failures: config.max_failures.max(1),
            address_failures: config.address_failures.max(1),
            window: seconds(config.failure_window),
            lockout: seconds(config.lockout).max(1),
            max_lockout: seconds(config.max_lockout).max(1),
            hasher: RandomState::new(),
            table: Mutex::new(Table {
                slots: vec![Slot::default(); capacity],
            }),
            shared: None,
        }
    }

    /// Counts failures in `ledger` too, for a store several daemons share.
    pub fn shared_through(mut self, ledger: Option<std::sync::Arc<dyn FailureLedger>>) -> Self {
        self.shared = ledger.map(shared::SharedCounters::new);
        self
    }

    fn key(&self, kind: u8, login: Option<&str>, address: Option<IpAddr>) -> u64 {
        let address = address.map(client_bucket);
        self.hasher.hash_one((kind, login, address)).max(1)
    }

    /// The remaining lock of a counter with `failures` (last at `last`) that
    /// allows `limit`: none below the limit, then `lockout` doubling per
    /// further failure up to `max_lockout`.
    fn remaining(&self, failures: u32, last: i64, limit: u32, now: i64) -> Option<Duration> {
        if failures < limit {
            return None;
        }
        let doublings = (failures - limit).min(32);
        let lock = self
            .lockout
            .saturating_mul(1 << doublings)
            .min(self.max_lockout);
        let until = last.saturating_add(lock);
        (until > now).then(|| Duration::from_secs(u64::try_from(until - now).unwrap_or(1)))
    }

    /// Starts an attempt on `subject` (the account's id when the login or email
    /// names one, so both count alike; else the login as typed) from `address`
    /// (counted per [`client_bucket`]); refused with how long to wait when the
    /// login from this address, or the address itself, is locked, or asked to
    /// wait while the attempts in flight could use up the remaining budget.
    pub fn begin(
        &self,
        login: &str,
        address: IpAddr,
        now: Timestamp,
    ) -> Result<Attempt<'_>, Refusal> {
        let login = fold(login);
        let now = now.timestamp();
        let memory = self.window.max(self.max_lockout);
        let shared_keys = self
            .shared
            .as_ref()
            .map(|_| shared::SharedCounters::keys(&login, address));
        // Read before the table is locked: the store may take a moment.
        let shared_counts = match (&self.shared, &shared_keys) {
            (Some(shared), Some(keys)) => {
                Some(shared.counts(keys, now, memory).ok_or(Refusal::Busy)?)
            }
            _ => None,
        };
        let mut attempt = Attempt {
            throttle: self,
            pair: self.key(0, Some(&login), Some(address)),
            address: self.key(1, None, Some(address)),
            login: self.key(2, Some(&login), None),
            began: now,
            ended: true,
            shared: None,
            delay: Duration::ZERO,
        };
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // A success on another daemon forgave what this table still counts.
        if let Some(counts) = &shared_counts {
            for (key, count) in [(attempt.pair, counts[0]), (attempt.login, counts[2])] {
                let forgiven = count.and_then(|count| count.forgiven_at);
                if let (Some(forgiven), Some(slot)) = (forgiven, table.live(key, now, memory)) {
                    if slot.last <= forgiven {
                        slot.failures = 0;
                    }
                }
            }
        }
        // Looked at without claiming slots: a locked flood changes nothing.
        let limits = [
            (attempt.address, self.address_failures),
            (attempt.pair, self.max_failures),
        ];
        let counters: Vec<(Slot, u32)> = limits
            .iter()
            .filter_map(|(key, limit)| Some((table.peek(*key, now, memory)?, *limit)))
            .collect();
        // This daemon's counts and, on a shared store, every daemon's: a
        // lock in either holds (and a store that cannot count fails closed).
        let elsewhere = shared_counts.iter().flat_map(|counts| {
            [
                (counts[1], self.address_failures),
                (counts[0], self.max_failures),
            ]
        });
        let locked = counters
            .iter()
            .map(|(slot, limit)| (slot.failures, slot.last, *limit))
            .chain(elsewhere.filter_map(|(count, limit)| {
                count.map(|count| (count.failures, count.last, limit))
            }))
            .filter_map(|(n, last, limit)| self.remaining(n, last, limit, now))
            .max();
        if let Some(wait) = locked {
            return Err(Refusal::Locked(wait));
        }
        // In flight here, with the failures counted here or anywhere.
        let counted_anywhere = |key: u64, slot: &Slot| {
            let index = if key == attempt.pair { 0 } else { 1 };
            let shared = shared_counts
                .and_then(|counts| counts[index])
                .map_or(0, |count| count.failures);
            slot.failures.max(shared)
        };
        let busy = limits.iter().any(|(key, limit)| {
            table.peek(*key, now, memory).is_some_and(|slot| {
                slot.pending > 0
                    && counted_anywhere(*key, &slot).saturating_add(slot.pending) >= *limit
            })
        });
        if busy {
            return Err(Refusal::Busy);
        }
        for key in [attempt.pair, attempt.address] {
            let slot = table.slot(key, now, memory);
            slot.pending = slot.pending.saturating_add(1);
        }
        let shared_login = shared_counts
            .and_then(|counts| counts[2])
            .filter(|count| now - count.last <= self.window)
            .map_or(0, |count| count.failures);
        let login_failures = table
            .slot(attempt.login, now, self.window)
            .failures
            .max(shared_login);
        let pair_failed = counters.get(1).is_some_and(|(slot, _)| slot.failures > 0);
        let forgivable = pair_failed
            || login_failures > 0
            || shared_counts.is_some_and(|c| c[0].is_some_and(|count| count.failures > 0));
        attempt.shared = shared_keys.map(|keys| (keys, forgivable));
        let over = login_failures.saturating_sub(self.max_failures).min(16);
        if login_failures >= self.max_failures {
            attempt.delay = LOGIN_DELAY_STEP
                .saturating_mul(1 << over)
                .min(MAX_LOGIN_DELAY);
        }
        attempt.ended = false;
        Ok(attempt)
    }

    /// Ends an attempt: a success starts its login afresh from this address
    /// and everywhere; a failure counts for the pair, the address and the login.
    fn end(&self, attempt: &Attempt, succeeded: bool) {
        let now = attempt.began;
        let memory = self.window.max(self.max_lockout);
        if let (Some(shared), Some((keys, forgivable))) = (&self.shared, &attempt.shared) {
            match succeeded {
                true if *forgivable => shared.succeeded(keys, now),
                true => {}
                false => shared.failed(keys, now, memory),
            }
        }
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        for key in [attempt.pair, attempt.address] {
            let slot = table.slot(key, now, memory);
            slot.pending = slot.pending.saturating_sub(1);
        }
        if succeeded {
            // The pair's slot is kept as long as its lock may last (with the
            // attempts still in flight); the login's only for the window.
            table.slot(attempt.pair, now, memory).failures = 0;
            table.slot(attempt.login, now, self.window).failures = 0;
            return;
        }
        for key in [attempt.pair, attempt.address, attempt.login] {
            let slot = table.slot(key, now, memory);
            slot.failures = slot.failures.saturating_add(1);
            slot.last = now;
        }
    }

    /// The memory the table takes, in bytes (fixed at start).
    #[cfg(test)]
    fn footprint(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.slots.len() * std::mem::size_of::<Slot>()
    }
}

impl Attempt<'_> {
    /// The secret was right: forgive this login its failures.
    pub fn succeed(mut self) {
        self.ended = true;
        self.throttle.end(&self, true);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.ended = true;
            self.throttle.end(self, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(&SignInConfig {
            max_failures: 3,
            address_failures: 10,
            failure_window: Duration::from_secs(900),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
            tracked_entries: 1024,
            password_cache: Duration::ZERO,
        })
    }

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn counts_before_checking_and_backs_off_exponentially() {
        let throttle = throttle();
        let now = Utc::now();
        let attempts: Vec<_> = (0..10)
            .map(|_| throttle.begin("Alice", addr(1), now))
            .collect();
        assert_eq!(attempts.iter().filter(|a| a.is_ok()).count(), 3);
        assert!(
            attempts
                .iter()
                .skip(3)
                .all(|a| matches!(a, Err(Refusal::Busy)))
        );
        drop(attempts);
        assert_eq!(
            throttle.begin("alice", addr(1), now).err(),
            Some(Refusal::Locked(Duration::from_secs(60)))
        );
        let later = now + chrono::Duration::seconds(61);
        assert!(
            throttle.begin("alice", addr(1), later).is_ok(),
            "one more try"
        );
        assert_eq!(
            throttle.begin("alice", addr(1), later).err(),
            Some(Refusal::Locked(Duration::from_secs(120))),
            "then twice as long"
        );
    }

    #[test]
    fn a_burst_of_right_passwords_waits_its_turn_and_all_get_in() {
        let throttle = throttle();
        let now = Utc::now();
        let mut admitted = 0;
        for _ in 0..20 {
            let mut waiting: Vec<Attempt> = Vec::new();
            while let Ok(attempt) = throttle.begin("trap", addr(4), now) {
                waiting.push(attempt);
            }
            assert_eq!(waiting.len(), 3, "at most max_failures in flight");
            for attempt in waiting {
                attempt.succeed();
                admitted += 1;
            }
        }
        assert_eq!(admitted, 60);
        assert!(throttle.begin("trap", addr(4), now).is_ok());
    }

    #[test]
    fn another_address_is_slowed_not_locked_and_success_forgives() {
        let throttle = throttle();
        let now = Utc::now();
        for _ in 0..3 {
            assert!(throttle.begin("alice", addr(1), now).is_ok());
        }
        assert!(throttle.begin("alice", addr(1), now).is_err());
        let owner = throttle.begin("alice", addr(2), now);
        let owner = owner.ok().filter(|a| a.delay > Duration::ZERO);
        assert!(
            owner.is_some(),
            "the owner elsewhere gets in, a little later"
        );
        if let Some(owner) = owner {
            assert!(owner.delay <= MAX_LOGIN_DELAY);
            owner.succeed();
        }
        let next = throttle.begin("alice", addr(2), now);
        assert_eq!(next.map(|a| a.delay).ok(), Some(Duration::ZERO));
    }

    #[test]
    fn an_address_spraying_many_logins_runs_out_of_budget() {
        let throttle = throttle();
        let now = Utc::now();
        let passed = (0..50)
            .filter(|n| throttle.begin(&format!("user{n}"), addr(9), now).is_ok())
            .count();
        assert_eq!(passed, 10);
        assert!(throttle.begin("someone", addr(8), now).is_ok());
    }

    #[test]
    fn a_locked_address_flooding_new_logins_evicts_nobody() {
        let throttle = throttle();
        let now = Utc::now();
        for _ in 0..2 {
            assert!(throttle.begin("victim", addr(3), now).is_ok());
        }
        for n in 0..100_000 {
            let _ = throttle.begin(&format!("spray{n}"), addr(9), now);
        }
        assert!(throttle.begin("victim", addr(3), now).is_ok());
        assert!(
            throttle.begin("victim", addr(3), now).is_err(),
            "the victim's two earlier failures were kept"
        );
    }

    #[test]
    fn a_flood_of_logins_stays_within_the_table() {
        let throttle = throttle();
        let now = Utc::now();
        for n in 0..100_000u32 {
            let address = IpAddr::from(n.to_be_bytes());
            let _ = throttle.begin(&format!("flood{n}"), address, now);
        }
        assert_eq!(throttle.footprint(), 1024 * std::mem::size_of::<Slot>());
        for _ in 0..3 {
            assert!(throttle.begin("victim", addr(3), now).is_ok());
        }
        assert!(
            throttle.begin("victim", addr(3), now).is_err(),
            "fresh keys still lock"
        );
    }
}
