//! The embedded sled store: the only module that imports sled. It keeps users,
//! their unique-name indexes, credentials, tokens, groups and the audit trail,
//! and knows no business rule beyond uniqueness.

mod keys;
mod tx;

pub use tx::Tx;

use crate::domain::audit::AuditEntry;
use crate::domain::credentials::{Credentials, TokenRecord};
use crate::domain::group::Group;
use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::user::{User, UserId};
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema this build writes; older stores are migrated on open.
pub const SCHEMA_VERSION: u64 = 1;

/// Rewrites stored records from one schema version to the next.
type Migration = fn(&Tx) -> Result<(), StoreError>;

/// Migrations from version N to N+1, indexed by N-1. Each runs in one transaction.
const MIGRATIONS: &[Migration] = &[];

/// A failure of the store itself, or a uniqueness conflict.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("stored record is unreadable: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("{field} is already taken")]
    Duplicate { field: &'static str },
    #[error("the store has schema version {found}, this build knows up to {SCHEMA_VERSION}")]
    SchemaTooNew { found: u64 },
    /// A transaction hit a conflict or storage failure; the write layer retries or reports it.
    #[error("transaction interrupted")]
    Interrupted,
}

/// The trees, in the order transactions see them.
#[derive(Clone, Copy)]
enum TreeId {
    Users,
    Logins,
    Emails,
    References,
    Groups,
    Credentials,
    Tokens,
    Audit,
    Meta,
    Organizations,
    OrganizationCodes,
    Projects,
    Resources,
    Memberships,
    MemberProjects,
}

const TREE_NAMES: [&str; 15] = [
    "users",
    "idx_login",
    "idx_email",
    "idx_reference",
    "groups",
    "credentials",
    "tokens",
    "audit",
    "meta",
    "organizations",
    "idx_org_code",
    "projects",
    "resources",
    "memberships",
    "member_projects",
];

/// Handle on the open store; cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl Store {
    /// Opens (or creates) the store under `dir` and brings its schema up to date.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("store"))
            .cache_capacity(cache_bytes)
            .open()?;
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<_, _>>()?;
        let store = Self { db, trees };
        store.migrate()?;
        Ok(store)
    }

    fn tree(&self, id: TreeId) -> &sled::Tree {
        &self.trees[id as usize]
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found });
        }
        let fresh = found == 0;
        for version in found.max(1)..SCHEMA_VERSION {
            let migration = MIGRATIONS[(version - 1) as usize];
            self.write(|tx| {
                migration(tx)?;
                tx.set_schema_version(version + 1)
            })?;
        }
        if fresh {
            self.write(|tx| tx.set_schema_version(SCHEMA_VERSION))?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let raw = self.tree(TreeId::Meta).get(keys::SCHEMA_VERSION)?;
        Ok(raw.map(|v| keys::decode_u64(&v)).unwrap_or(0))
    }

    /// Runs `change` as one atomic transaction over every tree. A conflict re-runs
    /// it; an error returned by `change` aborts it with nothing written.
    pub fn write<T, E: From<StoreError>>(
        &self,
        change: impl Fn(&Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let outcome = Transactional::<E>::transaction(self.trees.as_slice(), |view| {
            let tx = Tx::new(view);
            change(&tx).map_err(|error| match tx.take_failure() {
                Some(failure) => failure.into(),
                None => ConflictableTransactionError::Abort(error),
            })
        });
        outcome.map_err(|error| match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => StoreError::Storage(error).into(),
        })
    }

    /// Every user, in id order.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.all(TreeId::Users)
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        read(self.tree(TreeId::Users), keys::id(id))
    }

    /// Finds a user id by login or email, case-insensitively.
    pub fn user_id_by_login_or_email(&self, name: &str) -> Result<Option<UserId>, StoreError> {
        let key = crate::domain::names::fold(name);
        for tree in [TreeId::Logins, TreeId::Emails] {
            if let Some(raw) = self.tree(tree).get(key.as_bytes())? {
                return Ok(Some(keys::decode_u64(&raw)));
            }
        }
        Ok(None)
    }

    pub fn credentials(&self, id: UserId) -> Result<Credentials, StoreError> {
        Ok(read(self.tree(TreeId::Credentials), keys::id(id))?.unwrap_or_default())
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        read(self.tree(TreeId::Tokens), hash.as_bytes())
    }

    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.all(TreeId::Groups)
    }

    /// Every record of a tree that holds one JSON value per id, in id order.
    fn all<T: DeserializeOwned>(&self, tree: TreeId) -> Result<Vec<T>, StoreError> {
        self.tree(tree)
            .iter()
            .values()
            .map(|raw| decode(&raw?))
            .collect()
    }

    pub fn organizations(&self) -> Result<Vec<Organization>, StoreError> {
        self.all(TreeId::Organizations)
    }

    pub fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.all(TreeId::Projects)
    }

    pub fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        self.all(TreeId::Resources)
    }

    pub fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        read(self.tree(TreeId::Projects), keys::id(id))
    }

    pub fn resource(&self, id: ResourceId) -> Result<Option<Resource>, StoreError> {
        read(self.tree(TreeId::Resources), keys::id(id))
    }

    /// `user`'s role in `project`.
    pub fn membership(
        &self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Option<ProjectRole>, StoreError> {
        read(self.tree(TreeId::Memberships), keys::pair(project, user))
    }

    /// Every member of `project` with their role.
    pub fn members(&self, project: ProjectId) -> Result<BTreeMap<UserId, ProjectRole>, StoreError> {
        self.pairs(TreeId::Memberships, project)
    }

    /// Every project `user` belongs to, with the role.
    pub fn projects_of(
        &self,
        user: UserId,
    ) -> Result<BTreeMap<ProjectId, ProjectRole>, StoreError> {
        self.pairs(TreeId::MemberProjects, user)
    }

    /// Entries `first ++ second -> role` of a pair tree, keyed by `second`.
    fn pairs(&self, tree: TreeId, first: u64) -> Result<BTreeMap<u64, ProjectRole>, StoreError> {
        self.tree(tree)
            .scan_prefix(keys::id(first))
            .map(|entry| {
                let (key, raw) = entry?;
                Ok((keys::decode_u64(&key[8..]), decode(&raw)?))
            })
            .collect()
    }

    /// The organization with `code`, case-insensitively.
    pub fn organization_by_code(&self, code: &str) -> Result<Option<Organization>, StoreError> {
        match self
            .tree(TreeId::OrganizationCodes)
            .get(crate::domain::names::fold(code).as_bytes())?
        {
            Some(raw) => self.organization(keys::decode_u64(&raw)),
            None => Ok(None),
        }
    }

    pub fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
        read(self.tree(TreeId::Organizations), keys::id(id))
    }

    /// Audit entries newest first, starting below `before` when given.
    pub fn audit_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let tree = self.tree(TreeId::Audit);
        let entries = match before {
            Some(id) => tree.range(..keys::id(id)),
            None => tree.iter(),
        };
        entries
            .rev()
            .take(limit)
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    /// Writes everything buffered to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn read<T: DeserializeOwned>(
    tree: &sled::Tree,
    key: impl AsRef<[u8]>,
) -> Result<Option<T>, StoreError> {
    tree.get(key)?.map(|raw| decode(&raw)).transpose()
}

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(raw)?)
}
