//! Entry -> account mapping: which attribute feeds which profile field, and
//! which directory groups become which automatic groups.

use crate::config::LdapConfig;
use crate::domain::external::DirectoryUser;
use crate::domain::names::fold;
use ldap3::SearchEntry;
use std::collections::{BTreeSet, HashMap};

pub struct Mapper {
    login: String,
    attributes: crate::config::LdapAttributes,
    member_attribute: String,
    /// (folded directory group DN or cn, gatehouse group)
    group_map: Vec<(String, String)>,
}

fn first(entry: &SearchEntry, attribute: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .and_then(|(_, values)| values.first().cloned())
}

fn all<'e>(entry: &'e SearchEntry, attribute: &str) -> impl Iterator<Item = &'e String> {
    entry
        .attrs
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values)
}

impl Mapper {
    pub fn new(config: &LdapConfig) -> Self {
        Self {
            login: config.login_attribute.clone(),
            attributes: config.attributes.clone(),
            member_attribute: config.group_member_attribute.clone(),
            group_map: config
                .group_map
                .iter()
                .map(|m| (fold(&m.ldap_group), m.group.clone()))
                .collect(),
        }
    }

    /// The attributes a user search asks for.
    pub fn user_attributes(&self) -> Vec<String> {
        let a = &self.attributes;
        [
            &self.login,
            &a.email,
            &a.first_name,
            &a.last_name,
            &a.display_name,
            &a.phone,
            &a.company,
            &a.department,
        ]
        .into_iter()
        .cloned()
        .collect()
    }

    /// The directory user for `entry`, with groups from `memberships`.
    pub fn user(
        &self,
        entry: &SearchEntry,
        memberships: &HashMap<String, BTreeSet<String>>,
    ) -> Option<DirectoryUser> {
        let a = &self.attributes;
        Some(DirectoryUser {
            dn: entry.dn.clone(),
            login: first(entry, &self.login)?,
            email: first(entry, &a.email),
            first_name: first(entry, &a.first_name),
            last_name: first(entry, &a.last_name),
            display_name: first(entry, &a.display_name),
            phone: first(entry, &a.phone),
            company: first(entry, &a.company),
            department: first(entry, &a.department),
            groups: memberships
                .get(&fold(&entry.dn))
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// The gatehouse groups a directory group maps to (matched by DN or cn).
    fn targets<'m>(&'m self, group: &SearchEntry) -> impl Iterator<Item = &'m String> {
        let dn = fold(&group.dn);
        let cn = first(group, "cn").map(|cn| fold(&cn));
        self.group_map
            .iter()
            .filter(move |(ldap, _)| *ldap == dn || Some(ldap) == cn.as_ref())
            .map(|(_, group)| group)
    }

    /// Member DN (folded) -> mapped gatehouse groups.
    pub fn memberships(&self, groups: &[SearchEntry]) -> HashMap<String, BTreeSet<String>> {
        let mut memberships: HashMap<String, BTreeSet<String>> = HashMap::new();
        for group in groups {
            let targets: Vec<&String> = self.targets(group).collect();
            if targets.is_empty() {
                continue;
            }
            for member in all(group, &self.member_attribute) {
                memberships
                    .entry(fold(member))
                    .or_default()
                    .extend(targets.iter().map(|t| (*t).clone()));
            }
        }
        memberships
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupMapping;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn maps_attributes_and_groups_by_dn_or_cn() {
        let config = LdapConfig {
            group_map: vec![
                GroupMapping {
                    ldap_group: "cn=Staff,ou=groups,dc=x".into(),
                    group: "staff".into(),
                },
                GroupMapping {
                    ldap_group: "field".into(),
                    group: "field-team".into(),
                },
            ],
            ..LdapConfig::default()
        };
        let mapper = Mapper::new(&config);
        let groups = [
            entry(
                "cn=staff,ou=groups,dc=x",
                &[("cn", &["staff"]), ("member", &["UID=ann,ou=people,dc=x"])],
            ),
            entry(
                "cn=field,ou=groups,dc=x",
                &[
                    ("cn", &["Field"]),
                    (
                        "member",
                        &["uid=ann,ou=people,dc=x", "uid=bo,ou=people,dc=x"],
                    ),
                ],
            ),
            entry(
                "cn=other,ou=groups,dc=x",
                &[("cn", &["other"]), ("member", &["uid=bo,ou=people,dc=x"])],
            ),
        ];
        let memberships = mapper.memberships(&groups);
        let ann = entry(
            "uid=ann,ou=people,dc=x",
            &[
                ("uid", &["ann"]),
                ("mail", &["ann@x.org"]),
                ("givenName", &["Ann"]),
            ],
        );
        let user = mapper.user(&ann, &memberships).unwrap_or_default();
        assert_eq!(
            (
                user.login.as_str(),
                user.email.as_deref(),
                user.first_name.as_deref()
            ),
            ("ann", Some("ann@x.org"), Some("Ann"))
        );
        assert_eq!(
            user.groups,
            ["field-team".to_owned(), "staff".to_owned()].into()
        );
        let bo = mapper
            .user(
                &entry("uid=bo,ou=people,dc=x", &[("uid", &["bo"])]),
                &memberships,
            )
            .unwrap_or_default();
        assert_eq!(bo.groups, ["field-team".to_owned()].into());
        assert!(
            mapper
                .user(&entry("cn=nologin", &[]), &memberships)
                .is_none()
        );
    }
}
