//! What an admin may send to create or change a user, and how it applies to a
//! record: field validation, immutable login, type rules.

use super::ValidationError;
use super::names::{Email, Login};
use super::roles::SystemRole;
use super::schedule::MailSchedule;
use super::user::{Address, Status, User, UserType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const MAX_TEXT_LEN: usize = 1000;
/// Largest JSON setting (prefs, custom data, picture, schedule), serialized.
const MAX_JSON_LEN: usize = 64 * 1024;
/// Most languages in one list.
const MAX_LANGUAGES: usize = 50;

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A partial update of a user's profile and settings; absent fields stay as they are,
/// `null` clears a field.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(rename = "type")]
    pub user_type: Option<UserType>,
    pub login: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub department: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub remarks: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub reference: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub origin: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub frontend_language: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub address: Option<Option<Address>>,
    #[serde(default, deserialize_with = "nullable")]
    pub login_valid_from: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub login_valid_to: Option<Option<DateTime<Utc>>>,
    pub require_password_change: Option<bool>,
    pub require_email_confirmation: Option<bool>,
    pub require_2fa: Option<bool>,
    pub database_languages: Option<Vec<String>>,
    pub search_languages: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub frontend_prefs: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub custom_data: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub picture: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub mail_schedule: Option<Option<Value>>,
    pub confirm_email: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub confirm_email_sent_at: Option<Option<DateTime<Utc>>>,
    pub welcome_email: Option<bool>,
}

/// A user to create: the patch fields plus what only exists at creation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    #[serde(default)]
    pub status: Option<Status>,
    pub password: Option<String>,
    #[serde(default)]
    pub override_policy: bool,
    #[serde(default)]
    pub groups: BTreeSet<String>,
    #[serde(default)]
    pub system_roles: BTreeSet<SystemRole>,
    #[serde(flatten)]
    pub profile: UserPatch,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde_json::Value>,
}

impl NewUser {
    /// A field the request named that no user has.
    pub fn unknown_field(&self) -> Option<&str> {
        self.unknown.keys().next().map(String::as_str)
    }
}

/// What a visitor sends to register themselves; becomes a pending
/// `self_registered` user.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub login: Option<String>,
    pub email: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub frontend_language: Option<String>,
    /// Code of an existing organization to join.
    pub organization: Option<String>,
}

impl Registration {
    /// Splits into the profile to apply and the password to hash.
    pub fn into_parts(self) -> (UserPatch, String) {
        let profile = UserPatch {
            login: self.login,
            email: Some(Some(self.email)),
            first_name: Some(self.first_name),
            last_name: Some(self.last_name),
            company: Some(self.company),
            department: Some(self.department),
            phone: Some(self.phone),
            frontend_language: Some(self.frontend_language),
            ..UserPatch::default()
        };
        (profile, self.password)
    }
}

fn clean_text(field: &str, value: Option<String>) -> Result<Option<String>, ValidationError> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.chars().count() > MAX_TEXT_LEN {
        return Err(ValidationError::new(
            field,
            "must be at most 1000 characters",
        ));
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// Each address part trimmed, empty ones unset, none over the text limit.
fn clean_address(address: Address) -> Result<Address, ValidationError> {
    Ok(Address {
        supplement: clean_text("address", address.supplement)?,
        street: clean_text("address", address.street)?,
        house_number: clean_text("address", address.house_number)?,
        postal_code: clean_text("address", address.postal_code)?,
        town: clean_text("address", address.town)?,
        state: clean_text("address", address.state)?,
        country: clean_text("address", address.country)?,
    })
}

/// Records the names of the fields a patch really changed.
struct Changes<'u> {
    user: &'u mut User,
    fields: Vec<&'static str>,
}

impl Changes<'_> {
    fn set<T: PartialEq>(&mut self, name: &'static str, slot: fn(&mut User) -> &mut T, value: T) {
        let current = slot(self.user);
        if *current != value {
            *current = value;
            self.fields.push(name);
        }
    }

    fn text(
        &mut self,
        name: &'static str,
        slot: fn(&mut User) -> &mut Option<String>,
        value: Option<Option<String>>,
    ) -> Result<(), ValidationError> {
        if let Some(value) = value {
            let cleaned = clean_text(name, value)?;
            self.set(name, slot, cleaned);
        }
        Ok(())
    }
}

