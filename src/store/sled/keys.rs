//! Key encodings: big-endian ids so ranges sort numerically, folded names for
//! case-insensitive unique indexes, named counters in the meta tree.

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

/// The meta key of the id counter named `name`.
pub fn counter(name: &str) -> String {
    format!("next_{name}_id")
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
}
