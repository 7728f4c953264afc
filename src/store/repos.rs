//! Repository traits, one pair per aggregate: `…Reads` answered by a snapshot
//! and by a unit of work alike, `…Writes` only inside a unit of work. A store
//! implementation provides both; services see nothing else of it.

use super::StoreError;
use crate::domain::audit::AuditEntry;
use crate::domain::credentials::{Credentials, TokenRecord};
use crate::domain::entries::{Entry, EntryId};
use crate::domain::group::Group;
use crate::domain::mail::{MailId, OutboxEntry, Queued};
use crate::domain::media::{MediaKey, StoredImage};
use crate::domain::projects::{
    Organization, OrganizationId, Project, ProjectId, ProjectRole, Resource, ResourceId,
};
use crate::domain::sso::SsoLink;
use crate::domain::user::{User, UserId};
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, StoreError>;

pub trait UserReads {
    fn user(&self, id: UserId) -> Result<Option<User>>;
    /// Every user, in id order.
    fn users(&self) -> Result<Vec<User>>;
    /// Up to `limit` users with ids above `after`, in id order.
    fn users_after(&self, after: UserId, limit: usize) -> Result<Vec<User>>;
    /// The id holding `login`, case-insensitively.
    fn user_id_by_login(&self, login: &str) -> Result<Option<UserId>>;
    /// The id holding `name` as login or else as email, case-insensitively.
    fn user_id_by_login_or_email(&self, name: &str) -> Result<Option<UserId>>;
    /// The id signing in as `link` through single sign-on.
    fn user_id_by_sso(&self, link: &SsoLink) -> Result<Option<UserId>>;
    /// The users who are active admins (kept as an index, read in one step).
    fn active_admins(&self) -> Result<Vec<UserId>>;
}

pub trait UserWrites {
    /// Writes `user`, keeping the unique indexes (login, email, reference) in
    /// step; a name held by another user fails with [`StoreError::Duplicate`].
    fn put_user(&self, user: &User) -> Result<()>;
    /// Removes a user, its index entries and its credentials record.
    fn remove_user(&self, user: &User) -> Result<()>;
}

pub trait CredentialReads {
    fn credentials(&self, id: UserId) -> Result<Credentials>;
}

pub trait CredentialWrites {
    fn put_credentials(&self, id: UserId, credentials: &Credentials) -> Result<()>;
}

/// API tokens, sessions and one-time tokens, found by the hash of their secret.
pub trait TokenReads {
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>>;
}

pub trait TokenWrites {
    fn put_token(&self, hash: &str, record: &TokenRecord) -> Result<()>;
    fn remove_token(&self, hash: &str) -> Result<()>;
}

pub trait GroupReads {
    /// The group named `name`, case-insensitively.
    fn group(&self, name: &str) -> Result<Option<Group>>;
    fn groups(&self) -> Result<Vec<Group>>;
}

pub trait GroupWrites {
    /// Creates a group; a name taken case-insensitively fails with a duplicate.
    fn insert_group(&self, group: &Group) -> Result<()>;
    fn remove_group(&self, name: &str) -> Result<()>;
}

pub trait OrganizationReads {
    fn organization(&self, id: OrganizationId) -> Result<Option<Organization>>;
    fn organizations(&self) -> Result<Vec<Organization>>;
    /// The organization with `code`, case-insensitively.
    fn organization_by_code(&self, code: &str) -> Result<Option<Organization>>;
}

pub trait OrganizationWrites {
    /// Writes an organization; its code is unique case-insensitively.
    fn put_organization(&self, organization: &Organization) -> Result<()>;
    fn remove_organization(&self, organization: &Organization) -> Result<()>;
}

/// Projects and their memberships (kept both ways round).
pub trait ProjectReads {
    fn project(&self, id: ProjectId) -> Result<Option<Project>>;
    fn projects(&self) -> Result<Vec<Project>>;
    /// `user`'s role in `project`.
    fn membership(&self, project: ProjectId, user: UserId) -> Result<Option<ProjectRole>>;
    /// Every member of `project` with their role.
    fn members(&self, project: ProjectId) -> Result<BTreeMap<UserId, ProjectRole>>;
    /// Every project `user` belongs to, with the role.
    fn projects_of(&self, user: UserId) -> Result<BTreeMap<ProjectId, ProjectRole>>;
}

