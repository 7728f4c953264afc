//! The password policy: length bounds and "not your login or email".

use super::ValidationError;
use super::names::fold;

/// Limits a new password must meet unless an admin overrides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
}

impl PasswordPolicy {
    /// Checks `password` for a user known by `identities` (login, email).
    pub fn check(&self, password: &str, identities: &[&str]) -> Result<(), ValidationError> {
        let length = password.chars().count();
        if length < self.min_length {
            let message = format!("must be at least {} characters", self.min_length);
            return Err(ValidationError::new("password", message));
        }
        if length > self.max_length {
            let message = format!("must be at most {} characters", self.max_length);
            return Err(ValidationError::new("password", message));
        }
        if identities
            .iter()
            .any(|identity| fold(identity) == fold(password))
        {
            return Err(ValidationError::new(
                "password",
                "must differ from the login and email",
            ));
        }
        Ok(())
    }

    /// Even an override keeps a password non-empty and bounded, so hashing stays cheap.
    pub fn check_overridden(&self, password: &str) -> Result<(), ValidationError> {
        if password.is_empty() || password.chars().count() > self.max_length {
            let message = format!("must be 1 to {} characters", self.max_length);
            return Err(ValidationError::new("password", message));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let policy = PasswordPolicy {
            min_length: 12,
            max_length: 20,
        };
        let cases = [
            ("short", false),
            ("exactly12chr", true),
            ("a-long-enough-phrase", true),
            ("much-too-long-for-this-policy", false),
            ("Alice.Example", false),
            ("alice@example.org", false),
        ];
        for (password, ok) in cases {
            let outcome = policy.check(password, &["alice.example", "ALICE@example.org"]);
            assert_eq!(outcome.is_ok(), ok, "{password}");
        }
        assert!(policy.check_overridden("x").is_ok());
        assert!(policy.check_overridden("").is_err());
    }
}
