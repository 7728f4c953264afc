//! Checking one row of an import against the store: finding the user it
//! names, applying its cells to a copy, and the rules a row must keep (no
//! system user changed, the right to change the user, free login and email,
//! existing manual groups, the password policy).

use super::UserExchange;
use super::columns::{self, Column, RowInput, differences};
use super::import::{Planned, RowError, error};
use crate::domain::roles;
use crate::domain::user::{Right, Status, User, UserType};
use crate::store::ReadView;

/// Finds the user a row names: by `ID`, else by `user.login`; when both are
/// given they must name the same user (a file from another system with its
/// own IDs must not hit the wrong users).
fn target(view: &dyn ReadView, line: u64, row: &RowInput) -> Result<User, RowError> {
    let (id, column) = match (row.id, &row.patch.login) {
        (Some(id), Some(login)) => {
            let by_login = view.user_id_by_login(login).ok().flatten();
            if by_login != Some(id) {
                return Err(error(
                    line,
                    Some(Column::Login),
                    "names another user than ID",
                ));
            }
            (Some(id), Column::Id)
        }
        (Some(id), None) => (Some(id), Column::Id),
        (None, Some(login)) => (view.user_id_by_login(login).ok().flatten(), Column::Login),
        (None, None) => {
            return Err(error(
                line,
                Some(Column::Id),
                "names no user (ID or user.login)",
            ));
        }
    };
    id.and_then(|id| view.user(id).ok().flatten())
        .ok_or_else(|| error(line, Some(column), "no such user"))
}

impl UserExchange {
    /// Applies the row to `user`; errors name the column.
    fn apply_row(
        &self,
        line: u64,
        row: RowInput,
        user: &mut User,
        view: &dyn ReadView,
    ) -> Result<Option<String>, Vec<RowError>> {
        let mut errors = Vec::new();
        let address = columns::address(&row, &user.address);
        let mut patch = row.patch;
        patch.address = address.map(Some);
        if let Err(e) = patch.apply(user) {
            errors.push(error(line, columns::column_of_field(&e.field), e.message));
        }
        match (row.login_disabled, user.status) {
            (Some(true), _) => user.status = Status::Deactivated,
            (Some(false), Status::Deactivated)
                if user.masked_at.is_some() || user.is_archived() =>
            {
                errors.push(error(
                    line,
                    Some(Column::LoginDisabled),
                    "a masked or archived user cannot be enabled",
                ));
            }
            (Some(false), Status::Deactivated) => user.status = Status::Active,
            _ => {}
        }
        if let Some(groups) = row.groups {
            let mut canonical = std::collections::BTreeSet::new();
            for name in &groups {
                match view.group(name) {
                    Ok(Some(group)) if group.automatic => errors.push(error(
                        line,
                        Some(Column::GroupsFind),
                        format!("`{name}` is an automatic group; only the directory sync sets it"),
                    )),
                    // Stored as the group spells itself, whatever the file's case.
                    Ok(Some(group)) => {
                        canonical.insert(group.name);
                    }
                    _ => errors.push(error(
                        line,
                        Some(Column::GroupsFind),
                        format!("no group `{name}`"),
                    )),
                }
            }
            user.groups = canonical;
        }
        if let Some(password) = &row.password {
            if let Err(e) = self.check_password(user, password, false) {
                errors.push(error(line, Some(Column::Password), e.to_string()));
            }
        }
        if errors.is_empty() {
            Ok(row.password)
        } else {
            Err(errors)
        }
    }

