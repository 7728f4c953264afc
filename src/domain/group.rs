//! Groups: local ones admins manage, and automatic ones only a directory sync changes.

use super::ValidationError;
use super::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// A named set of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    /// Set by a directory sync; such groups and their memberships are read-only here.
    pub automatic: bool,
    pub created_at: Timestamp,
}

/// Checks a group name: 1 to 64 letters, digits, `. _ -`, case kept.
pub fn validate_group_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            "must be 1 to 64 letters, digits, . _ or -",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for (name, ok) in [
            ("staff", true),
            ("field-team_2", true),
            ("", false),
            ("a b", false),
        ] {
            assert_eq!(validate_group_name(name).is_ok(), ok, "{name}");
        }
    }
}
