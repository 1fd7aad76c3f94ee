//! The physical page-map TLB: a direct-mapped cache of guest page → where a default access
//! goes, used by the default-access path of handler dispatch (the original's physical
//! page-map TLB and the emulator's physical TLB, in one). The manager must invalidate an
//! entry whenever a page's backing changes; translation safety checks it did.

use pgmsim::{Gpa, Hpa, PageDescriptor, PageType};

/// What the physical page-map TLB caches about a guest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhysTarget {
    /// Accesses go to this host page.
    Backing(Hpa),
    /// An MMIO page with no backing: default reads give zeros, writes are dropped.
    Mmio,
}

/// Where a page's default access goes, from its descriptor.
pub fn phys_target(page: &PageDescriptor) -> PhysTarget {
    if page.page_type() == PageType::Mmio {
        PhysTarget::Mmio
    } else {
        PhysTarget::Backing(page.host_phys())
    }
}

/// A direct-mapped cache of guest page → target.
#[derive(Debug, Clone)]
pub struct PageMapTlb {
    entries: Vec<Option<(Gpa, PhysTarget)>>,
}

impl PageMapTlb {
    /// An empty cache of `size` entries.
    pub fn new(size: usize) -> Self {
        PageMapTlb {
            entries: vec![None; size.max(1)],
        }
    }

    #[inline]
    fn slot(&self, gp: Gpa) -> usize {
        ((gp.0 >> 12) as usize) % self.entries.len()
    }

    /// The cached target of the page `gp` (a page base).
    pub fn lookup(&self, gp: Gpa) -> Option<PhysTarget> {
        match self.entries[self.slot(gp)] {
            Some((g, t)) if g == gp => Some(t),
            _ => None,
        }
    }

    /// Caches the target of the page `gp`.
    pub fn fill(&mut self, gp: Gpa, target: PhysTarget) {
        let s = self.slot(gp);
        self.entries[s] = Some((gp, target));
    }

    /// Drops the entry of the page `gp`, if cached.
    pub fn invalidate(&mut self, gp: Gpa) {
        let s = self.slot(gp);
        if self.entries[s].is_some_and(|(g, _)| g == gp) {
            self.entries[s] = None;
        }
    }

    /// Drops every entry.
    pub fn flush(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }

    /// Every cached entry.
    pub fn iter(&self) -> impl Iterator<Item = &(Gpa, PhysTarget)> {
        self.entries.iter().flatten()
    }
}