impl Changes<'_> {
    fn json(
        &mut self,
        name: &'static str,
        slot: fn(&mut User) -> &mut Option<Value>,
        value: Option<Option<Value>>,
    ) -> Result<(), ValidationError> {
        if let Some(value) = value {
            let value = value.map(|v| json_setting(name, v)).transpose()?;
            self.set(name, slot, value);
        }
        Ok(())
    }
}

/// A JSON setting: an object, at most [`MAX_JSON_LEN`] bytes serialized.
fn json_setting(field: &str, value: Value) -> Result<Value, ValidationError> {
    if !value.is_object() {
        return Err(ValidationError::new(field, "must be a JSON object"));
    }
    if value.to_string().len() > MAX_JSON_LEN {
        return Err(ValidationError::new(field, "must be at most 64 KiB"));
    }
    Ok(value)
}

/// A list of language tags like `de-DE`: letters, digits and `-`, 2 to 35 long.
fn languages(field: &str, list: Vec<String>) -> Result<Vec<String>, ValidationError> {
    if list.len() > MAX_LANGUAGES {
        return Err(ValidationError::new(field, "at most 50 languages"));
    }
    list.into_iter()
        .map(|tag| {
            let tag = tag.trim().to_owned();
            let ok = (2..=35).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if ok {
                Ok(tag)
            } else {
                Err(ValidationError::new(
                    field,
                    format!("`{tag}` is not a language tag like de-DE"),
                ))
            }
        })
        .collect()
}

impl UserPatch {
    /// Applies the patch to `user` and returns the names of the changed fields.
    /// Nothing is changed when an error is returned.
    pub fn apply(self, user: &mut User) -> Result<Vec<&'static str>, ValidationError> {
        let mut draft = user.clone();
        let mut changes = Changes {
            user: &mut draft,
            fields: Vec::new(),
        };
        if let Some(user_type) = self.user_type {
            check_type_change(changes.user.user_type, user_type)?;
            changes.set("type", |u| &mut u.user_type, user_type);
        }
        if let Some(raw) = self.login {
            let login = Login::parse(&raw)?;
            match &changes.user.login {
                Some(current) if *current != login => {
                    return Err(ValidationError::new("login", "cannot change once set"));
                }
                Some(_) => {}
                None => changes.set("login", |u| &mut u.login, Some(login)),
            }
        }
        if let Some(email) = self.email {
            let email = email
                .filter(|e| !e.trim().is_empty())
                .map(|e| Email::parse(&e))
                .transpose()?;
            if email.as_ref().map(Email::key) != changes.user.email.as_ref().map(Email::key) {
                changes.user.email_confirmed_at = None;
            }
            changes.set("email", |u| &mut u.email, email);
        }
        changes.text("first_name", |u| &mut u.first_name, self.first_name)?;
        changes.text("last_name", |u| &mut u.last_name, self.last_name)?;
        changes.text("display_name", |u| &mut u.display_name, self.display_name)?;
        changes.text("company", |u| &mut u.company, self.company)?;
        changes.text("department", |u| &mut u.department, self.department)?;
        changes.text("phone", |u| &mut u.phone, self.phone)?;
        changes.text("remarks", |u| &mut u.remarks, self.remarks)?;
        changes.text("reference", |u| &mut u.reference, self.reference)?;
        changes.text("origin", |u| &mut u.origin, self.origin)?;
        changes.text("location", |u| &mut u.location, self.location)?;
        changes.text(
            "frontend_language",
            |u| &mut u.frontend_language,
            self.frontend_language,
        )?;
        if let Some(address) = self.address {
            let address = clean_address(address.unwrap_or_default())?;
            changes.set("address", |u| &mut u.address, address);
        }
        if let Some(from) = self.login_valid_from {
            changes.set("login_valid_from", |u| &mut u.login_valid_from, from);
        }
        if let Some(to) = self.login_valid_to {
            changes.set("login_valid_to", |u| &mut u.login_valid_to, to);
        }
        if let Some(flag) = self.require_password_change {
            changes.set(
                "require_password_change",
                |u| &mut u.require_password_change,
                flag,
            );
        }
        if let Some(flag) = self.require_email_confirmation {
            changes.set(
                "require_email_confirmation",
                |u| &mut u.require_email_confirmation,
                flag,
            );
        }
        if let Some(flag) = self.require_2fa {
            changes.set("require_2fa", |u| &mut u.require_2fa, flag);
        }
        if let Some(list) = self.database_languages {
            let list = languages("database_languages", list)?;
            changes.set("database_languages", |u| &mut u.database_languages, list);
        }
        if let Some(list) = self.search_languages {
            let list = languages("search_languages", list)?;
            changes.set("search_languages", |u| &mut u.search_languages, list);
        }
        changes.json(
            "frontend_prefs",
            |u| &mut u.frontend_prefs,
            self.frontend_prefs,
        )?;
        changes.json("custom_data", |u| &mut u.custom_data, self.custom_data)?;
        changes.json("picture", |u| &mut u.picture, self.picture)?;
        if let Some(schedule) = self.mail_schedule {
            let schedule = schedule
                .map(|value| {
                    let checked = MailSchedule::from_value(value)?;
                    serde_json::to_value(checked)
                        .map_err(|e| ValidationError::new("mail_schedule", e.to_string()))
                })
                .transpose()?;
            changes.set("mail_schedule", |u| &mut u.mail_schedule, schedule);
        }
        if let Some(flag) = self.confirm_email {
            changes.set("confirm_email", |u| &mut u.confirm_email, flag);
        }
        if let Some(at) = self.confirm_email_sent_at {
            changes.set(
                "confirm_email_sent_at",
                |u| &mut u.confirm_email_sent_at,
                at,
            );
        }
        if let Some(flag) = self.welcome_email {
            changes.set("welcome_email", |u| &mut u.welcome_email, flag);
        }
        let fields = changes.fields;
        validate_record(&draft)?;
        *user = draft;
        Ok(fields)
    }
}

