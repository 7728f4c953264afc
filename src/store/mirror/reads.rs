//! Typed reads over raw key/value lookups, written once for both the committed
//! snapshot and a unit of work's overlay on it.

use super::{TreeId, keys};
use crate::domain::credentials::{Credentials, TokenRecord};
use crate::domain::entries::{Entry, EntryId};
use crate::domain::group::Group;
use crate::domain::mail::{MailId, OutboxEntry, Queued};
use crate::domain::names::fold;
use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::sso::SsoLink;
use crate::domain::user::{User, UserId};
use crate::store::{
    CredentialReads, EntryReads, GroupReads, OrganizationReads, OutboxReads, ProjectReads,
    ReadView, RecordReads, SettingReads, StoreError, TokenReads, UserReads,
};
use serde::de::DeserializeOwned;
use sled::IVec;
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, StoreError>;

/// Raw lookups over the mirrored trees.
pub(in crate::store) trait RawRead {
    fn raw_get(&self, tree: TreeId, key: &[u8]) -> Option<IVec>;
    /// Up to `limit` entries of `tree` from key `start` on, in key order,
    /// while their keys start with `prefix`.
    fn raw_entries(
        &self,
        tree: TreeId,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Vec<(IVec, IVec)>;

    /// Every entry of `tree` whose key starts with `prefix`, in key order.
    fn raw_scan(&self, tree: TreeId, prefix: &[u8]) -> Vec<(IVec, IVec)> {
        self.raw_entries(tree, prefix, prefix, usize::MAX)
    }

    /// Up to `limit` entries of `tree` from key `start` on, in key order.
    fn raw_range(&self, tree: TreeId, start: &[u8], limit: usize) -> Vec<(IVec, IVec)> {
        self.raw_entries(tree, start, &[], limit)
    }

    fn get<T: DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>> {
        self.raw_get(tree, key).map(|raw| decode(&raw)).transpose()
    }

    fn all<T: DeserializeOwned>(&self, tree: TreeId) -> Result<Vec<T>> {
        self.raw_scan(tree, &[])
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }

    fn id_in(&self, tree: TreeId, name: &str) -> Option<u64> {
        self.raw_get(tree, fold(name).as_bytes())
            .map(|raw| keys::decode_u64(&raw))
    }

    /// Entries `first ++ second -> role` of a pair tree, keyed by `second`.
    fn pairs(&self, tree: TreeId, first: u64) -> Result<BTreeMap<u64, ProjectRole>> {
        self.raw_scan(tree, &keys::id(first))
            .iter()
            .map(|(key, raw)| Ok((keys::decode_u64(&key[8..]), decode(raw)?)))
            .collect()
    }
}

pub(in crate::store) fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(raw)?)
}

impl<R: RawRead> UserReads for R {
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.get(TreeId::Users, &keys::id(id))
    }

    fn users(&self) -> Result<Vec<User>> {
        self.all(TreeId::Users)
    }

    fn users_after(&self, after: UserId, limit: usize) -> Result<Vec<User>> {
        self.raw_range(TreeId::Users, &keys::id(after.saturating_add(1)), limit)
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }

    fn user_id_by_login(&self, login: &str) -> Result<Option<UserId>> {
        Ok(self.id_in(TreeId::Logins, login))
    }

    fn user_id_by_login_or_email(&self, name: &str) -> Result<Option<UserId>> {
        Ok(self
            .id_in(TreeId::Logins, name)
            .or_else(|| self.id_in(TreeId::Emails, name)))
    }

    fn user_id_by_sso(&self, link: &SsoLink) -> Result<Option<UserId>> {
        Ok(self
            .raw_get(TreeId::SsoSubjects, link.key().as_bytes())
            .map(|raw| keys::decode_u64(&raw)))
    }

    fn active_admins(&self) -> Result<Vec<UserId>> {
        Ok(self
            .raw_scan(TreeId::ActiveAdmins, &[])
            .iter()
            .map(|(key, _)| keys::decode_u64(key))
            .collect())
    }
}

impl<R: RawRead> CredentialReads for R {
    fn credentials(&self, id: UserId) -> Result<Credentials> {
        Ok(self
            .get(TreeId::Credentials, &keys::id(id))?
            .unwrap_or_default())
    }
}

impl<R: RawRead> TokenReads for R {
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.get(TreeId::Tokens, hash.as_bytes())
    }
}

impl<R: RawRead> GroupReads for R {
    fn group(&self, name: &str) -> Result<Option<Group>> {
        self.get(TreeId::Groups, fold(name).as_bytes())
    }

    fn groups(&self) -> Result<Vec<Group>> {
        self.all(TreeId::Groups)
    }
}

impl<R: RawRead> OrganizationReads for R {
    fn organization(&self, id: OrganizationId) -> Result<Option<Organization>> {
        self.get(TreeId::Organizations, &keys::id(id))
    }

    fn organizations(&self) -> Result<Vec<Organization>> {
        self.all(TreeId::Organizations)
    }

    fn organization_by_code(&self, code: &str) -> Result<Option<Organization>> {
        match self.id_in(TreeId::OrganizationCodes, code) {
            Some(id) => self.organization(id),
            None => Ok(None),
        }
    }
}

impl<R: RawRead> ProjectReads for R {
    fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.get(TreeId::Projects, &keys::id(id))
    }

    fn projects(&self) -> Result<Vec<Project>> {
        self.all(TreeId::Projects)
    }

    fn membership(&self, project: ProjectId, user: UserId) -> Result<Option<ProjectRole>> {
        self.get(TreeId::Memberships, &keys::pair(project, user))
    }

    fn members(&self, project: ProjectId) -> Result<BTreeMap<UserId, ProjectRole>> {
        self.pairs(TreeId::Memberships, project)
    }

    fn projects_of(&self, user: UserId) -> Result<BTreeMap<ProjectId, ProjectRole>> {
        self.pairs(TreeId::MemberProjects, user)
    }
}

impl<R: RawRead> RecordReads for R {
    fn resource(&self, id: ResourceId) -> Result<Option<Resource>> {
        self.get(TreeId::Resources, &keys::id(id))
    }

    fn resources(&self) -> Result<Vec<Resource>> {
        self.all(TreeId::Resources)
    }
}

impl<R: RawRead> EntryReads for R {
    fn entry(&self, resource: ResourceId, id: EntryId) -> Result<Option<Entry>> {
        self.get(TreeId::Entries, &keys::pair(resource, id))
    }

    fn entries(&self, resource: ResourceId) -> Result<Vec<Entry>> {
        self.raw_scan(TreeId::Entries, &keys::id(resource))
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }
}

impl<R: RawRead> OutboxReads for R {
    fn mail(&self, id: MailId) -> Result<Option<OutboxEntry>> {
        self.get(TreeId::Outbox, &keys::id(id))
    }

    fn mails_after(&self, after: MailId, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.raw_range(TreeId::Outbox, &keys::id(after.saturating_add(1)), limit)
            .iter()
            .map(|(_, raw)| decode(raw))
            .collect()
    }

    fn queued_mails(&self, after: MailId, limit: usize) -> Result<Vec<Queued>> {
        let start = keys::id(after.saturating_add(1));
        Ok(self
            .raw_range(TreeId::OutboxQueue, &start, limit)
            .iter()
            .map(|(key, value)| keys::decode_queued(keys::decode_u64(key), value))
            .collect())
    }
}

impl<R: RawRead> SettingReads for R {
    fn setting(&self, name: &str) -> Result<Option<String>> {
        self.get(TreeId::Meta, keys::setting(name).as_bytes())
    }
}

impl<R: RawRead> ReadView for R {}
