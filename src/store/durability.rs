//! Group commit, for both stores: a writer waits until its commit is on
//! disk; whoever finds no flush running starts one covering every commit so
//! far, and writers that arrive meanwhile wait for the next. Concurrent
//! writers share one fsync (sled's flush, or PostgreSQL's WAL flush).

use crate::store::{Commit, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    /// Every commit up to this one is on disk.
    durable: u64,
    flushing: bool,
}

#[derive(Default)]
pub(in crate::store) struct GroupCommit {
    /// The last commit applied (in memory, maybe not yet on disk).
    committed: AtomicU64,
    state: Mutex<State>,
    flushed: Condvar,
}

impl GroupCommit {
    /// Records one more commit; called while commits are serialised.
    pub(in crate::store) fn next_commit(&self) -> Commit {
        Commit(self.committed.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocks until `commit` is durable, flushing with `flush` when nobody else is.
    pub(in crate::store) fn wait(
        &self,
        commit: Commit,
        flush: impl Fn() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        loop {
            if state.durable >= commit.0 {
                return Ok(());
            }
            if state.flushing {
                state = self
                    .flushed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            state.flushing = true;
            let target = self.committed.load(Ordering::SeqCst);
            drop(state);
            let outcome = flush();
            state = self.lock();
            state.flushing = false;
            if outcome.is_ok() {
                state.durable = state.durable.max(target);
            }
            self.flushed.notify_all();
            outcome?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn concurrent_waiters_share_flushes() {
        let group = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, flushes) = (group.clone(), flushes.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let commit = group.next_commit();
                        let waited = group.wait(commit, || {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            Ok(())
                        });
                        assert!(waited.is_ok());
                    }
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        assert_eq!(group.lock().durable, 800);
        assert!(flushes.load(Ordering::SeqCst) < 800, "no flush was shared");
    }

    #[test]
    fn a_failed_flush_is_reported_and_retried() {
        let group = GroupCommit::default();
        let commit = group.next_commit();
        let failed = group.wait(commit, || Err(StoreError::Durability("disk full".into())));
        assert!(failed.is_err());
        assert!(group.wait(commit, || Ok(())).is_ok());
    }
}
