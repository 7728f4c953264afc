//! Single sign-on through OpenID Connect: what a provider vouched for after a
//! verified sign-in, the link it leaves on an account, and the rules that map
//! it onto one (who is admitted, which automatic groups follow, who may be
//! linked by email).

use super::clock::Timestamp;
use super::names::{Email, Login};
use super::user::{Status, User, UserType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The provider and subject an account signs in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoLink {
    /// The configured provider's name (for people).
    pub provider: String,
    /// The issuer that vouches for the subject (what identifies it).
    pub issuer: String,
    pub subject: String,
}

impl SsoLink {
    /// The key of the unique index: one account per issuer and subject (a
    /// provider name pointed at another issuer matches none of the old links).
    pub fn key(&self) -> String {
        format!("{}\u{0}{}", self.issuer, self.subject)
    }
}

/// What a provider's verified ID token says about the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsoIdentity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub login: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    /// The values of the groups claim, as the provider sent them; `None`
    /// when the token carries no such claim (then nothing is known).
    pub groups: Option<BTreeSet<String>>,
}

/// A provider's admission and mapping rules.
#[derive(Debug, Clone, Default)]
pub struct SsoPolicy {
    /// (value of the groups claim, gatehouse automatic group)
    pub group_map: Vec<(String, String)>,
    /// When not empty, one of these values must be in the groups claim.
    pub allowed_groups: Vec<String>,
    /// Create an account at the first sign-in.
    pub auto_create: bool,
    /// Link the first sign-in to the account holding the same, verified, email.
    pub link_by_email: bool,
}

/// Why a sign-in was refused; logged, never shown.
pub type Refusal = &'static str;

impl SsoPolicy {
    /// Whether the identity's groups let it in.
    pub fn admits(&self, identity: &SsoIdentity) -> Result<(), Refusal> {
        let allowed = self.allowed_groups.is_empty()
            || identity.groups.as_ref().is_some_and(|groups| {
                self.allowed_groups
                    .iter()
                    .any(|group| groups.contains(group))
            });
        allowed.then_some(()).ok_or("not in the allowed groups")
    }

    /// The automatic groups the identity's groups claim maps to; `None`
    /// when the token said nothing about groups (they then stay as they are).
    pub fn automatic_groups(&self, identity: &SsoIdentity) -> Option<BTreeSet<String>> {
        let groups = identity.groups.as_ref()?;
        Some(
            self.group_map
                .iter()
                .filter(|(claim, _)| groups.contains(claim))
                .map(|(_, group)| group.clone())
                .collect(),
        )
    }
}

impl SsoIdentity {
    pub fn link(&self) -> SsoLink {
        SsoLink {
            provider: self.provider.clone(),
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
        }
    }

    /// A new active `sso` account (id assigned by the store).
    pub fn new_user(
        &self,
        groups: Option<BTreeSet<String>>,
        now: Timestamp,
    ) -> Result<User, Refusal> {
        let login = self.login.as_deref().ok_or("no login claim")?;
        let mut user = User::new(0, UserType::Sso, Status::Active, now);
        user.login = Some(Login::parse(login).map_err(|_| "the login claim is not a valid login")?);
        self.apply(&mut user, groups, now);
        Ok(user)
    }

    /// Refreshes `user` from the identity: mapped attributes (a claim the
    /// provider left out leaves the field alone), the link, and the automatic
    /// groups both ways. An email is taken only when the provider verified
    /// it (then it counts as confirmed), or, unconfirmed, for an account that
    /// has none. Returns whether anything changed.
    pub fn apply(&self, user: &mut User, groups: Option<BTreeSet<String>>, now: Timestamp) -> bool {
        let before = user.clone();
        let text = super::names::non_blank;
        if let Some(email) = self.email.as_deref().and_then(|e| Email::parse(e).ok()) {
            let same = user.email.as_ref().map(Email::key) == Some(email.key());
            if self.email_verified {
                if !same || user.email_confirmed_at.is_none() {
                    user.email_confirmed_at = Some(now);
                }
                user.email = Some(email);
            } else if user.email.is_none() {
                user.email = Some(email);
                user.email_confirmed_at = None;
            }
        }
        for (field, value) in [
            (&mut user.first_name, text(&self.first_name)),
            (&mut user.last_name, text(&self.last_name)),
            (&mut user.display_name, text(&self.display_name)),
        ] {
            if value.is_some() {
                *field = value;
            }
        }
        user.sso = Some(self.link());
        if let Some(groups) = groups {
            user.automatic_groups = groups;
        }
        if *user == before {
            return false;
        }
        user.updated_at = now;
        true
    }
}

