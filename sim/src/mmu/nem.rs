//! NEM mode: a nested page table (guest-physical page → backing, protection) kept *only*
//! through the manager's NEM notifications, as a native hypervisor API would be.

use std::collections::BTreeMap;

use pgmsim::NemProtection;

/// One nested mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NestedEntry {
    /// Host page.
    pub host: u64,
    /// Protection.
    pub prot: NemProtection,
}

/// The nested page table.
#[derive(Debug, Clone, Default)]
pub struct NestedPt {
    entries: BTreeMap<u64, NestedEntry>,
    /// Notifications received, by kind (for statistics).
    pub notifications: u64,
}

impl NestedPt {
    /// Sets the mapping of `gp`.
    pub fn set(&mut self, gp: u64, entry: NestedEntry) {
        self.entries.insert(gp, entry);
    }

    /// The mapping of `gp`.
    #[inline]
    pub fn get(&self, gp: u64) -> Option<&NestedEntry> {
        self.entries.get(&gp)
    }

    /// Every mapping in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &NestedEntry)> {
        self.entries.iter()
    }
}

/// The two NEM state bits a backend reports for a protection (stored in the descriptor).
pub fn nem_state_for(prot: NemProtection) -> u8 {
    match (prot.can_read(), prot.can_write()) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    }
}
