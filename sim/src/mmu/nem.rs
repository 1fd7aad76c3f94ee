//! NEM mode: a nested page table (guest-physical page → backing, protection) kept *only*
//! through the manager's NEM notifications, as a native hypervisor API would be.

use std::collections::BTreeMap;

use pgmsim::{Gpa, Hpa, NemProtection};

/// One nested mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NestedEntry {
    /// Host page.
    pub host: Hpa,
    /// Protection.
    pub prot: NemProtection,
}

/// The nested page table.
#[derive(Debug, Clone, Default)]
pub struct NestedPt {
    entries: BTreeMap<Gpa, NestedEntry>,
}

impl NestedPt {
    /// Sets the mapping of the page `gp`.
    pub fn set(&mut self, gp: Gpa, entry: NestedEntry) {
        self.entries.insert(gp, entry);
    }

    /// The mapping of the page `gp`.
    #[inline]
    pub fn get(&self, gp: Gpa) -> Option<&NestedEntry> {
        self.entries.get(&gp)
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
