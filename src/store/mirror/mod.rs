//! The committed state mirrored in memory, whatever keeps it on disk: the
//! trees and their key encodings, typed reads over raw entries, the unit of
//! work that stages writes over a snapshot, the byte form of a write set,
//! and the index check. sled and PostgreSQL persist it; readers never wait
//! on either.

pub(in crate::store) mod backup;
pub(in crate::store) mod codec;
pub(in crate::store) mod keys;
pub(in crate::store) mod packed;
pub(in crate::store) mod reads;
pub(in crate::store) mod snapshot;
pub(in crate::store) mod tx;
pub(in crate::store) mod verify;

/// The schema this build writes; older stores are migrated on open.
pub(in crate::store) const SCHEMA_VERSION: u64 = 2;

/// The trees; the first [`MIRRORED_TREES`] are mirrored in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(in crate::store) enum TreeId {
    Users,
    Logins,
    Emails,
    References,
    ActiveAdmins,
    Groups,
    Credentials,
    Tokens,
    Meta,
    Organizations,
    OrganizationCodes,
    Projects,
    Resources,
    Memberships,
    MemberProjects,
    Outbox,
    /// The ids of queued outbox entries.
    OutboxQueue,
    /// Provider and subject of single sign-on accounts.
    SsoSubjects,
    /// Entries of records, keyed by record and entry id.
    Entries,
    /// Append-only and unbounded: read from disk, page by page.
    Audit,
    /// Image blobs: read from disk, one at a time.
    Media,
}

pub(in crate::store) const MIRRORED_TREES: usize = 19;

pub(in crate::store) const TREE_NAMES: [&str; 21] = [
    "users",
    "idx_login",
    "idx_email",
    "idx_reference",
    "idx_active_admin",
    "groups",
    "credentials",
    "tokens",
    "meta",
    "organizations",
    "idx_org_code",
    "projects",
    "resources",
    "memberships",
    "member_projects",
    "outbox",
    "idx_outbox_queued",
    "idx_sso",
    "entries",
    "audit",
    "media",
];
