//! The bounded handler allocator (the original's hardened slab allocator).
//!
//! Capacity is fixed when the manager is built, so a guest that registers handlers in a loop
//! gets `OutOfResources`, never unbounded growth. Ids carry a per-slot generation so a freed
//! id is refused even after its slot is reused (the original hands out raw pointers:
//! deliberate difference D8).

use std::sync::Arc;

use crate::error::Error;
use crate::handler::kind::HandlerTypeHandle;
use crate::invariant::{ensure, expect_invariant};

/// Opaque id of a handler node: slot index in the low 32 bits, the slot's generation above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HandlerId(pub u64);

impl HandlerId {
    fn new(slot: u32, generation: u32) -> Self {
        HandlerId(((generation as u64) << 32) | slot as u64)
    }
    /// Slot index part.
    pub const fn slot(self) -> u32 {
        self.0 as u32
    }
    const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Where a registered node lies and what it counts: exists exactly while the node is in the
/// range tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Registration {
    /// First byte.
    pub key: u64,
    /// Last byte, inclusive.
    pub key_last: u64,
    /// Pages touched, partial edge pages included.
    pub page_count: u32,
    /// Pages currently aliased (Mmio handlers).
    pub aliased_pages: u32,
    /// Pages currently temporarily off.
    pub temp_off_pages: u32,
    /// Aliases undone by `reset_aliased_page` without accounting since the counts were last
    /// zeroed: the part of `aliased_pages` its caller owns (manager invariant M5). Only the
    /// self-checks read it; `check_sync` reports the stale count, as the original does.
    pub unaccounted_aliases: u32,
}

impl Registration {
    /// A fresh registration of `[key, key_last]` touching `page_count` pages.
    pub fn new(key: u64, key_last: u64, page_count: u32) -> Self {
        Registration {
            key,
            key_last,
            page_count,
            aliased_pages: 0,
            temp_off_pages: 0,
            unaccounted_aliases: 0,
        }
    }
}

/// One handler node (the original's `PGMPHYSHANDLER`, minus the tree links the tree keeps
/// itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HandlerRecord {
    /// The registration, `None` while the node is not in the tree (the original marks that
    /// with a `NIL_RTGCPHYS` key).
    pub registration: Option<Registration>,
    /// The handler's type.
    pub ty: HandlerTypeHandle,
    /// User argument passed to callbacks.
    pub user: u64,
    /// Description.
    pub description: Arc<str>,
}

impl HandlerRecord {
    /// A fresh, unregistered node.
    pub fn new(ty: HandlerTypeHandle, user: u64, description: Arc<str>) -> Self {
        HandlerRecord {
            registration: None,
            ty,
            user,
            description,
        }
    }

    /// Whether the node is in the tree.
    #[inline]
    pub const fn is_registered(&self) -> bool {
        self.registration.is_some()
    }
}

/// Fixed-capacity slab of handler nodes with a free bitmap and an allocation hint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HandlerSlab {
    records: Vec<Option<HandlerRecord>>,
    generations: Vec<u32>,
    /// One bit per slot, set when free (as in the original).
    free_bitmap: Vec<u64>,
    hint: usize,
    live: u32,
}

