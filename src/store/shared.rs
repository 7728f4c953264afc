//! State that several daemons on one store must share besides the directory
//! itself: failed sign-ins (so a lockout holds whichever daemon a client
//! reaches) and the quota held by uploads in progress (so uploads of one
//! user on several daemons stay within the quota together). An embedded
//! store has one daemon and offers neither; the services then keep both in
//! memory.

use super::{ReadView, StoreError};
use crate::domain::user::UserId;

/// A sign-in counter's key: a digest of what it counts (a login from an
/// address, an address, a login), the same on every daemon.
pub type CounterKey = [u8; 32];

/// A counter as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCount {
    pub failures: u32,
    /// When the last failure was counted.
    pub last: i64,
    /// When a success last forgave the failures.
    pub forgiven_at: Option<i64>,
}

/// Failed sign-ins, counted in the store. Times are Unix seconds of the
/// directory's clock.
pub trait FailureLedger: Send + Sync {
    /// For each key: its counter, when its last failure or forgiveness is
    /// within `memory` seconds of `now`.
    fn failures(
        &self,
        keys: &[CounterKey],
        now: i64,
        memory: i64,
    ) -> Result<Vec<Option<SharedCount>>, StoreError>;

    /// Counts a failure under each key at `now`; a counter whose last failure
    /// is older than `window` seconds starts again from one.
    fn record_failure(&self, keys: &[CounterKey], now: i64, window: i64) -> Result<(), StoreError>;

    /// Forgives the failures under `keys` at `now` (a successful sign-in).
    fn forgive(&self, keys: &[CounterKey], now: i64) -> Result<(), StoreError>;
}

/// Bytes and files held by uploads in progress, per user, on every daemon.
pub trait QuotaHolds: Send + Sync {
    /// Adds `bytes` and `files` to this daemon's hold for `user` if `fits`
    /// accepts them, given the store's latest state (every daemon's commits
    /// included) and what every daemon holds for the user now. Decided under
    /// the store's writer lock, so two daemons never both take the last room.
    fn hold(
        &self,
        user: UserId,
        bytes: u64,
        files: u64,
        fits: &mut dyn FnMut(&dyn ReadView, u64, u64) -> bool,
    ) -> Result<bool, StoreError>;

    /// Gives back what [`QuotaHolds::hold`] took.
    fn release(&self, user: UserId, bytes: u64, files: u64) -> Result<(), StoreError>;
}
