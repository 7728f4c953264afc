//! Entries of a record: the trap checks, counts and observations made at a
//! station, each with a kind, a time, free attributes and its author.

use super::ValidationError;
use super::clock::Timestamp;
use super::projects::ResourceId;
use super::user::UserId;
use serde::{Deserialize, Serialize};

pub type EntryId = u64;

/// The kind an entry gets when none is named.
pub const DEFAULT_KIND: &str = "entry";
/// Longest kind.
const MAX_KIND_CHARS: usize = 64;
/// Largest attributes object, serialized.
const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// One entry of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub resource: ResourceId,
    pub kind: String,
    /// When the observation was made (not when it was written down).
    pub time: Timestamp,
    pub attributes: serde_json::Value,
    pub author: UserId,
    pub updated_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a client sends to add or change an entry.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// Defaults to `entry` when adding.
    pub kind: Option<String>,
    /// RFC 3339; defaults to now when adding.
    pub time: Option<String>,
    /// A JSON object; required when adding.
    pub attributes: Option<serde_json::Value>,
}

/// The checked fields of an [`EntryInput`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryChange {
    pub kind: Option<String>,
    pub time: Option<Timestamp>,
    pub attributes: Option<serde_json::Value>,
}

impl EntryInput {
    /// Checks every field given, naming the first that is wrong.
    pub fn check(&self) -> Result<EntryChange, ValidationError> {
        let kind = match &self.kind {
            Some(kind) => {
                let kind = kind.trim();
                if kind.is_empty() || kind.chars().count() > MAX_KIND_CHARS {
                    return Err(ValidationError::new("kind", "must be 1 to 64 characters"));
                }
                Some(kind.to_owned())
            }
            None => None,
        };
        let time = match &self.time {
            Some(raw) => Some(
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| ValidationError::new("time", "must be an RFC 3339 timestamp"))?
                    .with_timezone(&chrono::Utc),
            ),
            None => None,
        };
        let attributes = match &self.attributes {
            Some(value) if !value.is_object() => {
                return Err(ValidationError::new("attributes", "must be a JSON object"));
            }
            Some(value) if value.to_string().len() > MAX_ATTRIBUTES_BYTES => {
                return Err(ValidationError::new("attributes", "must be at most 64 KiB"));
            }
            other => other.clone(),
        };
        Ok(EntryChange {
            kind,
            time,
            attributes,
        })
    }
}

impl Entry {
    /// A new entry from a checked change: the kind and time default, the
    /// attributes are required.
    pub fn new(
        id: EntryId,
        resource: ResourceId,
        change: EntryChange,
        author: UserId,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let attributes = change
            .attributes
            .ok_or_else(|| ValidationError::new("attributes", "required"))?;
        Ok(Self {
            id,
            resource,
            kind: change.kind.unwrap_or_else(|| DEFAULT_KIND.to_owned()),
            time: change.time.unwrap_or(now),
            attributes,
            author,
            updated_by: author,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a checked change by `editor`.
    pub fn apply(&mut self, change: EntryChange, editor: UserId, now: Timestamp) {
        if let Some(kind) = change.kind {
            self.kind = kind;
        }
        if let Some(time) = change.time {
            self.time = time;
        }
        if let Some(attributes) = change.attributes {
            self.attributes = attributes;
        }
        self.updated_by = editor;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_are_checked_field_by_field() {
        let input = |kind: Option<&str>, time: Option<&str>, attributes| EntryInput {
            kind: kind.map(str::to_owned),
            time: time.map(str::to_owned),
            attributes,
        };
        let cases: [(EntryInput, Option<&str>); 6] = [
            (
                input(
                    Some("check"),
                    Some("2026-03-01T08:00:00+13:00"),
                    Some(json!({})),
                ),
                None,
            ),
            (input(Some(" "), None, None), Some("kind")),
            (input(None, Some("yesterday"), None), Some("time")),
            (input(None, None, Some(json!([1]))), Some("attributes")),
            (
                input(None, None, Some(json!({ "x": "y".repeat(70_000) }))),
                Some("attributes"),
            ),
            (input(Some(&"k".repeat(65)), None, None), Some("kind")),
        ];
        for (input, field) in cases {
            assert_eq!(
                input.check().err().map(|e| e.field),
                field.map(str::to_owned)
            );
        }
        let change = input(None, Some("2026-03-01T08:00:00+13:00"), None)
            .check()
            .unwrap_or_default();
        assert_eq!(
            change.time.map(|t| t.to_rfc3339()),
            Some("2026-02-28T19:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn new_entries_default_and_require_attributes() {
        let now = chrono::Utc::now();
        let missing = Entry::new(1, 2, EntryChange::default(), 3, now);
        assert_eq!(
            missing.err().map(|e| e.field),
            Some("attributes".to_owned())
        );
        let change = EntryChange {
            attributes: Some(json!({ "caught": "rat" })),
            ..EntryChange::default()
        };
        let mut entry = Entry::new(1, 2, change, 3, now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (entry.kind.as_str(), entry.time, entry.author),
            ("entry", now, 3)
        );
        let edit = EntryChange {
            kind: Some("check".into()),
            ..EntryChange::default()
        };
        entry.apply(edit, 4, now);
        assert_eq!((entry.kind.as_str(), entry.updated_by), ("check", 4));
        assert_eq!(entry.attributes, json!({ "caught": "rat" }));
    }
}
