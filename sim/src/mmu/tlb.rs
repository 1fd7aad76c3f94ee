//! A set-associative TLB of guest-virtual page translations with round-robin replacement.

use super::Translation;

/// One cached translation of a virtual page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlbEntry {
    /// Guest-virtual page index (inside the simulated VA window).
    pub vpi: u32,
    /// Where it goes and what it allows.
    pub t: Translation,
}

/// A set-associative TLB: `sets × ways` entries, set chosen by the low page-index bits.
#[derive(Debug, Clone)]
pub struct Tlb {
    sets: usize,
    ways: usize,
    entries: Vec<Option<TlbEntry>>,
    victim: Vec<u8>,
}

impl Tlb {
    /// An empty TLB.
    pub fn new(sets: usize, ways: usize) -> Self {
        let (sets, ways) = (sets.max(1), ways.max(1));
        Tlb {
            sets,
            ways,
            entries: vec![None; sets * ways],
            victim: vec![0; sets],
        }
    }

    #[inline]
    fn set_of(&self, vpi: u32) -> usize {
        vpi as usize % self.sets
    }

    /// The entry for `vpi`, if cached.
    #[inline]
    pub fn lookup(&self, vpi: u32) -> Option<&TlbEntry> {
        let base = self.set_of(vpi) * self.ways;
        self.entries[base..base + self.ways]
            .iter()
            .flatten()
            .find(|e| e.vpi == vpi)
    }

    /// Caches `entry`, replacing an entry for the same page or the set's next victim.
    pub fn insert(&mut self, entry: TlbEntry) {
        let set = self.set_of(entry.vpi);
        let base = set * self.ways;
        let slots = &mut self.entries[base..base + self.ways];
        if let Some(slot) = slots.iter_mut().find(|e| e.is_some_and(|e| e.vpi == entry.vpi)) {
            *slot = Some(entry);
            return;
        }
        if let Some(slot) = slots.iter_mut().find(|e| e.is_none()) {
            *slot = Some(entry);
            return;
        }
        let v = self.victim[set] as usize % self.ways;
        slots[v] = Some(entry);
        self.victim[set] = ((v + 1) % self.ways) as u8;
    }

    /// Drops the entry for `vpi` (INVLPG).
    pub fn invalidate(&mut self, vpi: u32) {
        let base = self.set_of(vpi) * self.ways;
        for e in &mut self.entries[base..base + self.ways] {
            if e.is_some_and(|x| x.vpi == vpi) {
                *e = None;
            }
        }
    }

    /// Drops every entry.
    pub fn flush(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }

    /// Every cached entry, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &TlbEntry> {
        self.entries.iter().flatten()
    }
}
