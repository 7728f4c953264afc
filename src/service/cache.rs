//! The in-memory read model of all users: answers lookups and filtered,
//! text-searched listings without touching the store. Rebuilt from the store at
//! start and refreshed after every committed write.

use crate::domain::clock::Timestamp;
use crate::domain::names::fold;
use crate::domain::user::{Status, User, UserId, UserType};
use std::collections::BTreeMap;
use std::sync::Arc;

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

struct Entry {
    user: Arc<User>,
    /// Case-folded searchable fields in `SEARCH_FIELDS` order, joined by
    /// `FIELD_SEPARATOR`, so a run of fields is searched with one scan.
    search_text: Box<str>,
    /// Where each field ends in `search_text`.
    field_ends: [u32; SEARCH_FIELDS.len()],
}

impl Entry {
    fn new(user: User) -> Self {
        let mut search_text = String::new();
        let mut field_ends = [0u32; SEARCH_FIELDS.len()];
        for (index, (_, read)) in SEARCH_FIELDS.iter().enumerate() {
            if index > 0 {
                search_text.push(FIELD_SEPARATOR);
            }
            search_text.push_str(&read(&user).map(fold).unwrap_or_default());
            field_ends[index] = u32::try_from(search_text.len()).unwrap_or(u32::MAX);
        }
        Self {
            user: Arc::new(user),
            search_text: search_text.into(),
            field_ends,
        }
    }

    /// The text of fields `first..=last`, separators included.
    fn fields(&self, first: usize, last: usize) -> &[u8] {
        let start = if first == 0 {
            0
        } else {
            self.field_ends[first - 1] as usize + 1
        };
        let end = self.field_ends[last] as usize;
        self.search_text
            .as_bytes()
            .get(start..end)
            .unwrap_or_default()
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
        let user = &entry.user;
        let archived_ok = match self.archived {
            ArchivedFilter::Exclude => !user.is_archived(),
            ArchivedFilter::Only => user.is_archived(),
            ArchivedFilter::Include => true,
        };
        archived_ok
            && (self.types.is_empty() || self.types.contains(&user.user_type))
            && (self.statuses.is_empty() || self.statuses.contains(&user.status))
            && self.group.as_deref().is_none_or(|g| user.in_group(g))
            && self
                .exclude_group
                .as_deref()
                .is_none_or(|g| !user.in_group(g))
            && self
                .archived_after
                .is_none_or(|t| user.archived_at.is_some_and(|a| a > t))
            && self
                .archived_before
                .is_none_or(|t| user.archived_at.is_some_and(|a| a < t))
            && text.is_none_or(|text| text.matches(entry))
    }
}

/// One page of a listing.
pub struct UserPage {
    pub users: Vec<Arc<User>>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<UserId>,
}

/// All users by id.
#[derive(Default)]
pub struct UserCache {
    entries: BTreeMap<UserId, Entry>,
}

impl UserCache {
    pub fn load(users: Vec<User>) -> Self {
        Self {
            entries: users.into_iter().map(|u| (u.id, Entry::new(u))).collect(),
        }
    }

    pub fn get(&self, id: UserId) -> Option<Arc<User>> {
        self.entries.get(&id).map(|entry| entry.user.clone())
    }

    pub fn put(&mut self, user: User) {
        self.entries.insert(user.id, Entry::new(user));
    }

    pub fn remove(&mut self, id: UserId) {
        self.entries.remove(&id);
    }

    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.entries.values().map(|entry| entry.user.as_ref())
    }

    pub fn query(&self, query: &UserQuery) -> UserPage {
        let start = query.after.map_or(0, |id| id.saturating_add(1));
        let text = query
            .text
            .as_deref()
            .map(|text| TextSearch::new(text, &query.search_fields));
        let mut matching = self
            .entries
            .range(start..)
            .map(|(_, e)| e)
            .filter(|e| query.matches(e, text.as_ref()));
        let users: Vec<Arc<User>> = matching
            .by_ref()
            .take(query.limit)
            .map(|e| e.user.clone())
            .collect();
        let more = matching.next().is_some();
        let next_cursor = if more {
            users.last().map(|u| u.id)
        } else {
            None
        };
        UserPage { users, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::Login;
    use chrono::Utc;

    fn cache() -> UserCache {
        let now = Utc::now();
        let users = (1..=10)
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
        UserCache::load(users)
    }

    fn ids(page: &UserPage) -> Vec<UserId> {
        page.users.iter().map(|u| u.id).collect()
    }

    #[test]
    fn filters_and_pages() {
        let cache = cache();
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
