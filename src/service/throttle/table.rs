//! The throttle's counters: a fixed-size open-addressing table of hashed
//! keys, so a flood of distinct logins costs a bounded amount of memory (the
//! stalest entry makes room).

/// Entries examined for a key (and for the one to evict).
pub(super) const PROBE: usize = 8;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    /// Hash of the key; 0 marks a free slot.
    pub(super) key: u64,
    pub(super) failures: u32,
    /// Attempts begun and not yet ended.
    pub(super) pending: u32,
    /// Unix seconds of the last counted failure.
    pub(super) last: i64,
}

/// A fixed-size open-addressing table of failure counters.
pub(super) struct Table {
    pub(super) slots: Vec<Slot>,
}

impl Table {
    /// Where the live counter of `key` is, if it has one.
    fn find(&self, key: u64, now: i64, window: i64) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let start = (key as usize) & mask;
        (0..PROBE)
            .map(|step| (start + step) & mask)
            .find(|&index| self.slots[index].key == key && now - self.slots[index].last <= window)
    }

    /// The live counter of `key`, without claiming a slot for it.
    pub(super) fn peek(&self, key: u64, now: i64, window: i64) -> Option<Slot> {
        self.find(key, now, window).map(|index| self.slots[index])
    }

    /// The live counter of `key`, to change, without claiming a slot for it.
    pub(super) fn live(&mut self, key: u64, now: i64, window: i64) -> Option<&mut Slot> {
        let index = self.find(key, now, window)?;
        Some(&mut self.slots[index])
    }

    /// The slot of `key`, claiming (and if need be evicting) one for it.
    pub(super) fn slot(&mut self, key: u64, now: i64, window: i64) -> &mut Slot {
        let mask = self.slots.len() - 1;
        let start = (key as usize) & mask;
        let mut chosen = start;
        let mut stalest = i64::MAX;
        for step in 0..PROBE {
            let index = (start + step) & mask;
            let slot = self.slots[index];
            if slot.key == key {
                chosen = index;
                break;
            }
            let age = if slot.key == 0 || now - slot.last > window {
                i64::MIN
            } else {
                slot.last
            };
            if age < stalest {
                stalest = age;
                chosen = index;
            }
        }
        let slot = &mut self.slots[chosen];
        if slot.key != key || now - slot.last > window {
            *slot = Slot {
                key,
                failures: 0,
                pending: 0,
                last: now,
            };
        }
        slot
    }
}
