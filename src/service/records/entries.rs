//! Entries of records (trap checks, counts, observations) and the project
//! report that counts them. Each access asks `domain::permissions` with the
//! entry actions: members on their own and assigned records, annotators add
//! to any record, editors change and delete any entry.

use super::Records;
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::clock::Timestamp;
use crate::domain::entries::{Entry, EntryId, EntryInput};
use crate::domain::permissions::Action;
use crate::domain::projects::{ProjectId, ResourceId};
use crate::service::{Principal, ServiceError, ServiceResult};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// How many entries of each kind one record got over a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordCount {
    pub id: ResourceId,
    pub name: String,
    pub kind: String,
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
}

/// A project's entries over `[from, to)`, per record and per kind.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectReport {
    pub project: ProjectId,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub records: Vec<RecordCount>,
    pub by_kind: BTreeMap<String, u64>,
    pub total: u64,
}

impl Records {
    /// Every entry of record `resource`, oldest observation first.
    pub fn list_entries(
        &self,
        principal: &Principal,
        resource: ResourceId,
    ) -> ServiceResult<Vec<Entry>> {
        let actor = principal.unrestricted()?;
        self.checked_resource(actor, resource, Action::View)?;
        let mut entries = self.snapshot().entries(resource)?;
        entries.sort_by_key(|entry| (entry.time, entry.id));
        Ok(entries)
    }

    pub fn get_entry(
        &self,
        principal: &Principal,
        resource: ResourceId,
        id: EntryId,
    ) -> ServiceResult<Entry> {
        let actor = principal.unrestricted()?;
        self.checked_resource(actor, resource, Action::View)?;
        self.snapshot()
            .entry(resource, id)?
            .ok_or(ServiceError::NotFound("entry"))
    }

    /// Adds an entry by the caller; the kind defaults to `entry`, the time to now.
    pub fn add_entry(
        &self,
        principal: &Principal,
        resource: ResourceId,
        input: EntryInput,
    ) -> ServiceResult<Entry> {
        let actor = principal.unrestricted()?;
        let change = input.check()?;
        self.write_as(actor, |unit| {
            self.checked_in(unit, actor, resource, Action::AddEntry)?;
            let id = unit.tx.next_id("entry")?;
            let entry = Entry::new(id, resource, change.clone(), actor.id, unit.now)?;
            unit.tx.put_entry(&entry)?;
            let details = json!({ "resource": resource, "entry": id });
            unit.audit(AuditAction::EntryCreate, None, details)?;
            Ok(entry)
        })
    }

    /// Changes the fields given of an entry.
    pub fn edit_entry(
        &self,
        principal: &Principal,
        resource: ResourceId,
        id: EntryId,
        input: EntryInput,
    ) -> ServiceResult<Entry> {
        let actor = principal.unrestricted()?;
        let change = input.check()?;
        self.write_as(actor, |unit| {
            self.checked_in(unit, actor, resource, Action::EditEntry)?;
            let mut entry = unit
                .tx
                .entry(resource, id)?
                .ok_or(ServiceError::NotFound("entry"))?;
            entry.apply(change.clone(), actor.id, unit.now);
            unit.tx.put_entry(&entry)?;
            let details = json!({ "resource": resource, "entry": id });
            unit.audit(AuditAction::EntryUpdate, None, details)?;
            Ok(entry)
        })
    }

    pub fn delete_entry(
        &self,
        principal: &Principal,
        resource: ResourceId,
        id: EntryId,
    ) -> ServiceResult<()> {
        let actor = principal.unrestricted()?;
        self.write_as(actor, |unit| {
            self.checked_in(unit, actor, resource, Action::DeleteEntry)?;
            unit.tx
                .entry(resource, id)?
                .ok_or(ServiceError::NotFound("entry"))?;
            unit.tx.remove_entry(resource, id)?;
            let details = json!({ "resource": resource, "entry": id });
            unit.audit(AuditAction::EntryDelete, None, details)
        })
    }

    /// Counts the entries of project `project`'s records observed in
    /// `[from, to)`, per record and per kind. Editors and up.
    pub fn project_report(
        &self,
        principal: &Principal,
        project: ProjectId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> ServiceResult<ProjectReport> {
        let actor = principal.unrestricted()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(ValidationError::new("to", "must be after from").into());
            }
        }
        let view = self.snapshot();
        self.checked_project(&*view, actor, project, Action::Report)?;
        let within =
            |time: Timestamp| from.is_none_or(|f| time >= f) && to.is_none_or(|t| time < t);
        let mut report = ProjectReport {
            project,
            from,
            to,
            records: Vec::new(),
            by_kind: BTreeMap::new(),
            total: 0,
        };
        for record in view
            .resources()?
            .into_iter()
            .filter(|r| r.project == Some(project))
        {
            let mut count = RecordCount {
                id: record.id,
                name: record.name,
                kind: record.kind,
                total: 0,
                by_kind: BTreeMap::new(),
            };
            for entry in view.entries(record.id)? {
                if within(entry.time) {
                    *count.by_kind.entry(entry.kind.clone()).or_default() += 1;
                    *report.by_kind.entry(entry.kind).or_default() += 1;
                    count.total += 1;
                }
            }
            report.total += count.total;
            report.records.push(count);
        }
        Ok(report)
    }
}
