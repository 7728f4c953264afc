//! The byte form of a unit's writes (tree code, key, value or removal), shared
//! by sled's large commits, backups and the PostgreSQL commit log; tree codes
//! only grow at the end, so what an older version wrote reads back the same.

use super::TreeId;
use super::packed::Change;
use super::tx::WriteSet;
use crate::store::StoreError;
use sled::IVec;

pub(in crate::store) const ALL_TREES: [TreeId; 21] = [
    TreeId::Users,
    TreeId::Logins,
    TreeId::Emails,
    TreeId::References,
    TreeId::ActiveAdmins,
    TreeId::Groups,
    TreeId::Credentials,
    TreeId::Tokens,
    TreeId::Meta,
    TreeId::Organizations,
    TreeId::OrganizationCodes,
    TreeId::Projects,
    TreeId::Resources,
    TreeId::Memberships,
    TreeId::MemberProjects,
    TreeId::Audit,
    TreeId::Outbox,
    TreeId::OutboxQueue,
    TreeId::SsoSubjects,
    TreeId::Entries,
    TreeId::Media,
];

/// A tree's code in a record: its place in [`ALL_TREES`], which only grows
/// at the end, so records written by an older version read back the same.
pub(in crate::store) fn code(tree: TreeId) -> u8 {
    ALL_TREES
        .iter()
        .position(|t| *t == tree)
        .and_then(|index| u8::try_from(index).ok())
        .unwrap_or(u8::MAX)
}

/// The tree with `code`, if there is one.
pub(in crate::store) fn tree_of(code: u8) -> Option<TreeId> {
    ALL_TREES.get(usize::from(code)).copied()
}

/// The record: per write, the tree, the key, and the value or a removal.
pub(in crate::store) fn encode(writes: &WriteSet) -> Vec<u8> {
    let mut out = Vec::new();
    for ((tree, key), change) in writes {
        out.push(code(*tree));
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        match change {
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                out.extend_from_slice(value);
            }
            None => out.push(0),
        }
    }
    out
}

pub(in crate::store) fn decode(mut raw: &[u8]) -> Result<Vec<(TreeId, IVec, Change)>, StoreError> {
    let damaged = || StoreError::Corrupt("a stored record of writes is damaged".into());
    let take = |len: usize, raw: &mut &[u8]| -> Result<Vec<u8>, StoreError> {
        if raw.len() < len {
            return Err(damaged());
        }
        let (head, rest) = raw.split_at(len);
        *raw = rest;
        Ok(head.to_vec())
    };
    let mut entries = Vec::new();
    while !raw.is_empty() {
        let tree = take(1, &mut raw)?[0];
        let tree = *ALL_TREES.get(usize::from(tree)).ok_or_else(damaged)?;
        let len = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| damaged())?);
        let key = IVec::from(take(len as usize, &mut raw)?);
        let change = match take(1, &mut raw)?[0] {
            1 => {
                let len = u32::from_be_bytes(take(4, &mut raw)?.try_into().map_err(|_| damaged())?);
                Some(IVec::from(take(len as usize, &mut raw)?))
            }
            _ => None,
        };
        entries.push((tree, key, change));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_round_trips_through_the_record() {
        assert_eq!(ALL_TREES.len(), super::super::TREE_NAMES.len());
        for (index, tree) in ALL_TREES.iter().enumerate() {
            assert_eq!(usize::from(code(*tree)), index);
        }
        // Codes written by earlier versions keep their meaning.
        assert_eq!(code(TreeId::Audit), 15);
        let mut writes = WriteSet::new();
        writes.insert(
            (TreeId::Users, IVec::from(&b"k1"[..])),
            Some(IVec::from(&b"v1"[..])),
        );
        writes.insert((TreeId::Audit, IVec::from(&b"k2"[..])), None);
        let decoded = decode(&encode(&writes)).unwrap_or_default();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].0, TreeId::Users);
        assert_eq!(decoded[1].2, None);
        assert!(
            decode(&encode(&writes)[..5]).is_err(),
            "a cut record is refused"
        );
    }
}
