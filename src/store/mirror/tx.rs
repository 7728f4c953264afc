//! One unit of work: reads go to the committed snapshot overlaid with this
//! unit's own writes, writes are staged and applied to sled (and the snapshot)
//! only when the unit commits. Secondary indexes (login, email, reference,
//! organization code, active admins) are kept here, in the same unit as the
//! record, so uniqueness holds whatever runs concurrently.

use super::packed::Change;
use super::reads::RawRead;
use super::snapshot::Snapshot;
use super::{TreeId, keys};
use crate::domain::audit::AuditEntry;
use crate::domain::credentials::{Credentials, TokenRecord};
use crate::domain::entries::{Entry, EntryId};
use crate::domain::group::Group;
use crate::domain::mail::{MailId, MailStatus, OutboxEntry};
use crate::domain::media::{MediaKey, StoredImage};
use crate::domain::names::fold;
use crate::domain::projects::{
    Organization, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::user::{User, UserId};
use crate::store::{
    AuditLog, CredentialWrites, EntryWrites, GroupReads, GroupWrites, IdCounter, MediaWrites,
    OrganizationReads, OrganizationWrites, OutboxWrites, ProjectWrites, RecordWrites,
    SettingWrites, StoreError, TokenWrites, UnitOfWork, UserReads, UserWrites,
};
use serde::Serialize;
use sled::IVec;
use std::cell::RefCell;
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, StoreError>;

/// The staged writes of a unit, in key order per tree.
pub(in crate::store) type WriteSet = BTreeMap<(TreeId, IVec), Change>;

pub(in crate::store) struct Tx<'a> {
    base: &'a Snapshot,
    writes: RefCell<WriteSet>,
}

/// A unique index on a user field.
pub(in crate::store) struct UniqueIndex {
    pub(in crate::store) tree: TreeId,
    pub(in crate::store) field: &'static str,
    pub(in crate::store) key: fn(&User) -> Option<String>,
}

pub(in crate::store) const UNIQUE_INDEXES: [UniqueIndex; 4] = [
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
    UniqueIndex {
        tree: TreeId::SsoSubjects,
        field: "sso",
        key: |u| u.sso.as_ref().map(|link| link.key()),
    },
];

impl<'a> Tx<'a> {
    pub(in crate::store) fn new(base: &'a Snapshot) -> Self {
        Self {
            base,
            writes: RefCell::new(BTreeMap::new()),
        }
    }

    pub(in crate::store) fn into_writes(self) -> WriteSet {
        self.writes.into_inner()
    }

    pub(in crate::store) fn stage_raw(&self, tree: TreeId, key: &[u8], change: Change) {
        self.writes
            .borrow_mut()
            .insert((tree, IVec::from(key)), change);
    }

    fn put<T: Serialize>(&self, tree: TreeId, key: &[u8], value: &T) -> Result<()> {
        let raw = serde_json::to_vec(value)?;
        self.stage_raw(tree, key, Some(IVec::from(raw)));
        Ok(())
    }

    fn remove(&self, tree: TreeId, key: &[u8]) {
        self.stage_raw(tree, key, None);
    }

    /// Points `name` in a unique index at `id`; another holder is a duplicate.
    fn claim(&self, tree: TreeId, field: &'static str, name: &str, id: [u8; 8]) -> Result<()> {
        if let Some(holder) = self.raw_get(tree, name.as_bytes()) {
            if holder.as_ref() != id {
                return Err(StoreError::Duplicate { field });
            }
        }
        self.stage_raw(tree, name.as_bytes(), Some(IVec::from(&id)));
        Ok(())
    }

    pub(in crate::store) fn set_schema_version(&self, version: u64) {
        self.stage_raw(
            TreeId::Meta,
            keys::SCHEMA_VERSION,
            Some(IVec::from(&keys::id(version))),
        );
    }

    /// Removes every entry of `tree` (used by migrations that rebuild an index).
    pub(in crate::store) fn clear(&self, tree: TreeId) {
        for (key, _) in self.raw_scan(tree, &[]) {
            self.remove(tree, &key);
        }
    }
}

