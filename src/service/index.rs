//! The in-memory index of all users: answers filtered, text-searched listings
//! with ids, in a compact entry per user. Rebuilt from the store at start and
//! refreshed after every committed write; readers never wait for a writer.

use crate::domain::clock::Timestamp;
use crate::domain::names::fold;
use crate::domain::user::{Status, User, UserId, UserType};
use crate::store::{ReadView, RemoteChange, Store, StoreError};
use arc_swap::ArcSwap;
use imbl::OrdMap;
use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

/// Reads one searchable field of a user.
pub type FieldReader = fn(&User) -> Option<&str>;

/// Fields `q` can search, with how to read each from a user.
pub const SEARCH_FIELDS: [(&str, FieldReader); 8] = [
    ("login", |u| u.login.as_ref().map(|l| l.as_str())),
    ("email", |u| u.email.as_ref().map(|e| e.as_str())),
    ("first_name", |u| u.first_name.as_deref()),
    ("last_name", |u| u.last_name.as_deref()),
    ("display_name", |u| u.display_name.as_deref()),
    ("company", |u| u.company.as_deref()),
    ("department", |u| u.department.as_deref()),
    ("reference", |u| u.reference.as_deref()),
];

/// Searched when a query names no fields: login, email and the names.
pub const DEFAULT_SEARCH_FIELDS: [usize; 5] = [0, 1, 2, 3, 4];

/// Separates fields in an entry's search text; never part of a query.
const FIELD_SEPARATOR: char = '\u{1}';
/// Starts each group name after the search fields; never part of a name.
const GROUP_SEPARATOR: char = '\u{0}';

/// What the index keeps of a user: the fields listings filter on, ownership,
/// and its text (search fields and groups) in one allocation. The user record
/// itself stays in the store's snapshot.
pub struct Entry {
    pub id: UserId,
    pub user_type: UserType,
    pub status: Status,
    pub archived_at: Option<Timestamp>,
    pub organization: Option<u64>,
    owner: Option<NonZeroU64>,
    updated_by: Option<NonZeroU64>,
    /// Case-folded searchable fields in `SEARCH_FIELDS` order, joined by
    /// `FIELD_SEPARATOR` (so a run of fields is searched with one scan), then
    /// the local and automatic groups, sorted, each after a `GROUP_SEPARATOR`.
    text: Box<str>,
    /// Where each field ends in `text`.
    field_ends: [u32; SEARCH_FIELDS.len()],
}

impl Entry {
    fn new(user: &User) -> Self {
        let mut text = String::new();
        let mut field_ends = [0u32; SEARCH_FIELDS.len()];
        for (index, (_, read)) in SEARCH_FIELDS.iter().enumerate() {
            if index > 0 {
                text.push(FIELD_SEPARATOR);
            }
            text.push_str(&read(user).map(fold).unwrap_or_default());
            field_ends[index] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        let groups: BTreeSet<&String> = user.groups.union(&user.automatic_groups).collect();
        for group in groups {
            text.push(GROUP_SEPARATOR);
            text.push_str(group);
        }
        Self {
            id: user.id,
            user_type: user.user_type,
            status: user.status,
            archived_at: user.archived_at,
            organization: user.organization,
            owner: user.owner.and_then(NonZeroU64::new),
            updated_by: user.updated_by.and_then(NonZeroU64::new),
            text: text.into(),
            field_ends,
        }
    }

    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    pub fn owner(&self) -> Option<UserId> {
        self.owner.map(NonZeroU64::get)
    }

    pub fn updated_by(&self) -> Option<UserId> {
        self.updated_by.map(NonZeroU64::get)
    }

    /// Whether the user is in `group`, locally or automatically.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups().any(|g| g == group)
    }

    /// Local and automatic groups, sorted.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        let end = self.field_ends[SEARCH_FIELDS.len() - 1] as usize;
        self.text
            .get(end..)
            .unwrap_or_default()
            .split(GROUP_SEPARATOR)
            .skip(1)
    }

    /// The text of fields `first..=last`, separators included.
    fn fields(&self, first: usize, last: usize) -> &[u8] {
        let start = if first == 0 {
            0
        } else {
            self.field_ends[first - 1] as usize + 1
        };
        let end = self.field_ends[last] as usize;
        self.text.as_bytes().get(start..end).unwrap_or_default()
    }
}

/// A compiled text search: one substring finder over runs of adjacent fields.
struct TextSearch<'q> {
    finder: memchr::memmem::Finder<'q>,
    /// Inclusive field ranges to scan.
    runs: Vec<(usize, usize)>,
}