/// Whether an existing account may be linked to a provider's identity by
/// email: only one whose address was confirmed, with no system role, no
/// second factor of its own, and not a system, directory, masked, deleted or
/// already linked account.
pub fn may_link_by_email(user: &User) -> bool {
    user.system_roles.is_empty()
        && user.email_confirmed_at.is_some()
        && !user.two_factor_enabled
        && !user.require_2fa
        && !user.is_system()
        && user.user_type != UserType::Ldap
        && user.sso.is_none()
        && user.masked_at.is_none()
        && !user.is_archived()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::SystemRole;
    use chrono::Utc;

    fn identity(groups: &[&str]) -> SsoIdentity {
        SsoIdentity {
            provider: "idp".into(),
            issuer: "https://idp.example.org".into(),
            subject: "s-1".into(),
            login: Some("ines".into()),
            email: Some("ines@example.org".into()),
            email_verified: true,
            first_name: Some("Ines".into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            ..SsoIdentity::default()
        }
    }

    fn policy() -> SsoPolicy {
        SsoPolicy {
            group_map: vec![
                ("staff".into(), "field-staff".into()),
                ("admins".into(), "it".into()),
            ],
            allowed_groups: vec!["staff".into(), "guests".into()],
            auto_create: true,
            link_by_email: true,
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|g| g.to_string()).collect()
    }

    #[test]
    fn allowed_groups_and_mapping() {
        let cases: [(&[&str], bool, &[&str]); 4] = [
            (&["staff"], true, &["field-staff"]),
            (&["staff", "admins"], true, &["field-staff", "it"]),
            (&["guests"], true, &[]),
            (&["admins"], false, &["it"]),
        ];
        for (groups, admitted, mapped) in cases {
            let id = identity(groups);
            assert_eq!(policy().admits(&id).is_ok(), admitted, "{groups:?}");
            assert_eq!(
                policy().automatic_groups(&id),
                Some(set(mapped)),
                "{groups:?}"
            );
        }
        assert!(
            SsoPolicy::default().admits(&identity(&[])).is_ok(),
            "no allowed_groups: everyone"
        );
        let silent = SsoIdentity {
            groups: None,
            ..identity(&[])
        };
        assert!(
            policy().admits(&silent).is_err(),
            "no groups claim: not shown to be allowed"
        );
        assert_eq!(policy().automatic_groups(&silent), None);
    }

    #[test]
    fn groups_follow_the_claim_both_ways() {
        let now = Utc::now();
        let id = identity(&["staff", "admins"]);
        let mut user = id
            .new_user(policy().automatic_groups(&id), now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (user.user_type, user.status),
            (UserType::Sso, Status::Active)
        );
        assert!(
            user.email_confirmed_at.is_some(),
            "a verified email counts as confirmed"
        );
        assert_eq!(user.automatic_groups.len(), 2);
        let fewer = identity(&["staff"]);
        assert!(fewer.apply(&mut user, policy().automatic_groups(&fewer), now));
        assert_eq!(user.automatic_groups, set(&["field-staff"]));
        assert!(
            !fewer.apply(&mut user, policy().automatic_groups(&fewer), now),
            "nothing new"
        );
        let silent = SsoIdentity {
            groups: None,
            ..identity(&[])
        };
        silent.apply(&mut user, policy().automatic_groups(&silent), now);
        assert_eq!(
            user.automatic_groups,
            set(&["field-staff"]),
            "an absent claim changes nothing"
        );
        let bad = SsoIdentity {
            login: Some("no spaces allowed".into()),
            ..identity(&[])
        };
        assert!(bad.new_user(None, now).is_err());
    }

    #[test]
    fn an_unverified_email_never_replaces_one_nor_counts_as_confirmed() {
        let now = Utc::now();
        let mut user = User::new(7, UserType::Sso, Status::Active, now);
        let unverified = SsoIdentity {
            email: Some("ceo@example.org".into()),
            email_verified: false,
            ..identity(&[])
        };
        unverified.apply(&mut user, None, now);
        assert_eq!(
            user.email.as_ref().map(|e| e.as_str()),
            Some("ceo@example.org")
        );
        assert!(
            user.email_confirmed_at.is_none(),
            "taken for an account without one, unconfirmed"
        );
        identity(&[]).apply(&mut user, None, now);
        assert_eq!(
            user.email.as_ref().map(|e| e.as_str()),
            Some("ines@example.org")
        );
        assert!(user.email_confirmed_at.is_some());
        unverified.apply(&mut user, None, now);
        assert_eq!(
            user.email.as_ref().map(|e| e.as_str()),
            Some("ines@example.org"),
            "kept"
        );
    }

    #[test]
    fn only_plain_confirmed_accounts_are_linked_by_email() {
        let now = Utc::now();
        let plain = || {
            let mut user = User::new(7, UserType::Local, Status::Active, now);
            user.email_confirmed_at = Some(now);
            user
        };
        assert!(may_link_by_email(&plain()));
        type Change = fn(&mut User);
        let refused: [(&str, Change); 6] = [
            ("admin", |u| {
                u.system_roles.insert(SystemRole::Admin);
            }),
            ("user manager", |u| {
                u.system_roles.insert(SystemRole::UserManager);
            }),
            ("unconfirmed email", |u| u.email_confirmed_at = None),
            ("own second factor", |u| u.two_factor_enabled = true),
            ("second factor required", |u| u.require_2fa = true),
            ("directory account", |u| u.user_type = UserType::Ldap),
        ];
        for (what, change) in refused {
            let mut user = plain();
            change(&mut user);
            assert!(!may_link_by_email(&user), "{what}");
        }
    }
}
