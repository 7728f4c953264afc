//! Accounts that follow an external directory (LDAP): what the directory says
//! about a user, and how that lands on the user record.

use super::clock::Timestamp;
use super::names::{Email, Login};
use super::user::{Status, User, UserType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A user as the directory describes them, with their groups already mapped to
/// gatehouse automatic groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    pub login: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub department: Option<String>,
    pub groups: BTreeSet<String>,
}

/// The link between a user record and its directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryLink {
    /// The entry's DN.
    pub dn: String,
    /// Set when a sync deactivated the user because the entry was gone; a user
    /// who reappears is reactivated only then.
    pub missing_since: Option<Timestamp>,
}

/// What applying a directory entry did to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Unchanged,
    Updated,
    Reactivated,
}

impl DirectoryUser {
    /// A new active `ldap` user from this entry (id assigned by the store).
    pub fn new_user(&self, now: Timestamp) -> Option<User> {
        let mut user = User::new(0, UserType::Ldap, Status::Active, now);
        user.login = Some(Login::parse(&self.login).ok()?);
        self.apply(&mut user, now);
        Some(user)
    }

    /// Refreshes `user` from the entry: mapped attributes, automatic groups, and
    /// reactivation if a sync had deactivated it for being missing.
    pub fn apply(&self, user: &mut User, now: Timestamp) -> Applied {
        let before = user.clone();
        let text = super::names::non_blank;
        user.email = self.email.as_deref().and_then(|e| Email::parse(e).ok());
        user.first_name = text(&self.first_name);
        user.last_name = text(&self.last_name);
        user.display_name = text(&self.display_name);
        user.phone = text(&self.phone);
        user.company = text(&self.company);
        user.department = text(&self.department);
        user.automatic_groups = self.groups.clone();
        let mut outcome = Applied::Updated;
        let link = user.directory.get_or_insert_with(DirectoryLink::default);
        link.dn = self.dn.clone();
        if link.missing_since.take().is_some() && user.status == Status::Deactivated {
            user.status = Status::Active;
            outcome = Applied::Reactivated;
        }
        if *user == before {
            return Applied::Unchanged;
        }
        user.updated_at = now;
        outcome
    }
}

/// Whether a sync may consider `user` its own: type `ldap`, not archived or masked.
pub fn is_synced(user: &User) -> bool {
    user.user_type == UserType::Ldap && !user.is_archived() && user.masked_at.is_none()
}

/// Marks a user whose entry disappeared: deactivated, remembered as missing.
pub fn mark_missing(user: &mut User, now: Timestamp) -> bool {
    if user.status != Status::Active {
        return false;
    }
    user.status = Status::Deactivated;
    user.directory
        .get_or_insert_with(DirectoryLink::default)
        .missing_since = Some(now);
    user.updated_at = now;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn entry() -> DirectoryUser {
        DirectoryUser {
            dn: "uid=ann,ou=people,dc=x".into(),
            login: "ann".into(),
            email: Some("ann@x.org".into()),
            first_name: Some("Ann".into()),
            groups: ["staff".to_owned()].into(),
            ..DirectoryUser::default()
        }
    }

    #[test]
    fn create_update_missing_and_return() {
        let now = Utc::now();
        let mut user = entry()
            .new_user(now)
            .unwrap_or_else(|| panic!("valid login"));
        assert_eq!(
            (user.user_type, user.status),
            (UserType::Ldap, Status::Active)
        );
        assert_eq!(user.automatic_groups, ["staff".to_owned()].into());
        assert_eq!(entry().apply(&mut user, now), Applied::Unchanged);
        let mut moved = entry();
        moved.groups.clear();
        assert_eq!(moved.apply(&mut user, now), Applied::Updated);
        assert!(user.automatic_groups.is_empty());
        assert!(mark_missing(&mut user, now));
        assert!(
            !mark_missing(&mut user, now),
            "only active users are marked"
        );
        assert_eq!(entry().apply(&mut user, now), Applied::Reactivated);
        assert_eq!(user.status, Status::Active);
        user.status = Status::Deactivated;
        assert_eq!(
            entry().apply(&mut user, now),
            Applied::Unchanged,
            "an admin's deactivation stays"
        );
        assert!(
            DirectoryUser {
                login: "bad login".into(),
                ..entry()
            }
            .new_user(now)
            .is_none()
        );
    }
}