impl<'q> TextSearch<'q> {
    fn new(text: &'q str, fields: &[usize]) -> Self {
        let mut sorted = fields.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for field in sorted {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == field => *last = field,
                _ => runs.push((field, field)),
            }
        }
        Self {
            finder: memchr::memmem::Finder::new(text.as_bytes()),
            runs,
        }
    }

    fn matches(&self, entry: &Entry) -> bool {
        self.runs
            .iter()
            .any(|&(first, last)| self.finder.find(entry.fields(first, last)).is_some())
    }
}

/// Which archived users a listing shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchivedFilter {
    #[default]
    Exclude,
    Only,
    Include,
}

/// A listing request; empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub types: Vec<UserType>,
    pub statuses: Vec<Status>,
    pub group: Option<String>,
    pub exclude_group: Option<String>,
    /// Members of this organization.
    pub organization: Option<u64>,
    pub archived: ArchivedFilter,
    pub archived_after: Option<Timestamp>,
    pub archived_before: Option<Timestamp>,
    /// Case-folded search text.
    pub text: Option<String>,
    /// Indexes into `SEARCH_FIELDS`.
    pub search_fields: Vec<usize>,
    pub limit: usize,
    /// Only ids above this one.
    pub after: Option<UserId>,
}

impl UserQuery {
    fn matches(&self, entry: &Entry, text: Option<&TextSearch>) -> bool {
        let archived_ok = match self.archived {
            ArchivedFilter::Exclude => !entry.is_archived(),
            ArchivedFilter::Only => entry.is_archived(),
            ArchivedFilter::Include => true,
        };
        archived_ok
            && (self.types.is_empty() || self.types.contains(&entry.user_type))
            && (self.statuses.is_empty() || self.statuses.contains(&entry.status))
            && self.group.as_deref().is_none_or(|g| entry.in_group(g))
            && self
                .organization
                .is_none_or(|o| entry.organization == Some(o))
            && self
                .exclude_group
                .as_deref()
                .is_none_or(|g| !entry.in_group(g))
            && self
                .archived_after
                .is_none_or(|t| entry.archived_at.is_some_and(|a| a > t))
            && self
                .archived_before
                .is_none_or(|t| entry.archived_at.is_some_and(|a| a < t))
            && text.is_none_or(|text| text.matches(entry))
    }
}

/// One page of a listing.
pub struct UserPage {
    pub users: Vec<Arc<User>>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<UserId>,
}

/// One page of a listing from the index: the ids, in order.
pub struct IdPage {
    pub ids: Vec<UserId>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<UserId>,
}

type Entries = OrdMap<UserId, Arc<Entry>>;

/// The index of all users by id. Readers take the published version and never
/// wait; writers refresh entries from the store's snapshot after each commit.
#[derive(Default)]
pub struct UserIndex {
    published: ArcSwap<Entries>,
    /// Serialises refreshes so the newest committed record always wins.
    refresh: Mutex<()>,
}

impl UserIndex {
    /// Builds the index from `view`, a page of users at a time (so loading a
    /// large directory never holds every decoded user at once).
    pub fn load(view: &dyn ReadView) -> Result<Self, StoreError> {
        const PAGE: usize = 1024;
        let mut entries = Entries::new();
        let mut after = 0;
        loop {
            let page = view.users_after(after, PAGE)?;
            for user in &page {
                entries.insert(user.id, Arc::new(Entry::new(user)));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.id,
                _ => break,
            }
        }
        Ok(Self::from_entries(entries))
    }

    fn from_entries(entries: Entries) -> Self {
        Self {
            published: ArcSwap::from_pointee(entries),
            refresh: Mutex::new(()),
        }
    }

