//! The throttle's counters as every daemon on a shared store sees them: the
//! same three counters (a login from an address, an address, a login) kept in
//! the store's [`FailureLedger`] under digests that are equal on every daemon,
//! so a lockout earned on one daemon holds on all.

use crate::domain::signin::client_bucket;
use crate::service::core::offload;
use crate::store::shared::{CounterKey, FailureLedger, SharedCount};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

/// The shared keys of one attempt: pair, address, login.
pub(super) type SharedKeys = [CounterKey; 3];

/// The store's ledger, with the keys it counts under.
pub(super) struct SharedCounters {
    ledger: Arc<dyn FailureLedger>,
}

/// What the ledger holds for an attempt's keys.
pub(super) type Counts = [Option<SharedCount>; 3];

impl SharedCounters {
    pub(super) fn new(ledger: Arc<dyn FailureLedger>) -> Self {
        Self { ledger }
    }

    pub(super) fn keys(login: &str, address: IpAddr) -> SharedKeys {
        let digest = |kind: u8, login: Option<&str>, address: Option<IpAddr>| {
            let mut hash = Sha256::new();
            hash.update([kind]);
            if let Some(login) = login {
                hash.update((login.len() as u64).to_be_bytes());
                hash.update(login.as_bytes());
            }
            if let Some(address) = address {
                hash.update(client_bucket(address).to_string().as_bytes());
            }
            hash.finalize().into()
        };
        [
            digest(0, Some(login), Some(address)),
            digest(1, None, Some(address)),
            digest(2, Some(login), None),
        ]
    }

    /// The counters under `keys` live within `memory` seconds of `now`; an
    /// unreachable ledger is an error (the caller refuses the attempt).
    pub(super) fn counts(&self, keys: &SharedKeys, now: i64, memory: i64) -> Option<Counts> {
        match offload(|| self.ledger.failures(keys, now, memory)) {
            Ok(found) => found.try_into().ok(),
            Err(error) => {
                tracing::error!(%error, "sign-in failures cannot be read from the store");
                None
            }
        }
    }

    /// Counts a failure in the store (this daemon's table counts it too, so
    /// a store that cannot count never lets guesses through unseen).
    pub(super) fn failed(&self, keys: &SharedKeys, now: i64, memory: i64) {
        if let Err(error) = offload(|| self.ledger.record_failure(keys, now, memory)) {
            tracing::error!(%error, "a failed sign-in cannot be counted in the store");
        }
    }

    pub(super) fn succeeded(&self, keys: &SharedKeys, now: i64) {
        if let Err(error) = offload(|| self.ledger.forgive(&[keys[0], keys[2]], now)) {
            tracing::error!(%error, "a sign-in's failures cannot be forgiven in the store");
        }
    }
}