    pub(super) fn plan_add(
        &self,
        actor: &User,
        view: &dyn ReadView,
        line: u64,
        row: RowInput,
    ) -> Result<Planned, Vec<RowError>> {
        let user_type = row.patch.user_type.unwrap_or(UserType::Local);
        let mut user = User::new(0, user_type, Status::Active, self.now());
        user.owner = Some(actor.id);
        user.updated_by = Some(actor.id);
        let password = self.apply_row(line, row, &mut user, view)?;
        let mut errors = Vec::new();
        if user.user_type == UserType::System {
            errors.push(error(
                line,
                Some(Column::Type),
                "nobody becomes a system user",
            ));
        }
        // A login may equal nobody's login or email (sign-in looks up both).
        let owners = [
            (
                Column::Login,
                user.login
                    .as_ref()
                    .map(|l| view.user_id_by_login_or_email(l.as_str())),
            ),
            (
                Column::Email,
                user.email
                    .as_ref()
                    .map(|e| view.user_id_by_login_or_email(e.as_str())),
            ),
        ];
        for (column, owner) in owners {
            if matches!(owner, Some(Ok(Some(_)))) {
                errors.push(error(line, Some(column), "already taken"));
            }
        }
        if errors.is_empty() {
            Ok(Planned::Add {
                line,
                user: Box::new(user),
                password,
            })
        } else {
            Err(errors)
        }
    }

    pub(super) fn plan_update(
        &self,
        actor: &User,
        view: &dyn ReadView,
        line: u64,
        row: RowInput,
        columns: &[Column],
    ) -> Result<Planned, Vec<RowError>> {
        let before = target(view, line, &row).map_err(|e| vec![e])?;
        check_version(line, &row, &before, columns)?;
        let mut after = before.clone();
        let password = self.apply_row(line, row, &mut after, view)?;
        // A row that changes nothing (a system user in a whole export, say)
        // is fine; one that changes a user needs the right to.
        let changes = password.is_some() || !differences(&before, &after).is_empty();
        if changes {
            guard(actor, &before, line, Right::Write)?;
        }
        let names = [
            (
                Column::Login,
                after.login.as_ref().map(|l| l.as_str().to_owned()),
            ),
            (
                Column::Email,
                after.email.as_ref().map(|e| e.as_str().to_owned()),
            ),
        ];
        for (column, name) in names {
            let owner = name.and_then(|n| view.user_id_by_login_or_email(&n).ok().flatten());
            if owner.is_some_and(|id| id != after.id) {
                return Err(vec![error(line, Some(column), "already taken")]);
            }
        }
        after.updated_by = Some(actor.id);
        Ok(Planned::Update {
            line,
            before: Box::new(before),
            after: Box::new(after),
            password,
        })
    }

    pub(super) fn plan_delete(
        &self,
        actor: &User,
        view: &dyn ReadView,
        line: u64,
        row: &RowInput,
        columns: &[Column],
    ) -> Result<Planned, Vec<RowError>> {
        let user = target(view, line, row).map_err(|e| vec![e])?;
        check_version(line, row, &user, columns)?;
        guard(actor, &user, line, Right::Delete)?;
        Ok(Planned::Delete { line, id: user.id })
    }
}

/// A row with `user._version` must carry the user's current version.
fn check_version(
    line: u64,
    row: &RowInput,
    user: &User,
    columns: &[Column],
) -> Result<(), Vec<RowError>> {
    match (row.version, columns.contains(&Column::Version)) {
        (Some(version), true) if version != user.version => Err(vec![RowError {
            conflict: true,
            ..error(
                line,
                Some(Column::Version),
                format!(
                    "the user was changed since the export (version {} now, {version} in the file)",
                    user.version
                ),
            )
        }]),
        _ => Ok(()),
    }
}

/// System users are never touched by an import, and the actor needs the right.
fn guard(actor: &User, user: &User, line: u64, right: Right) -> Result<(), Vec<RowError>> {
    if user.is_system() {
        return Err(vec![error(
            line,
            Some(Column::Id),
            "system users cannot be changed by an import",
        )]);
    }
    let allowed = match right {
        Right::Delete => roles::may_touch_record(actor, user, right).is_ok(),
        _ => roles::may_manage_user(actor, user).is_ok(),
    };
    if allowed {
        Ok(())
    } else {
        Err(vec![error(
            line,
            Some(Column::Id),
            "you may not change this user",
        )])
    }
}
