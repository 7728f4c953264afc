//! "May this account sign in now?": the one rule every door (HTTP, FTPS, LDAP)
//! applies before checking a secret's worth.

use super::clock::Timestamp;
use super::user::{Status, User, UserType};

/// Why an account may not sign in. Callers show one message for all of them;
/// the reason goes to the log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    #[error("account is pending approval")]
    Pending,
    #[error("account is deactivated")]
    Deactivated,
    #[error("account is archived")]
    Archived,
    #[error("account is not valid yet")]
    NotYetValid,
    #[error("account validity has ended")]
    Expired,
    #[error("email address is not confirmed")]
    EmailUnconfirmed,
    #[error("account type cannot sign in")]
    TypeCannotSignIn,
}

/// Checks status, archive, validity window and email confirmation at `now`.
pub fn check_account(user: &User, now: Timestamp) -> Result<(), SignInRefusal> {
    match user.status {
        Status::Pending => return Err(SignInRefusal::Pending),
        Status::Deactivated => return Err(SignInRefusal::Deactivated),
        Status::Active => {}
    }
    if user.is_archived() {
        return Err(SignInRefusal::Archived);
    }
    if user.login_valid_from.is_some_and(|from| now < from) {
        return Err(SignInRefusal::NotYetValid);
    }
    if user.login_valid_to.is_some_and(|to| now >= to) {
        return Err(SignInRefusal::Expired);
    }
    if user.require_email_confirmation && user.email_confirmed_at.is_none() {
        return Err(SignInRefusal::EmailUnconfirmed);
    }
    if matches!(user.user_type, UserType::Anonymous | UserType::Collection) {
        return Err(SignInRefusal::TypeCannotSignIn);
    }
    Ok(())
}

/// Something a signed-in user must do before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obligation {
    ChangePassword,
    EnrolTwoFactor,
}

/// The unit a client address is counted in: an IPv4 address (also when
/// written as an IPv4-mapped IPv6 one), or a whole IPv6 /64, which one host
/// usually holds entirely.
pub fn client_bucket(address: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::IpAddr;
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
    }
}

/// The obligation that currently blocks `user`, if any.
pub fn pending_obligation(user: &User) -> Option<Obligation> {
    if user.require_password_change {
        Some(Obligation::ChangePassword)
    } else if user.require_2fa && !user.two_factor_enabled {
        Some(Obligation::EnrolTwoFactor)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn client_buckets() {
        use std::net::IpAddr;
        let cases = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:2::1", "2001:db8:1:2::"),
        ];
        for (raw, bucket) in cases {
            let address: Option<IpAddr> = raw.parse().ok();
            assert_eq!(address.map(client_bucket), bucket.parse().ok(), "{raw}");
        }
    }

    #[test]
    fn refusal_table() {
        let now = Utc::now();
        let base = User::new(5, UserType::Local, Status::Active, now);
        type Setup = fn(&mut User, Timestamp);
        let cases: [(Setup, Result<(), SignInRefusal>); 9] = [
            (|_, _| {}, Ok(())),
            (
                |u, _| u.status = Status::Pending,
                Err(SignInRefusal::Pending),
            ),
            (
                |u, _| u.status = Status::Deactivated,
                Err(SignInRefusal::Deactivated),
            ),
            (
                |u, now| u.archived_at = Some(now),
                Err(SignInRefusal::Archived),
            ),
            (
                |u, now| u.login_valid_from = Some(now + Duration::hours(1)),
                Err(SignInRefusal::NotYetValid),
            ),
            (
                |u, now| u.login_valid_to = Some(now),
                Err(SignInRefusal::Expired),
            ),
            (
                |u, _| u.require_email_confirmation = true,
                Err(SignInRefusal::EmailUnconfirmed),
            ),
            (
                |u, now| {
                    u.require_email_confirmation = true;
                    u.email_confirmed_at = Some(now);
                    u.login_valid_to = Some(now + Duration::seconds(1));
                },
                Ok(()),
            ),
            (
                |u, _| u.user_type = UserType::Anonymous,
                Err(SignInRefusal::TypeCannotSignIn),
            ),
        ];
        for (index, (setup, expected)) in cases.into_iter().enumerate() {
            let mut user = base.clone();
            setup(&mut user, now);
            assert_eq!(check_account(&user, now), expected, "case {index}");
        }
    }

    #[test]
    fn obligations() {
        let mut user = User::new(5, UserType::Local, Status::Active, Utc::now());
        assert_eq!(pending_obligation(&user), None);
        user.require_2fa = true;
        assert_eq!(pending_obligation(&user), Some(Obligation::EnrolTwoFactor));
        user.require_password_change = true;
        assert_eq!(pending_obligation(&user), Some(Obligation::ChangePassword));
        user.require_password_change = false;
        user.two_factor_enabled = true;
        assert_eq!(pending_obligation(&user), None);
    }
}
