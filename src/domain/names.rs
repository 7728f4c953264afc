//! Login and email newtypes: validated on parse, case kept for display, compared
//! and indexed case-insensitively.

use super::ValidationError;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

const MAX_LOGIN_LEN: usize = 64;
const MAX_EMAIL_LEN: usize = 254;

/// A sign-in name, NFKC-normalised: letters, digits and `. _ - @`, at most 64
/// characters, never only dots (`.` and `..` would name a directory above a
/// home). It names the user's FTP home, so it can hold no `/`, `\` or control
/// character.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Login(String);

impl Login {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let value: String = raw.trim().nfkc().collect();
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
        if value.is_empty() || value.chars().count() > MAX_LOGIN_LEN {
            return Err(ValidationError::new("login", "must be 1 to 64 characters"));
        }
        if !value.chars().all(allowed) {
            return Err(ValidationError::new(
                "login",
                "may only hold letters, digits and . _ - @",
            ));
        }
        if value.chars().all(|c| c == '.') {
            return Err(ValidationError::new("login", "cannot be only dots"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form used for uniqueness and lookups.
    pub fn key(&self) -> String {
        fold(&self.0)
    }
}

/// An email address: one `@`, a non-empty local part and a domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let value = raw.trim();
        let invalid = || ValidationError::new("email", "is not a valid email address");
        if value.len() > MAX_EMAIL_LEN || value.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@');
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        fold(&self.0)
    }
}

/// Folds a name for comparison and indexing: NFKC, trimmed, lower case.
pub fn fold(value: &str) -> String {
    value.trim().nfkc().collect::<String>().to_lowercase()
}

macro_rules! string_newtype_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.key() == other.key()
            }
        }
        impl Eq for $name {}
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_newtype_conversions!(Login);
string_newtype_conversions!(Email);

/// A value from an external directory or provider, trimmed; blank means none.
pub fn non_blank(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        let cases = [
            ("alice", true),
            ("Alice.B-c_d@x", true),
            ("", false),
            ("has space", false),
            ("semi;colon", false),
            (&"x".repeat(65), false),
            (".", false),
            ("..", false),
            ("...", false),
            ("../etc", false),
            ("a/b", false),
            ("a\\b", false),
            ("tab\there", false),
            ("nul\0", false),
            ("bell\u{7}", false),
            ("j.doe", true),
            ("..x", true),
            ("Zoë", true),
        ];
        for (raw, ok) in cases {
            assert_eq!(Login::parse(raw).is_ok(), ok, "{raw}");
        }
        assert_eq!(Login::parse("Alice").ok(), Login::parse("aLICE").ok());
        // Full-width letters and the decomposed ë fold to the same login.
        let wide = Login::parse("\u{FF21}lice").map(String::from);
        assert_eq!(wide.as_deref(), Ok("Alice"));
        assert_eq!(Login::parse("Zoe\u{308}").ok(), Login::parse("zoë").ok());
        // A full-width solidus is a slash once normalised, so it is refused.
        assert!(Login::parse("a\u{FF0F}b").is_err());
    }

    #[test]
    fn emails() {
        let cases = [
            ("a@b.org", true),
            ("A.B@Example.ORG", true),
            ("no-at.org", false),
            ("@b.org", false),
            ("a@localhost", true),
            ("a@", false),
            ("a@b.org.", false),
            ("a b@c.org", false),
            ("a@b@c.org", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(Email::parse(raw).is_ok(), ok, "{raw}");
        }
        assert_eq!(
            Email::parse("X@Y.org").map(|e| e.key()).ok().as_deref(),
            Some("x@y.org")
        );
    }
}
