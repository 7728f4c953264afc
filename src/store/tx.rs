//! Typed reads and writes inside one store transaction. Secondary indexes
//! (login, email, reference) are maintained here, so uniqueness is enforced
//! in the same transaction as the record.

use super::{StoreError, TreeId, keys};
use crate::domain::audit::AuditEntry;
use crate::domain::credentials::{Credentials, TokenRecord};
use crate::domain::group::Group;
use crate::domain::names::fold;
use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::user::{User, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{TransactionalTree, UnabortableTransactionError};
use std::cell::RefCell;

/// One transaction's view of the store.
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
    failure: RefCell<Option<UnabortableTransactionError>>,
}

/// A unique index on a user field.
struct UniqueIndex {
    tree: TreeId,
    field: &'static str,
    key: fn(&User) -> Option<String>,
}

const UNIQUE_INDEXES: [UniqueIndex; 3] = [
    UniqueIndex {
        tree: TreeId::Logins,
        field: "login",
        key: |u| u.login.as_ref().map(|l| l.key()),
    },
    UniqueIndex {
        tree: TreeId::Emails,
        field: "email",
        key: |u| u.email.as_ref().map(|e| e.key()),
    },
    UniqueIndex {
        tree: TreeId::References,
        field: "reference",
        key: |u| u.reference.as_deref().map(fold),
    },
];

impl<'a> Tx<'a> {
    pub(super) fn new(trees: &'a [TransactionalTree]) -> Self {
        Self {
            trees,
            failure: RefCell::new(None),
        }
    }

    pub(super) fn take_failure(&self) -> Option<UnabortableTransactionError> {
        self.failure.borrow_mut().take()
    }

    fn tree(&self, id: TreeId) -> &TransactionalTree {
        &self.trees[id as usize]
    }

    /// Remembers a sled failure so the write loop can retry or report it.
    fn sled<T>(&self, outcome: Result<T, UnabortableTransactionError>) -> Result<T, StoreError> {
        outcome.map_err(|failure| {
            *self.failure.borrow_mut() = Some(failure);
            StoreError::Interrupted
        })
    }

    fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        let raw = self.sled(self.tree(tree).get(key))?;
        Ok(raw.map(|raw| serde_json::from_slice(&raw)).transpose()?)
    }

    fn put<T: Serialize>(&self, tree: TreeId, key: &[u8], value: &T) -> Result<(), StoreError> {
        let raw = serde_json::to_vec(value)?;
        self.sled(self.tree(tree).insert(key, raw))?;
        Ok(())
    }

    fn remove(&self, tree: TreeId, key: &[u8]) -> Result<(), StoreError> {
        self.sled(self.tree(tree).remove(key))?;
        Ok(())
    }

    pub(super) fn set_schema_version(&self, version: u64) -> Result<(), StoreError> {
        self.sled(
            self.tree(TreeId::Meta)
                .insert(keys::SCHEMA_VERSION, &keys::id(version)),
        )?;
        Ok(())
    }

    /// Hands out the next user id (1, 2, 3, ...).
    pub fn next_user_id(&self) -> Result<UserId, StoreError> {
        self.next_id("user")
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.get(TreeId::Users, &keys::id(id))
    }

    /// The id of the user whose login is `login`, case-insensitively.
    pub fn user_id_by_login(&self, login: &str) -> Result<Option<UserId>, StoreError> {
        let raw = self.sled(self.tree(TreeId::Logins).get(fold(login).as_bytes()))?;
        Ok(raw.map(|raw| keys::decode_u64(&raw)))
    }

    /// Writes `user`, keeping the unique indexes in step; a name held by another
    /// user fails with [`StoreError::Duplicate`].
    pub fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let previous = self.user(user.id)?;
        let id = keys::id(user.id);
        for index in &UNIQUE_INDEXES {
            let old = previous.as_ref().and_then(index.key);
            let new = (index.key)(user);
            if old == new {
                continue;
            }
            let tree = self.tree(index.tree);
            if let Some(new) = &new {
                let holder = self.sled(tree.get(new.as_bytes()))?;
                if holder.is_some_and(|holder| holder.as_ref() != id) {
                    return Err(StoreError::Duplicate { field: index.field });
                }
                self.sled(tree.insert(new.as_bytes(), &id))?;
            }
            if let Some(old) = &old {
                self.sled(tree.remove(old.as_bytes()))?;
            }
        }
        self.put(TreeId::Users, &id, user)
    }

    /// Removes a user, its index entries and its credentials record.
    pub fn remove_user(&self, user: &User) -> Result<(), StoreError> {
        for index in &UNIQUE_INDEXES {
            if let Some(key) = (index.key)(user) {
                self.remove(index.tree, key.as_bytes())?;
            }
        }
        self.remove(TreeId::Credentials, &keys::id(user.id))?;
        self.remove(TreeId::Users, &keys::id(user.id))
    }

    pub fn credentials(&self, id: UserId) -> Result<Credentials, StoreError> {
        Ok(self
            .get(TreeId::Credentials, &keys::id(id))?
            .unwrap_or_default())
    }

    pub fn put_credentials(&self, id: UserId, credentials: &Credentials) -> Result<(), StoreError> {
        self.put(TreeId::Credentials, &keys::id(id), credentials)
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(TreeId::Tokens, hash.as_bytes())
    }

    pub fn put_token(&self, hash: &str, record: &TokenRecord) -> Result<(), StoreError> {
        self.put(TreeId::Tokens, hash.as_bytes(), record)
    }

    pub fn remove_token(&self, hash: &str) -> Result<(), StoreError> {
        self.remove(TreeId::Tokens, hash.as_bytes())
    }

    pub fn group(&self, name: &str) -> Result<Option<Group>, StoreError> {
        self.get(TreeId::Groups, fold(name).as_bytes())
    }

    /// Creates a group; a name taken case-insensitively fails with a duplicate.
    pub fn insert_group(&self, group: &Group) -> Result<(), StoreError> {
        if self.group(&group.name)?.is_some() {
            return Err(StoreError::Duplicate { field: "name" });
        }
        self.put(TreeId::Groups, fold(&group.name).as_bytes(), group)
    }

    pub fn remove_group(&self, name: &str) -> Result<(), StoreError> {
        self.remove(TreeId::Groups, fold(name).as_bytes())
    }

    /// Hands out the next id of the counter named `counter` (1, 2, 3, ...).
    pub fn next_id(&self, counter: &str) -> Result<u64, StoreError> {
        let key = format!("next_{counter}_id");
        let meta = self.tree(TreeId::Meta);
        let id = self
            .sled(meta.get(key.as_bytes()))?
            .map(|raw| keys::decode_u64(&raw))
            .unwrap_or(1);
        self.sled(meta.insert(key.as_bytes(), &keys::id(id + 1)))?;
        Ok(id)
    }

    pub fn organization(&self, id: OrganizationId) -> Result<Option<Organization>, StoreError> {
        self.get(TreeId::Organizations, &keys::id(id))
    }

    /// Writes an organization; its code is unique case-insensitively.
    pub fn put_organization(&self, organization: &Organization) -> Result<(), StoreError> {
        let id = keys::id(organization.id);
        let previous: Option<Organization> = self.organization(organization.id)?;
        let code = fold(&organization.code);
        let codes = self.tree(TreeId::OrganizationCodes);
        if let Some(holder) = self.sled(codes.get(code.as_bytes()))? {
            if holder.as_ref() != id {
                return Err(StoreError::Duplicate { field: "code" });
            }
        }
        if let Some(previous) = previous.filter(|p| fold(&p.code) != code) {
            self.sled(codes.remove(fold(&previous.code).as_bytes()))?;
        }
        self.sled(codes.insert(code.as_bytes(), &id))?;
        self.put(TreeId::Organizations, &id, organization)
    }

    pub fn remove_organization(&self, organization: &Organization) -> Result<(), StoreError> {
        self.remove(
            TreeId::OrganizationCodes,
            fold(&organization.code).as_bytes(),
        )?;
        self.remove(TreeId::Organizations, &keys::id(organization.id))
    }

    pub fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.get(TreeId::Projects, &keys::id(id))
    }

    pub fn put_project(&self, project: &Project) -> Result<(), StoreError> {
        self.put(TreeId::Projects, &keys::id(project.id), project)
    }

    pub fn remove_project(&self, id: ProjectId) -> Result<(), StoreError> {
        self.remove(TreeId::Projects, &keys::id(id))
    }

    /// `user`'s role in `project`.
    pub fn membership(
        &self,
        project: ProjectId,
        user: UserId,
    ) -> Result<Option<ProjectRole>, StoreError> {
        self.get(TreeId::Memberships, &keys::pair(project, user))
    }

    /// Sets (or with `None` removes) `user`'s role in `project`, both ways round.
    pub fn set_membership(
        &self,
        project: ProjectId,
        user: UserId,
        role: Option<ProjectRole>,
    ) -> Result<(), StoreError> {
        let (by_project, by_user) = (keys::pair(project, user), keys::pair(user, project));
        match role {
            Some(role) => {
                self.put(TreeId::Memberships, &by_project, &role)?;
                self.put(TreeId::MemberProjects, &by_user, &role)
            }
            None => {
                self.remove(TreeId::Memberships, &by_project)?;
                self.remove(TreeId::MemberProjects, &by_user)
            }
        }
    }

    pub fn resource(&self, id: ResourceId) -> Result<Option<Resource>, StoreError> {
        self.get(TreeId::Resources, &keys::id(id))
    }

    pub fn put_resource(&self, resource: &Resource) -> Result<(), StoreError> {
        self.put(TreeId::Resources, &keys::id(resource.id), resource)
    }

    pub fn remove_resource(&self, id: ResourceId) -> Result<(), StoreError> {
        self.remove(TreeId::Resources, &keys::id(id))
    }

    /// Appends an audit entry; its id is assigned here and sorts by time of commit.
    pub fn append_audit(&self, mut entry: AuditEntry) -> Result<(), StoreError> {
        let audit = self.tree(TreeId::Audit);
        entry.id = self.sled(
            audit
                .generate_id()
                .map_err(UnabortableTransactionError::from),
        )?;
        self.put(TreeId::Audit, &keys::id(entry.id), &entry)
    }
}
