//! The CSV import of records for an organization: rows of other sources are
//! skipped by line, a bad row fails the whole import, and the rest are created
//! in one unit of work.

use super::Records;
use crate::domain::ValidationError;
use crate::domain::audit::AuditAction;
use crate::domain::permissions::{
    OrganizationAction, decide_organization, decide_record_in_project,
};
use crate::domain::projects::{OrganizationId, ProjectId, Resource, ResourceId};
use crate::service::projects::refuse;
use crate::service::{Principal, ServiceError, ServiceResult};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeSet;

/// What a CSV import did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = RecordImportReport)]
pub struct ImportReport {
    pub created: Vec<ResourceId>,
    /// Rows for another organization, by line number (the header is line 1).
    pub skipped: Vec<SkippedRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SkippedRow {
    pub line: u64,
    pub source: String,
}

/// Columns a records CSV must have.
const IMPORT_COLUMNS: [&str; 3] = ["kind", "name", "source"];
/// Columns a records CSV may have; every column not named here becomes an attribute.
const OPTIONAL_COLUMNS: [&str; 2] = ["project", "steward"];

/// A CSV row ready to become a record.
struct ImportRow {
    line: u64,
    kind: String,
    name: String,
    project: Option<ProjectId>,
    /// The code of the steward organization.
    steward: Option<String>,
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// Parses a records CSV for organization `code`: rows of other sources are
/// skipped and reported; any malformed row fails the whole import, naming its line.
fn parse_import(csv_text: &str, code: &str) -> ServiceResult<(Vec<ImportRow>, Vec<SkippedRow>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ValidationError::new("line 1", e.to_string()))?
        .clone();
    for column in IMPORT_COLUMNS {
        if !headers.iter().any(|h| h == column) {
            return Err(
                ValidationError::new("line 1", format!("missing column `{column}`")).into(),
            );
        }
    }
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ValidationError::new(format!("line {line}"), e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
        };
        if !field("source").eq_ignore_ascii_case(code) {
            skipped.push(SkippedRow {
                line,
                source: field("source").to_owned(),
            });
            continue;
        }
        let bad = |message: &str| ValidationError::new(format!("line {line}"), message.to_owned());
        let (kind, name) = (field("kind"), field("name"));
        if kind.is_empty() || name.is_empty() {
            return Err(bad("kind and name are required").into());
        }
        let project = match field("project") {
            "" => None,
            raw => Some(
                raw.parse()
                    .map_err(|_| bad("project must be a project id"))?,
            ),
        };
        let attributes = headers
            .iter()
            .zip(record.iter())
            .filter(|(h, v)| {
                !IMPORT_COLUMNS.contains(h) && !OPTIONAL_COLUMNS.contains(h) && !v.is_empty()
            })
            .map(|(h, v)| (h.to_owned(), json!(v)))
            .collect();
        rows.push(ImportRow {
            line,
            kind: kind.to_owned(),
            name: name.to_owned(),
            project,
            steward: Some(field("steward").to_owned()).filter(|code| !code.is_empty()),
            attributes,
        });
    }
    Ok((rows, skipped))
}

impl Records {
    /// Imports records for organization `org` from CSV, all in one transaction.
    /// Admins import for any organization, others only for their own.
    pub fn import_records(
        &self,
        principal: &Principal,
        org: OrganizationId,
        csv_text: &str,
    ) -> ServiceResult<ImportReport> {
        let actor = principal.unrestricted()?;
        refuse(decide_organization(
            actor,
            OrganizationAction::ImportRecords,
            org,
        ))?;
        let organization = self
            .snapshot()
            .organization(org)?
            .ok_or(ServiceError::NotFound("organization"))?;
        let (rows, skipped) = parse_import(csv_text, &organization.code)?;
        let created = self.write_as(actor, |unit| {
            let mut created = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(project) = row.project {
                    let project = unit.tx.project(project)?.ok_or_else(|| {
                        ValidationError::new("project", format!("no project {project}"))
                    })?;
                    let role = unit.tx.membership(project.id, actor.id)?;
                    refuse(decide_record_in_project(actor, role, self.settings.rules))?;
                }
                let steward = match &row.steward {
                    Some(code) => Some(
                        unit.tx
                            .organization_by_code(code)?
                            .ok_or_else(|| {
                                ValidationError::new(
                                    format!("line {}", row.line),
                                    format!("steward: no organization with code `{code}`"),
                                )
                            })?
                            .id,
                    ),
                    None => None,
                };
                let mut resource = Resource {
                    id: unit.tx.next_id("resource")?,
                    kind: row.kind.clone(),
                    name: row.name.clone(),
                    project: row.project,
                    source_organization: Some(org),
                    steward_organization: steward,
                    owner: actor.id,
                    managers: BTreeSet::new(),
                    assigned: BTreeSet::new(),
                    created_by: actor.id,
                    updated_by: actor.id,
                    attributes: serde_json::json!({}),
                    thumbnail: None,
                    media_by: None,
                    created_at: unit.now,
                    updated_at: unit.now,
                };
                let attributes = serde_json::Value::Object(row.attributes.clone());
                resource.set_attributes(attributes, actor.id);
                unit.tx.put_resource(&resource)?;
                created.push(resource.id);
            }
            unit.audit(
                AuditAction::ResourceImport,
                None,
                json!({ "organization": org, "created": created.len() }),
            )?;
            Ok(created)
        })?;
        Ok(ImportReport { created, skipped })
    }
}