impl RawRead for Tx<'_> {
    fn raw_get(&self, tree: TreeId, key: &[u8]) -> Option<IVec> {
        match self.writes.borrow().get(&(tree, IVec::from(key))) {
            Some(change) => change.clone(),
            None => self.base.raw_get(tree, key),
        }
    }

    /// The snapshot's entries with this unit's writes laid over them.
    fn raw_entries(
        &self,
        tree: TreeId,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Vec<(IVec, IVec)> {
        let writes = self.writes.borrow();
        // Removals among the writes may hide base entries: ask for that many more.
        let wanted = limit.saturating_add(writes.len());
        let mut merged: BTreeMap<IVec, IVec> = self
            .base
            .raw_entries(tree, start, prefix, wanted)
            .into_iter()
            .collect();
        for ((_, key), change) in writes
            .range((tree, IVec::from(start))..)
            .take_while(|((t, key), _)| *t == tree && key.starts_with(prefix))
        {
            match change {
                Some(value) => merged.insert(key.clone(), value.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().take(limit).collect()
    }
}

impl UserWrites for Tx<'_> {
    fn put_user(&self, user: &User) -> Result<()> {
        let previous = self.user(user.id)?;
        let id = keys::id(user.id);
        let changes: Vec<(&UniqueIndex, Option<String>, Option<String>)> = UNIQUE_INDEXES
            .iter()
            .map(|index| {
                (
                    index,
                    previous.as_ref().and_then(index.key),
                    (index.key)(user),
                )
            })
            .filter(|(_, old, new)| old != new)
            .collect();
        // Every name is checked before anything is staged, so a duplicate
        // leaves this unit exactly as it was.
        for (index, _, new) in &changes {
            if let Some(holder) = new
                .as_ref()
                .and_then(|new| self.raw_get(index.tree, new.as_bytes()))
            {
                if holder.as_ref() != id {
                    return Err(StoreError::Duplicate { field: index.field });
                }
            }
        }
        for (index, old, new) in &changes {
            if let Some(old) = old {
                self.remove(index.tree, old.as_bytes());
            }
            if let Some(new) = new {
                self.claim(index.tree, index.field, new, id)?;
            }
        }
        if user.is_active_admin() {
            self.stage_raw(TreeId::ActiveAdmins, &id, Some(IVec::from(&[])));
        } else {
            self.remove(TreeId::ActiveAdmins, &id);
        }
        self.put(TreeId::Users, &id, user)
    }

    fn remove_user(&self, user: &User) -> Result<()> {
        for index in &UNIQUE_INDEXES {
            if let Some(key) = (index.key)(user) {
                self.remove(index.tree, key.as_bytes());
            }
        }
        let id = keys::id(user.id);
        self.remove(TreeId::ActiveAdmins, &id);
        self.remove(TreeId::Credentials, &id);
        self.remove(TreeId::Users, &id);
        Ok(())
    }
}

impl CredentialWrites for Tx<'_> {
    /// Empty credentials are not stored at all (reads give the default).
    fn put_credentials(&self, id: UserId, credentials: &Credentials) -> Result<()> {
        if *credentials == Credentials::default() {
            self.remove(TreeId::Credentials, &keys::id(id));
            return Ok(());
        }
        self.put(TreeId::Credentials, &keys::id(id), credentials)
    }
}

impl TokenWrites for Tx<'_> {
    fn put_token(&self, hash: &str, record: &TokenRecord) -> Result<()> {
        self.put(TreeId::Tokens, hash.as_bytes(), record)
    }

    fn remove_token(&self, hash: &str) -> Result<()> {
        self.remove(TreeId::Tokens, hash.as_bytes());
        Ok(())
    }
}

impl GroupWrites for Tx<'_> {
    fn insert_group(&self, group: &Group) -> Result<()> {
        if self.group(&group.name)?.is_some() {
            return Err(StoreError::Duplicate { field: "name" });
        }
        self.put(TreeId::Groups, fold(&group.name).as_bytes(), group)
    }

    fn remove_group(&self, name: &str) -> Result<()> {
        self.remove(TreeId::Groups, fold(name).as_bytes());
        Ok(())
    }
}

