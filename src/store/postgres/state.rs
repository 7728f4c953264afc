//! This daemon's copy of the committed state and how far into the commit log
//! it reaches: applying other daemons' commits page by page, noticing when
//! the log no longer holds this daemon's last commit as it knew it (pruned
//! past it, or the database restored or failed over to an older state), and
//! then reloading whole, even backwards.

use super::rows;
use crate::store::mirror::snapshot::Snapshot;
use crate::store::mirror::{TreeId, codec, keys};
use crate::store::{RemoteChange, RemoteHook, StoreError};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The last commit the mirror includes: its number and a digest of its
/// writes (zero before the first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) seq: i64,
    digest: [u8; 32],
}

impl Position {
    /// The digest as a bytea literal (hex digits only).
    pub(super) fn digest_literal(&self) -> String {
        format!("'\\x{}'", data_encoding::HEXLOWER.encode(&self.digest))
    }

    pub(super) fn of(seq: i64, writes: &[u8]) -> Self {
        Self {
            seq,
            digest: Sha256::digest(writes).into(),
        }
    }
}

/// What a look at the log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CatchUp {
    /// The mirror has every commit.
    Current,
    /// A page was applied; the log holds more.
    More,
    /// The log does not continue from the mirror: load it whole.
    Reload,
}

/// What the store and its background tasks share.
pub(super) struct Inner {
    pub(super) pool: PgPool,
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// Serialises this daemon's units of work and mirror updates.
    mirror: Mutex<Position>,
    /// The mirror's commit number, readable without the lock.
    applied: AtomicI64,
    hooks: Mutex<Vec<RemoteHook>>,
}

impl Inner {
    pub(super) fn new(pool: PgPool, snapshot: Snapshot, position: Position) -> Self {
        Self {
            pool,
            snapshot: ArcSwap::from_pointee(snapshot),
            mirror: Mutex::new(position),
            applied: AtomicI64::new(position.seq),
            hooks: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn lock_mirror(&self) -> MutexGuard<'_, Position> {
        self.mirror
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn try_lock_mirror(&self) -> Option<MutexGuard<'_, Position>> {
        self.mirror.try_lock().ok()
    }

    pub(super) fn applied(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    pub(super) fn add_hook(&self, hook: RemoteHook) {
        self.hooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(hook);
    }

    /// Applies `commits` (from the mirror's own last commit on, in order, as
    /// [`rows::commits_from`] reads them) and tells the hooks which users
    /// changed.
    pub(super) fn catch_up(
        &self,
        mirror: &mut Position,
        commits: Vec<(i64, Vec<u8>)>,
    ) -> Result<CatchUp, StoreError> {
        let full = commits.len() > rows::PAGE;
        let mut commits = commits.into_iter().peekable();
        if mirror.seq > 0 {
            match commits.next() {
                Some((seq, writes)) if Position::of(seq, &writes) == *mirror => {}
                _ => return Ok(CatchUp::Reload),
            }
        }
        if commits.peek().is_none() {
            return Ok(CatchUp::Current);
        }
        let mut next = Snapshot::clone(&self.snapshot.load());
        let mut users = BTreeSet::new();
        let mut reached = *mirror;
        for (seq, writes) in commits {
            if seq != reached.seq + 1 {
                return Ok(CatchUp::Reload);
            }
            for (tree, key, change) in codec::decode(&writes)? {
                if tree == TreeId::Users && key.len() == 8 {
                    users.insert(keys::decode_u64(&key));
                }
                next.apply(tree, &key, &change);
            }
            reached = Position::of(seq, &writes);
        }
        self.snapshot.store(Arc::new(next));
        self.advance(mirror, reached);
        let users: Vec<_> = users.into_iter().collect();
        self.tell(RemoteChange::Users(&users));
        Ok(if full {
            CatchUp::More
        } else {
            CatchUp::Current
        })
    }

    /// Publishes this daemon's own commit.
    pub(super) fn committed(&self, mirror: &mut Position, next: Snapshot, reached: Position) {
        self.snapshot.store(Arc::new(next));
        self.advance(mirror, reached);
    }

    /// Replaces the mirror with one loaded whole, wherever it reaches.
    pub(super) fn install(&self, mirror: &mut Position, snapshot: Snapshot, reached: Position) {
        if reached.seq < mirror.seq {
            tracing::warn!(
                mirror = mirror.seq,
                database = reached.seq,
                "the database holds fewer commits than this daemon had seen (restored or failed over?); reloaded"
            );
        }
        self.snapshot.store(Arc::new(snapshot));
        self.advance(mirror, reached);
        self.tell(RemoteChange::Everything);
    }

    fn advance(&self, mirror: &mut Position, reached: Position) {
        *mirror = reached;
        self.applied.store(reached.seq, Ordering::Release);
    }

    fn tell(&self, change: RemoteChange<'_>) {
        if matches!(change, RemoteChange::Users([])) {
            return;
        }
        let hooks = self
            .hooks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for hook in hooks.iter() {
            hook(change);
        }
    }
}