    /// Re-reads `ids` from the store's latest snapshot and publishes. The
    /// snapshot is taken under the refresh lock, so a refresh for an older
    /// commit (this daemon's) never overwrites one for a newer (another's).
    pub fn refresh(&self, ids: &[UserId], store: &dyn Store) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _guard = self
            .refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let snapshot = store.snapshot();
        let mut entries = Entries::clone(&self.published.load());
        for &id in ids {
            match snapshot.user(id)? {
                Some(user) => entries.insert(id, Arc::new(Entry::new(&user))),
                None => entries.remove(&id),
            };
        }
        self.published.store(Arc::new(entries));
        Ok(())
    }

    /// Rebuilds every entry from the store's latest snapshot (after the
    /// store reloaded its state whole).
    pub fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let _guard = self
            .refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = Self::load(&*store.snapshot())?;
        self.published.store(fresh.published.load_full());
        Ok(())
    }

    /// Keeps the index in step with commits other daemons make.
    pub fn follow(self: &Arc<Self>, store: &Arc<dyn Store>) {
        let index = Arc::downgrade(self);
        let weak_store = Arc::downgrade(store);
        store.on_remote_change(Box::new(move |change| {
            let (Some(index), Some(store)) = (index.upgrade(), weak_store.upgrade()) else {
                return;
            };
            let refreshed = match change {
                RemoteChange::Users(ids) => index.refresh(ids, &*store),
                RemoteChange::Everything => index.reload(&*store),
            };
            if let Err(error) = refreshed {
                tracing::error!(%error, "the user index could not follow another daemon's commit");
            }
        }));
    }

    /// Every entry, in id order, as published now.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.published.load().values().cloned().collect()
    }

    pub fn query(&self, query: &UserQuery) -> IdPage {
        let entries = self.published.load();
        let start = query.after.map_or(0, |id| id.saturating_add(1));
        let text = query
            .text
            .as_deref()
            .map(|text| TextSearch::new(text, &query.search_fields));
        let mut matching = entries
            .range(start..)
            .map(|(_, e)| e)
            .filter(|e| query.matches(e, text.as_ref()));
        let ids: Vec<UserId> = matching.by_ref().take(query.limit).map(|e| e.id).collect();
        let more = matching.next().is_some();
        let next_cursor = if more { ids.last().copied() } else { None };
        IdPage { ids, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::Login;
    use chrono::Utc;

    fn index() -> UserIndex {
        let now = Utc::now();
        let users: Vec<User> = (1..=10)
            .map(|id| {
                let mut u = User::new(id, UserType::Local, Status::Active, now);
                u.login = Login::parse(&format!("user{id}")).ok();
                u.last_name = Some(if id % 2 == 0 {
                    "Even".into()
                } else {
                    "Odd".into()
                });
                if id % 3 == 0 {
                    u.groups.insert("third".into());
                }
                if id == 10 {
                    u.archived_at = Some(now);
                }
                u
            })
            .collect();
        UserIndex::from_entries(
            users
                .iter()
                .map(|u| (u.id, Arc::new(Entry::new(u))))
                .collect(),
        )
    }

    fn ids(page: &IdPage) -> Vec<UserId> {
        page.ids.clone()
    }

    #[test]
    fn entries_keep_groups_and_ownership() {
        let mut user = User::new(7, UserType::Local, Status::Active, Utc::now());
        user.groups.insert("b-team".into());
        user.automatic_groups.insert("A.Staff".into());
        user.owner = Some(3);
        let entry = Entry::new(&user);
        assert_eq!(entry.groups().collect::<Vec<_>>(), ["A.Staff", "b-team"]);
        assert!(entry.in_group("b-team") && !entry.in_group("b"));
        assert_eq!((entry.owner(), entry.updated_by()), (Some(3), None));
        let bare = Entry::new(&User::new(8, UserType::Local, Status::Active, Utc::now()));
        assert_eq!(bare.groups().count(), 0);
    }

    #[test]
    fn filters_and_pages() {
        let cache = index();
        let base = UserQuery {
            limit: 100,
            search_fields: DEFAULT_SEARCH_FIELDS.to_vec(),
            ..Default::default()
        };
        let cases: [(UserQuery, Vec<UserId>); 6] = [
            (base.clone(), (1..=9).collect()),
            (
                UserQuery {
                    text: Some("even".into()),
                    ..base.clone()
                },
                vec![2, 4, 6, 8],
            ),
            (
                UserQuery {
                    group: Some("third".into()),
                    ..base.clone()
                },
                vec![3, 6, 9],
            ),
            (
                UserQuery {
                    exclude_group: Some("third".into()),
                    limit: 3,
                    ..base.clone()
                },
                vec![1, 2, 4],
            ),
            (
                UserQuery {
                    archived: ArchivedFilter::Only,
                    ..base.clone()
                },
                vec![10],
            ),
            (
                UserQuery {
                    text: Some("user1".into()),
                    archived: ArchivedFilter::Include,
                    ..base.clone()
                },
                vec![1, 10],
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(ids(&cache.query(&query)), expected, "{query:?}");
        }
        let first = cache.query(&UserQuery {
            limit: 4,
            ..base.clone()
        });
        assert_eq!(
            (ids(&first), first.next_cursor),
            (vec![1, 2, 3, 4], Some(4))
        );
        let last = cache.query(&UserQuery {
            limit: 5,
            after: Some(4),
            ..base
        });
        assert_eq!((ids(&last), last.next_cursor), (vec![5, 6, 7, 8, 9], None));
    }
}
