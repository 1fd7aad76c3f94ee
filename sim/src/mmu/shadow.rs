//! Shadow page tables: per vCPU, the translations the (simulated) hardware really uses,
//! filled lazily on faults with rights = guest rights ∧ what the page's handler state allows.

use super::Translation;

/// One shadow PTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShadowPte {
    /// Where it goes and what it allows.
    pub t: Translation,
    /// The guest PTE's write right when this PTE was synced. Guest PTE edits are always
    /// followed by INVLPG, which drops this PTE, so the copy never goes stale; it lets the
    /// platform restore write access "only as far as the guest allows" without a walk.
    pub guest_write: bool,
}

/// A vCPU's shadow table over the simulated VA window.
#[derive(Debug, Clone)]
pub struct ShadowTable {
    ptes: Vec<Option<ShadowPte>>,
}

impl ShadowTable {
    /// An empty table for `pages` virtual pages.
    pub fn new(pages: u32) -> Self {
        ShadowTable {
            ptes: vec![None; pages as usize],
        }
    }

    /// The PTE of virtual page `vpi`.
    #[inline]
    pub fn get(&self, vpi: u32) -> Option<&ShadowPte> {
        self.ptes.get(vpi as usize)?.as_ref()
    }

    /// Mutable PTE of `vpi`.
    #[inline]
    pub fn get_mut(&mut self, vpi: u32) -> Option<&mut ShadowPte> {
        self.ptes.get_mut(vpi as usize)?.as_mut()
    }

    /// Installs a PTE, returning the one it replaces.
    pub fn set(&mut self, vpi: u32, pte: ShadowPte) -> Option<ShadowPte> {
        self.ptes.get_mut(vpi as usize)?.replace(pte)
    }

    /// Removes a PTE.
    pub fn clear(&mut self, vpi: u32) -> Option<ShadowPte> {
        self.ptes.get_mut(vpi as usize)?.take()
    }

    /// Removes every PTE.
    pub fn clear_all(&mut self) {
        self.ptes.iter_mut().for_each(|p| *p = None);
    }

    /// Every present PTE with its page index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &ShadowPte)> {
        self.ptes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i as u32, p)))
    }
}
