//! Time-based one-time passwords (RFC 6238, SHA-1, 6 digits, 30 s steps).

use hmac::{Hmac, Mac};
use sha1::Sha1;

const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
/// Codes one step either side of now are accepted, for clock drift.
const DRIFT_STEPS: i64 = 1;

/// The code for `secret` at the 30-second step holding `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    let counter = unix_seconds.div_euclid(STEP_SECONDS) as u64;
    hotp(secret, counter)
}

/// Whether `code` is valid for `secret` at `unix_seconds`, allowing one step of drift.
pub fn verify(secret: &[u8], code: &str, unix_seconds: i64) -> bool {
    matching_step(secret, code, unix_seconds).is_some()
}

/// The time step `code` belongs to, when it is valid for `secret` at
/// `unix_seconds` (one step of drift allowed). A code is used once: callers
/// accept only steps later than the last one used.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (-DRIFT_STEPS..=DRIFT_STEPS)
        .map(|drift| unix_seconds.div_euclid(STEP_SECONDS) + drift)
        .find(|step| hotp(secret, *step as u64) == code)
}

/// The `otpauth://` URI authenticator apps read from a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    let label = percent_encode(&format!("{issuer}:{account}"));
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{label}?secret={secret_base32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )
}

fn hotp(secret: &[u8], counter: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 vectors of RFC 6238 appendix B (8 digits there; the last 6 here).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        let vectors = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ];
        for (time, code) in vectors {
            assert_eq!(code_at(secret, time), code, "t={time}");
        }
    }

    #[test]
    fn verify_allows_one_step_of_drift() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        assert!(verify(secret, &code_at(secret, now - 30), now));
        assert!(verify(secret, &code_at(secret, now + 30), now));
        assert!(!verify(secret, &code_at(secret, now - 90), now));
        assert!(!verify(secret, "12345", now));
        assert!(!verify(secret, "abcdef", now));
    }

    #[test]
    fn uri_is_encoded() {
        let uri = otpauth_uri("gatehouse", "a b@x.org", "ABC");
        assert!(
            uri.starts_with("otpauth://totp/gatehouse%3Aa%20b%40x.org?secret=ABC&issuer=gatehouse")
        );
    }
}