impl HandlerSlab {
    /// A slab of `capacity` free slots.
    pub fn new(capacity: u32) -> Self {
        let n = capacity as usize;
        let mut free_bitmap = vec![0u64; n.div_ceil(64)];
        for i in 0..n {
            free_bitmap[i / 64] |= 1 << (i % 64);
        }
        HandlerSlab {
            records: vec![None; n],
            generations: vec![1; n],
            free_bitmap,
            hint: 0,
            live: 0,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> u32 {
        self.records.len() as u32
    }

    /// Number of allocated nodes.
    pub fn live(&self) -> u32 {
        self.live
    }

    /// Number of free slots, counted from the bitmap (an independent witness for `check_sync`).
    pub fn free_count(&self) -> u32 {
        self.free_bitmap.iter().map(|w| w.count_ones()).sum()
    }

    fn is_free(&self, slot: usize) -> bool {
        self.free_bitmap[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn next_free_from(&self, start: usize) -> Option<usize> {
        let n = self.records.len();
        let first = start / 64;
        // Bound: one pass over the bitmap's words from `first`, by construction (a `for` over
        // the slice).
        for (i, &bits) in self.free_bitmap.get(first..)?.iter().enumerate() {
            let word = first + i;
            let bits = if i == 0 { bits & (!0u64 << (start % 64)) } else { bits };
            if bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                return (slot < n).then_some(slot);
            }
        }
        None
    }

    /// Allocates a node: the first free slot after the hint, else the first free slot.
    pub fn allocate(&mut self, record: HandlerRecord) -> Result<HandlerId, Error> {
        let slot = self
            .next_free_from(self.hint + 1)
            .or_else(|| self.next_free_from(0))
            .ok_or(Error::OutOfResources)?;
        self.free_bitmap[slot / 64] &= !(1 << (slot % 64));
        self.records[slot] = Some(record);
        self.hint = slot;
        self.live += 1;
        Ok(HandlerId::new(slot as u32, self.generations[slot]))
    }

    /// The slot the next `allocate` takes, if any.
    pub fn peek_free_slot(&self) -> Option<u32> {
        self.next_free_from(self.hint + 1)
            .or_else(|| self.next_free_from(0))
            .map(|s| s as u32)
    }

    /// Frees a node; its id (and every copy of it) becomes invalid.
    pub fn free(&mut self, id: HandlerId) -> Result<HandlerRecord, Error> {
        self.get(id)?;
        let slot = id.slot() as usize;
        let record = self.records[slot].take();
        expect_invariant!(record.is_some(), "slot {slot} is allocated but holds no record");
        self.free_bitmap[slot / 64] |= 1 << (slot % 64);
        self.generations[slot] = self.generations[slot].wrapping_add(1).max(1);
        self.live -= 1;
        record.ok_or(Error::Internal)
    }

    /// Sets or clears the registration of an allocated slot (apply phase).
    pub fn set_registration(&mut self, slot: u32, registration: Option<Registration>) {
        let rec = self.records.get_mut(slot as usize).and_then(Option::as_mut);
        expect_invariant!(rec.is_some(), "slot {slot} holds no record to register");
        if let Some(rec) = rec {
            rec.registration = registration;
        }
    }

    /// The node behind an id, if the id is live.
    #[inline]
    pub fn get(&self, id: HandlerId) -> Result<&HandlerRecord, Error> {
        let slot = id.slot() as usize;
        if slot >= self.records.len() || self.generations[slot] != id.generation() || self.is_free(slot) {
            return Err(Error::InvalidHandle);
        }
        let rec = self.records[slot].as_ref();
        ensure!(rec.is_some(), "slot {slot} is allocated but holds no record");
        rec.ok_or(Error::Internal)
    }

    /// The node in `slot` (slots come from the tree, which only holds allocated nodes).
    #[inline]
    pub fn by_slot(&self, slot: u32) -> Option<&HandlerRecord> {
        self.records.get(slot as usize)?.as_ref()
    }

    /// Mutable node in `slot`.
    #[inline]
    pub fn by_slot_mut(&mut self, slot: u32) -> Option<&mut HandlerRecord> {
        self.records.get_mut(slot as usize)?.as_mut()
    }

    /// The current id of an allocated slot.
    pub fn id_of(&self, slot: u32) -> Option<HandlerId> {
        let s = slot as usize;
        (s < self.records.len() && !self.is_free(s) && self.records[s].is_some())
            .then(|| HandlerId::new(slot, self.generations[s]))
    }

    /// Every allocated node in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (HandlerId, &HandlerRecord)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (HandlerId::new(i as u32, self.generations[i]), r)))
    }

    /// Marks a slot free without touching its record: corruption injection for `check_sync` tests.
    #[cfg(feature = "testing")]
    pub(crate) fn corrupt_free_bit(&mut self, slot: u32) {
        let s = slot as usize;
        if s < self.records.len() {
            self.free_bitmap[s / 64] ^= 1 << (s % 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> HandlerRecord {
        HandlerRecord::new(HandlerTypeHandle(0), 0, "t".into())
    }

    #[test]
    fn exhaustion_recovery_and_stale_ids() {
        let mut s = HandlerSlab::new(32);
        let ids: Vec<_> = (0..32).map(|_| s.allocate(rec()).unwrap()).collect();
        assert_eq!(s.allocate(rec()), Err(Error::OutOfResources));
        assert_eq!(s.live() + s.free_count(), 32);
        s.free(ids[5]).unwrap();
        assert_eq!(s.free(ids[5]), Err(Error::InvalidHandle), "double free is refused");
        let again = s.allocate(rec()).unwrap();
        assert_eq!(again.slot(), ids[5].slot(), "the only free slot is reused");
        assert_ne!(again, ids[5]);
        assert_eq!(s.get(ids[5]).err(), Some(Error::InvalidHandle), "stale id is refused");
        assert!(s.get(HandlerId(u64::MAX)).is_err());
        assert_eq!(s.live() + s.free_count(), 32);
    }

    /// The bitmap's padding bits past the last slot are never handed out, even when one is
    /// set: the search stops at the slot count.
    #[test]
    fn a_padding_bit_past_the_last_slot_is_never_handed_out() {
        let mut s = HandlerSlab::new(40);
        s.free_bitmap[0] |= 1 << 40;
        assert_eq!(s.next_free_from(39), Some(39));
        assert_eq!(s.next_free_from(40), None);
        for _ in 0..40 {
            assert!(s.allocate(rec()).unwrap().slot() < 40);
        }
        assert_eq!(s.peek_free_slot(), None);
        assert_eq!(s.allocate(rec()), Err(Error::OutOfResources));
    }

    /// `peek_free_slot` names the slot the next `allocate` takes: the first free one after
    /// the hint (the last slot handed out), even when the hint's own slot is free again.
    #[test]
    fn peek_names_the_slot_the_next_allocation_takes() {
        let mut s = HandlerSlab::new(32);
        assert_eq!(
            s.peek_free_slot(),
            Some(1),
            "a fresh slab starts after its hint, slot 0"
        );
        let first = s.allocate(rec()).unwrap();
        assert_eq!(first.slot(), 1);
        s.free(first).unwrap();
        assert_eq!(s.peek_free_slot(), Some(2));
        assert_eq!(s.allocate(rec()).unwrap().slot(), 2);
    }

    /// `id_of` names allocated slots only: not a free slot, not a slot past the end.
    #[test]
    fn id_of_names_only_allocated_slots() {
        let mut s = HandlerSlab::new(64);
        let id = s.allocate(rec()).unwrap();
        assert_eq!(s.id_of(id.slot()), Some(id));
        assert_eq!(s.id_of(0), None, "free slot");
        assert_eq!(s.id_of(64), None, "one past the last slot");
        assert_eq!(s.id_of(u32::MAX), None);
    }

    /// A slot whose free bit was flipped is not allocated for `id_of`, though it still holds
    /// its record; flipping the bit back restores it; a slot past the end is ignored.
    #[cfg(feature = "testing")]
    #[test]
    fn a_flipped_free_bit_hides_the_slot_until_flipped_back() {
        let mut s = HandlerSlab::new(48);
        let id = s.allocate(rec()).unwrap();
        s.corrupt_free_bit(id.slot());
        assert_eq!(s.id_of(id.slot()), None);
        assert_eq!(s.free_count(), 48);
        s.corrupt_free_bit(id.slot());
        assert_eq!(s.id_of(id.slot()), Some(id));
        assert_eq!(s.free_count(), 47);
        // A free slot's bit flips to allocated.
        s.corrupt_free_bit(0);
        assert_eq!(s.free_count(), 46);
        // Out of range: no slot, no padding bit, no panic.
        for slot in [48, 64, u32::MAX] {
            s.corrupt_free_bit(slot);
        }
        assert_eq!(s.free_count(), 46);
        let mut full = HandlerSlab::new(64);
        full.corrupt_free_bit(64);
        assert_eq!(full.free_count(), 64);
    }
}