pub trait ProjectWrites {
    fn put_project(&self, project: &Project) -> Result<()>;
    fn remove_project(&self, id: ProjectId) -> Result<()>;
    /// Sets (or with `None` removes) `user`'s role in `project`.
    fn set_membership(
        &self,
        project: ProjectId,
        user: UserId,
        role: Option<ProjectRole>,
    ) -> Result<()>;
}

/// Records (stations, trails, cameras, ...).
pub trait RecordReads {
    fn resource(&self, id: ResourceId) -> Result<Option<Resource>>;
    fn resources(&self) -> Result<Vec<Resource>>;
}

pub trait RecordWrites {
    fn put_resource(&self, resource: &Resource) -> Result<()>;
    fn remove_resource(&self, id: ResourceId) -> Result<()>;
}

/// Entries of records, kept under their record.
pub trait EntryReads {
    fn entry(&self, resource: ResourceId, id: EntryId) -> Result<Option<Entry>>;
    /// Every entry of `resource`, in id order.
    fn entries(&self, resource: ResourceId) -> Result<Vec<Entry>>;
}

pub trait EntryWrites {
    fn put_entry(&self, entry: &Entry) -> Result<()>;
    fn remove_entry(&self, resource: ResourceId, id: EntryId) -> Result<()>;
}

/// Images (thumbnails, pictures): written with the unit of work, read
/// through [`super::Store::media`] (they are not kept in memory).
pub trait MediaWrites {
    fn put_media(&self, key: MediaKey, image: &StoredImage) -> Result<()>;
    fn remove_media(&self, key: MediaKey) -> Result<()>;
}

/// The mail outbox.
pub trait OutboxReads {
    fn mail(&self, id: MailId) -> Result<Option<OutboxEntry>>;
    /// Up to `limit` entries with ids above `after`, in id order.
    fn mails_after(&self, after: MailId, limit: usize) -> Result<Vec<OutboxEntry>>;
    /// Up to `limit` queued entries (kept as an index, with when each falls
    /// due) with ids above `after`, in id order.
    fn queued_mails(&self, after: MailId, limit: usize) -> Result<Vec<Queued>>;
}

pub trait OutboxWrites {
    /// Writes an entry, keeping the queued index in step with its status.
    fn put_mail(&self, entry: &OutboxEntry) -> Result<()>;
    fn remove_mail(&self, id: MailId) -> Result<()>;
}

/// Small named values of the installation itself (such as the check that
/// tells whether `secret.key` is the one its secrets were sealed with).
pub trait SettingReads {
    fn setting(&self, name: &str) -> Result<Option<String>>;
}

pub trait SettingWrites {
    fn put_setting(&self, name: &str, value: &str) -> Result<()>;
}

pub trait AuditLog {
    /// Appends an entry; its id is assigned here and sorts by time of commit.
    fn append_audit(&self, entry: AuditEntry) -> Result<()>;
}

pub trait IdCounter {
    /// Hands out the next id of the counter named `counter` (1, 2, 3, ...).
    fn next_id(&self, counter: &str) -> Result<u64>;
}

/// Everything a reader may ask of one consistent state.
pub trait ReadView:
    UserReads
    + CredentialReads
    + TokenReads
    + GroupReads
    + OrganizationReads
    + ProjectReads
    + RecordReads
    + EntryReads
    + OutboxReads
    + SettingReads
{
}

/// One transaction: reads see its own writes; all writes commit together.
pub trait UnitOfWork:
    ReadView
    + UserWrites
    + CredentialWrites
    + TokenWrites
    + GroupWrites
    + OrganizationWrites
    + ProjectWrites
    + RecordWrites
    + EntryWrites
    + MediaWrites
    + OutboxWrites
    + SettingWrites
    + AuditLog
    + IdCounter
{
}