/// Any type but `system` may change, and nobody becomes `system`.
fn check_type_change(from: UserType, to: UserType) -> Result<(), ValidationError> {
    if from != to && (from == UserType::System || to == UserType::System) {
        return Err(ValidationError::new(
            "type",
            "system users keep their type and no user becomes one",
        ));
    }
    Ok(())
}

/// Whole-record rules: a way to sign in, and a sane validity window.
pub fn validate_record(user: &User) -> Result<(), ValidationError> {
    if user.login.is_none() && user.email.is_none() {
        return Err(ValidationError::new(
            "login",
            "a user needs a login or an email",
        ));
    }
    if let (Some(from), Some(to)) = (user.login_valid_from, user.login_valid_to) {
        if from >= to {
            return Err(ValidationError::new(
                "login_valid_to",
                "must be after login_valid_from",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn user() -> User {
        let mut user = User::new(9, UserType::Local, Status::Active, Utc::now());
        user.login = Login::parse("jane").ok();
        user
    }

    fn patch(value: serde_json::Value) -> UserPatch {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn patch_sets_and_clears() {
        let mut u = user();
        let changed = patch(json!({"first_name": " Jane ", "phone": "1"})).apply(&mut u);
        assert_eq!(changed, Ok(vec!["first_name", "phone"]));
        assert_eq!(u.first_name.as_deref(), Some("Jane"));
        let changed = patch(json!({"phone": null, "first_name": "Jane"})).apply(&mut u);
        assert_eq!(changed, Ok(vec!["phone"]));
        assert_eq!(u.phone, None);
    }

    #[test]
    fn patch_refusals_change_nothing() {
        let cases = [
            (json!({"login": "other"}), "login"),
            (json!({"type": "system"}), "type"),
            (json!({"email": "not-an-email", "phone": "2"}), "email"),
            (
                json!({"login_valid_from": "2030-01-01T00:00:00Z", "login_valid_to": "2029-01-01T00:00:00Z"}),
                "login_valid_to",
            ),
        ];
        for (body, field) in cases {
            let mut u = user();
            let before = u.clone();
            let outcome = patch(body.clone()).apply(&mut u);
            assert_eq!(
                outcome.map_err(|e| e.field),
                Err(field.to_owned()),
                "{body}"
            );
            assert_eq!(u, before);
        }
    }

    #[test]
    fn login_same_value_is_no_change_and_email_needed_without_login() {
        let mut u = user();
        assert_eq!(patch(json!({"login": "JANE"})).apply(&mut u), Ok(vec![]));
        let mut no_login = User::new(3, UserType::Email, Status::Active, Utc::now());
        no_login.email = Email::parse("a@b.org").ok();
        let outcome = patch(json!({"email": null})).apply(&mut no_login);
        assert_eq!(outcome.map_err(|e| e.field), Err("login".to_owned()));
    }

    #[test]
    fn new_user_reports_unknown_fields() {
        let body = json!({"login": "x", "password": "p", "groups": ["g"], "shoe_size": 4});
        let new: NewUser = serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(new.unknown_field(), Some("shoe_size"));
        assert_eq!(new.profile.login.as_deref(), Some("x"));
        assert_eq!(new.groups.len(), 1);
    }
}
