//! `gatehouse verify`: every secondary index checked against the records it
//! indexes, both ways, in one consistent snapshot: the unique user indexes
//! (login, email, reference, SSO subject), active admins, organization
//! codes, memberships kept both ways round, the outbox queue, and tokens
//! of users that exist. Each drift is described; none means consistent.

use super::reads::{RawRead, decode};
use super::tx::UNIQUE_INDEXES;
use super::{TreeId, keys};
use crate::domain::credentials::TokenRecord;
use crate::domain::mail::{MailStatus, OutboxEntry};
use crate::domain::names::fold;
use crate::domain::projects::{Organization, ProjectRole};
use crate::domain::user::User;
use crate::store::StoreError;
use std::collections::{BTreeMap, BTreeSet};

/// Drifts reported at most.
const MAX_DRIFTS: usize = 1000;

struct Report(Vec<String>);

impl Report {
    fn drift(&mut self, text: String) {
        if self.0.len() < MAX_DRIFTS {
            self.0.push(text);
        }
    }
}

/// Every drift between the indexes and the records of `view`.
pub(in crate::store) fn drift(view: &impl RawRead) -> Result<Vec<String>, StoreError> {
    let mut report = Report(Vec::new());
    let users: Vec<User> = view.all(TreeId::Users)?;
    let ids: BTreeSet<u64> = users.iter().map(|u| u.id).collect();
    for index in &UNIQUE_INDEXES {
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for user in &users {
            if let Some(key) = (index.key)(user) {
                if let Some(other) = expected.insert(key.clone(), user.id) {
                    report.drift(format!(
                        "{} `{key}` is held by both {other} and {}",
                        index.field, user.id
                    ));
                }
            }
        }
        let stored: BTreeMap<String, u64> = view
            .raw_scan(index.tree, &[])
            .iter()
            .map(|(key, raw)| {
                (
                    String::from_utf8_lossy(key).into_owned(),
                    keys::decode_u64(raw),
                )
            })
            .collect();
        compare(&mut report, index.field, &expected, &stored);
    }
    let admins: BTreeMap<String, u64> = users
        .iter()
        .filter(|u| u.is_active_admin())
        .map(|u| (u.id.to_string(), u.id))
        .collect();
    let stored_admins: BTreeMap<String, u64> = view
        .raw_scan(TreeId::ActiveAdmins, &[])
        .iter()
        .map(|(key, _)| keys::decode_u64(key))
        .map(|id| (id.to_string(), id))
        .collect();
    compare(&mut report, "active admin", &admins, &stored_admins);

    let organizations: Vec<Organization> = view.all(TreeId::Organizations)?;
    let codes: BTreeMap<String, u64> = organizations
        .iter()
        .map(|o| (fold(&o.code), o.id))
        .collect();
    let stored_codes: BTreeMap<String, u64> = view
        .raw_scan(TreeId::OrganizationCodes, &[])
        .iter()
        .map(|(key, raw)| {
            (
                String::from_utf8_lossy(key).into_owned(),
                keys::decode_u64(raw),
            )
        })
        .collect();
    compare(&mut report, "organization code", &codes, &stored_codes);

    let by_project = pairs(view, TreeId::Memberships)?;
    let by_user: BTreeMap<(u64, u64), ProjectRole> = pairs(view, TreeId::MemberProjects)?
        .into_iter()
        .map(|((user, project), role)| ((project, user), role))
        .collect();
    for ((project, user), role) in &by_project {
        if by_user.get(&(*project, *user)) != Some(role) {
            report.drift(format!(
                "membership of user {user} in project {project} is not mirrored"
            ));
        }
        if !ids.contains(user) {
            report.drift(format!(
                "project {project} has member {user}, who does not exist"
            ));
        }
    }
    for key in by_user.keys().filter(|key| !by_project.contains_key(key)) {
        report.drift(format!(
            "user {} lists project {} without the membership",
            key.1, key.0
        ));
    }

    let outbox: Vec<OutboxEntry> = view.all(TreeId::Outbox)?;
    let queued: BTreeSet<u64> = view
        .raw_scan(TreeId::OutboxQueue, &[])
        .iter()
        .map(|(key, _)| keys::decode_u64(key))
        .collect();
    for entry in &outbox {
        if (entry.status == MailStatus::Queued) != queued.contains(&entry.id) {
            report.drift(format!(
                "mail {} ({:?}) and the outbox queue disagree",
                entry.id, entry.status
            ));
        }
    }
    let known: BTreeSet<u64> = outbox.iter().map(|e| e.id).collect();
    for id in queued.difference(&known) {
        report.drift(format!(
            "the outbox queue names mail {id}, which does not exist"
        ));
    }

    for (_, raw) in view.raw_scan(TreeId::Tokens, &[]) {
        let token: TokenRecord = decode(&raw)?;
        if !ids.contains(&token.user_id) {
            report.drift(format!(
                "a {:?} token belongs to user {}, who does not exist",
                token.kind, token.user_id
            ));
        }
    }
    Ok(report.0)
}

/// Reports entries of `expected` missing from `stored` or pointing elsewhere,
/// and entries of `stored` nothing expects.
fn compare(
    report: &mut Report,
    what: &str,
    expected: &BTreeMap<String, u64>,
    stored: &BTreeMap<String, u64>,
) {
    for (key, id) in expected {
        match stored.get(key) {
            Some(found) if found == id => {}
            Some(found) => report.drift(format!("{what} `{key}` points at {found}, not at {id}")),
            None => report.drift(format!("{what} `{key}` of {id} is missing from its index")),
        }
    }
    for (key, id) in stored {
        if !expected.contains_key(key) {
            report.drift(format!(
                "{what} index holds `{key}` -> {id}, which no record has"
            ));
        }
    }
}

/// A pair tree (`first ++ second -> role`) as a map.
fn pairs(
    view: &impl RawRead,
    tree: TreeId,
) -> Result<BTreeMap<(u64, u64), ProjectRole>, StoreError> {
    view.raw_scan(tree, &[])
        .iter()
        .map(|(key, raw)| {
            let (first, second) = key.split_at(key.len().min(8));
            Ok((
                (keys::decode_u64(first), keys::decode_u64(second)),
                decode(raw)?,
            ))
        })
        .collect()
}