impl OrganizationWrites for Tx<'_> {
    fn put_organization(&self, organization: &Organization) -> Result<()> {
        let id = keys::id(organization.id);
        let code = fold(&organization.code);
        self.claim(TreeId::OrganizationCodes, "code", &code, id)?;
        if let Some(previous) = self.organization(organization.id)? {
            let old = fold(&previous.code);
            if old != code {
                self.remove(TreeId::OrganizationCodes, old.as_bytes());
            }
        }
        self.put(TreeId::Organizations, &id, organization)
    }

    fn remove_organization(&self, organization: &Organization) -> Result<()> {
        self.remove(
            TreeId::OrganizationCodes,
            fold(&organization.code).as_bytes(),
        );
        self.remove(TreeId::Organizations, &keys::id(organization.id));
        Ok(())
    }
}

impl ProjectWrites for Tx<'_> {
    fn put_project(&self, project: &Project) -> Result<()> {
        self.put(TreeId::Projects, &keys::id(project.id), project)
    }

    fn remove_project(&self, id: ProjectId) -> Result<()> {
        self.remove(TreeId::Projects, &keys::id(id));
        Ok(())
    }

    fn set_membership(
        &self,
        project: ProjectId,
        user: UserId,
        role: Option<ProjectRole>,
    ) -> Result<()> {
        let (by_project, by_user) = (keys::pair(project, user), keys::pair(user, project));
        match role {
            Some(role) => {
                self.put(TreeId::Memberships, &by_project, &role)?;
                self.put(TreeId::MemberProjects, &by_user, &role)
            }
            None => {
                self.remove(TreeId::Memberships, &by_project);
                self.remove(TreeId::MemberProjects, &by_user);
                Ok(())
            }
        }
    }
}

impl RecordWrites for Tx<'_> {
    fn put_resource(&self, resource: &Resource) -> Result<()> {
        self.put(TreeId::Resources, &keys::id(resource.id), resource)
    }

    fn remove_resource(&self, id: ResourceId) -> Result<()> {
        self.remove(TreeId::Resources, &keys::id(id));
        Ok(())
    }
}

impl EntryWrites for Tx<'_> {
    fn put_entry(&self, entry: &Entry) -> Result<()> {
        self.put(
            TreeId::Entries,
            &keys::pair(entry.resource, entry.id),
            entry,
        )
    }

    fn remove_entry(&self, resource: ResourceId, id: EntryId) -> Result<()> {
        self.remove(TreeId::Entries, &keys::pair(resource, id));
        Ok(())
    }
}

impl MediaWrites for Tx<'_> {
    fn put_media(&self, key: MediaKey, image: &StoredImage) -> Result<()> {
        self.stage_raw(
            TreeId::Media,
            &key.bytes(),
            Some(IVec::from(image.encode())),
        );
        Ok(())
    }

    fn remove_media(&self, key: MediaKey) -> Result<()> {
        self.remove(TreeId::Media, &key.bytes());
        Ok(())
    }
}

impl OutboxWrites for Tx<'_> {
    fn put_mail(&self, entry: &OutboxEntry) -> Result<()> {
        let id = keys::id(entry.id);
        if entry.status == MailStatus::Queued {
            let value = keys::queued(&entry.queued());
            self.stage_raw(TreeId::OutboxQueue, &id, Some(IVec::from(&value)));
        } else {
            self.remove(TreeId::OutboxQueue, &id);
        }
        self.put(TreeId::Outbox, &id, entry)
    }

    fn remove_mail(&self, id: MailId) -> Result<()> {
        self.remove(TreeId::OutboxQueue, &keys::id(id));
        self.remove(TreeId::Outbox, &keys::id(id));
        Ok(())
    }
}

impl AuditLog for Tx<'_> {
    fn append_audit(&self, mut entry: AuditEntry) -> Result<()> {
        entry.id = self.next_id("audit")?;
        self.put(TreeId::Audit, &keys::id(entry.id), &entry)
    }
}

impl SettingWrites for Tx<'_> {
    fn put_setting(&self, name: &str, value: &str) -> Result<()> {
        self.put(TreeId::Meta, keys::setting(name).as_bytes(), &value)
    }
}

impl IdCounter for Tx<'_> {
    fn next_id(&self, counter: &str) -> Result<u64> {
        let key = keys::counter(counter);
        let id = self
            .raw_get(TreeId::Meta, key.as_bytes())
            .map(|raw| keys::decode_u64(&raw))
            .unwrap_or(1);
        self.stage_raw(
            TreeId::Meta,
            key.as_bytes(),
            Some(IVec::from(&keys::id(id + 1))),
        );
        Ok(id)
    }
}

impl UnitOfWork for Tx<'_> {}
