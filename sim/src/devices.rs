//! The simulated devices behind handler callbacks, and the dirty-tracking ground truth.

use std::collections::{BTreeMap, BTreeSet};

use pgmsim::PAGE_SHIFT;

/// One MMIO2 range under dirty tracking: the handler over it and what the guest wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyTracker {
    /// First byte of the tracked range (the handler's start).
    pub first: u64,
    /// Last byte.
    pub last: u64,
    /// Bit offset of this range in the harvested bitmap (running page index over trackers,
    /// as the seed's caller computes it).
    pub bitmap_offset: u32,
    /// Pages (indices in the range) written since the previous harvest: the ground truth.
    pub written: BTreeSet<u32>,
}

impl DirtyTracker {
    /// Pages in the range.
    pub fn pages(&self) -> u32 {
        (((self.last - self.first) >> PAGE_SHIFT) + 1) as u32
    }
}

/// Device state shared by the run (one copy: the devices are not under test).
#[derive(Debug, Clone, Default)]
pub struct Devices {
    /// Emulated registers: (handler start, byte offset) → last value written.
    pub registers: BTreeMap<(u64, u64), u64>,
    /// Dirty-tracked MMIO2 ranges.
    pub trackers: Vec<DirtyTracker>,
}

impl Devices {
    /// Records a guest write reaching guest-physical `gp` (any path).
    pub fn note_write(&mut self, gp: u64) {
        for t in &mut self.trackers {
            if gp >= t.first && gp <= t.last {
                t.written.insert(((gp - t.first) >> PAGE_SHIFT) as u32);
            }
        }
    }

    /// Whether `addr` lies in a tracked range (the generator keeps other operations away).
    pub fn is_tracked(&self, addr: u64) -> bool {
        self.trackers.iter().any(|t| addr >= t.first && addr <= t.last)
    }

    /// The value an emulated register returns: the last write, else a deterministic pattern
    /// derived from the handler's user argument and the offset.
    pub fn register_read(&self, key: u64, user: u64, offset: u64) -> u64 {
        match self.registers.get(&(key, offset)) {
            Some(v) => *v,
            None => {
                let mut z = user ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z ^ (z >> 29)
            }
        }
    }
}
