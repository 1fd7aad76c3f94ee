//! The reverse map: for each guest-physical page, the shadow PTEs that map it (the original's
//! page-pool tracking). It is bounded per page; a page whose references overflow it can no
//! longer be updated precisely, so an update falls back to a full flush and resync.

use std::collections::BTreeMap;

use pgmsim::Gpa;

/// A shadow PTE reference: vCPU and virtual page index.
pub type PteRef = (u8, u32);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    refs: Vec<PteRef>,
    overflowed: bool,
}

/// Guest page → shadow PTE references, at most `capacity` per page.
#[derive(Debug, Clone)]
pub struct RevMap {
    capacity: usize,
    map: BTreeMap<Gpa, Entry>,
}

impl RevMap {
    /// An empty map tracking up to `capacity` references per page.
    pub fn new(capacity: usize) -> Self {
        RevMap {
            capacity: capacity.max(1),
            map: BTreeMap::new(),
        }
    }

    /// Records that `r` maps `gp`; past capacity the page is marked overflowed.
    pub fn add(&mut self, gp: Gpa, r: PteRef) {
        let e = self.map.entry(gp).or_default();
        if e.overflowed || e.refs.contains(&r) {
            return;
        }
        if e.refs.len() >= self.capacity {
            e.overflowed = true;
            e.refs.clear();
        } else {
            e.refs.push(r);
        }
    }

    /// Forgets that `r` maps `gp`.
    pub fn remove(&mut self, gp: Gpa, r: PteRef) {
        if let Some(e) = self.map.get_mut(&gp) {
            e.refs.retain(|x| *x != r);
            if e.refs.is_empty() && !e.overflowed {
                self.map.remove(&gp);
            }
        }
    }

    /// The references to `gp`, and whether the page overflowed.
    pub fn refs(&self, gp: Gpa) -> (&[PteRef], bool) {
        self.map.get(&gp).map_or((&[], false), |e| (&e.refs, e.overflowed))
    }

    /// Forgets every page's references to PTEs of `vcpu` (its shadow table was cleared).
    pub fn forget_vcpu(&mut self, vcpu: u8) {
        for e in self.map.values_mut() {
            e.refs.retain(|r| r.0 != vcpu);
        }
        self.map.retain(|_, e| !e.refs.is_empty() || e.overflowed);
    }

    /// Forgets everything (after a full resync).
    pub fn clear(&mut self) {
        self.map.clear();
    }
}
