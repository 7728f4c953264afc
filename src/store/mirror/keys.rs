//! Key encodings: big-endian ids so ranges sort numerically, folded names for
//! case-insensitive unique indexes, named counters in the meta tree.

use crate::domain::mail::{MailId, Queued};
use crate::domain::user::UserId;

pub const SCHEMA_VERSION: &[u8] = b"schema_version";

pub fn id(id: UserId) -> [u8; 8] {
    id.to_be_bytes()
}

/// Two ids in one key, sorted by the first then the second.
pub fn pair(first: u64, second: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&first.to_be_bytes());
    key[8..].copy_from_slice(&second.to_be_bytes());
    key
}

/// The meta key of the installation setting named `name`.
pub fn setting(name: &str) -> String {
    format!("setting_{name}")
}

/// The meta key of the id counter named `name`.
pub fn counter(name: &str) -> String {
    format!("next_{name}_id")
}

/// A queue index value: when the entry falls due (milliseconds since the
/// epoch, big-endian) and whether it is held for a digest.
pub fn queued(queued: &Queued) -> [u8; 9] {
    let mut value = [0u8; 9];
    value[..8].copy_from_slice(&queued.due_at.timestamp_millis().to_be_bytes());
    value[8] = u8::from(queued.held);
    value
}

/// Reads a queue index entry back; an unreadable value counts as due now.
pub fn decode_queued(id: MailId, raw: &[u8]) -> Queued {
    let millis = raw
        .get(..8)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, i64::from_be_bytes);
    Queued {
        id,
        due_at: chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default(),
        held: raw.get(8).is_some_and(|flag| *flag == 1),
    }
}

pub fn decode_u64(raw: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let len = raw.len().min(8);
    bytes[8 - len..].copy_from_slice(&raw[raw.len() - len..]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort() {
        assert_eq!(decode_u64(&id(42)), 42);
        assert!(id(2) < id(256));
        assert!(pair(1, 9) < pair(2, 0));
    }

    #[test]
    fn queue_values_round_trip() {
        let due_at = chrono::DateTime::from_timestamp_millis(1_767_600_000_123).unwrap_or_default();
        let entry = Queued {
            id: 7,
            due_at,
            held: true,
        };
        assert_eq!(decode_queued(7, &queued(&entry)), entry);
    }
}
