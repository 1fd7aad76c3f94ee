//! The `paranoid` feature: after every operation that changed something, re-verify what it
//! touched — the whole range tree, the allocator's balance, and each touched handler's
//! registration, page states and counts — and panic at the first broken manager invariant.
//! On in the simulator and the fuzz targets; off (and free) in production builds.

use crate::addr::{page_base, PAGE_SIZE};
use crate::manager::{Manager, NO_HINT};
use crate::page::HandlerState;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Verifies the tree, the allocator and the handlers in `slots` (no-op without the
    /// `paranoid` feature).
    #[inline]
    pub(crate) fn paranoid_check(&self, slots: &[u32]) {
        if cfg!(feature = "paranoid") {
            self.verify_structure();
            for &slot in slots {
                self.verify_handler(slot);
            }
        }
    }

    /// Verifies that the pages `[first, last]` (just released by a deregistration) agree with
    /// the handlers left (no-op without the `paranoid` feature).
    #[inline]
    pub(crate) fn paranoid_check_released(&self, first: u64, last: u64) {
        if cfg!(feature = "paranoid") {
            self.verify_structure();
            // A registration spans at most 4 GiB: at most 2^20 + 1 pages.
            let pages = (last - page_base(first)) / PAGE_SIZE + 1;
            for i in 0..pages {
                self.verify_page(page_base(first) + i * PAGE_SIZE);
            }
        }
    }

    fn verify_structure(&self) {
        let faults = self.tree.verify();
        assert!(faults.is_empty(), "pgmsim paranoid: range tree broken: {faults:?}");
        let (live, free, capacity) = (self.slab.live(), self.slab.free_count(), self.slab.capacity());
        assert_eq!(
            live + free,
            capacity,
            "pgmsim paranoid: allocator live {live} + free {free} != capacity"
        );
    }

    fn verify_handler(&self, slot: u32) {
        let Some(reg) = self.slab.by_slot(slot).and_then(|r| r.registration) else {
            assert!(
                self.tree.range_of(slot).is_none(),
                "pgmsim paranoid: unregistered slot {slot} is in the tree"
            );
            return;
        };
        let registered = self.registered(slot);
        assert!(registered.is_ok(), "pgmsim paranoid: slot {slot}: {registered:?}");
        let span = self.memory.span(reg.key, reg.page_count);
        let Some(span) = span else {
            panic!("pgmsim paranoid: handler {reg:?} is not inside one RAM range");
        };
        let (aliased, off) = self.count_disabled(span);
        assert_eq!(
            (aliased + reg.unaccounted_aliases, off),
            (reg.aliased_pages, reg.temp_off_pages),
            "pgmsim paranoid: handler {:#x}: counts (aliased, temp-off) against its pages (+ unaccounted aliases)",
            reg.key
        );
        for r in span.pages() {
            let page = self.memory.addr_of(r);
            // A page the handler covers entirely is shared with no other handler (M2), so
            // registration pointed its hint here and nothing since could repoint it (M8).
            let whole = reg.key <= page && page + (PAGE_SIZE - 1) <= reg.key_last;
            assert!(
                !whole || self.hints[r.range][r.index] == slot,
                "pgmsim paranoid: page {page:#x}, wholly inside handler {:#x} (slot {slot}), hints at slot {}",
                reg.key,
                self.hints[r.range][r.index]
            );
            self.verify_page(page);
        }
    }

    /// The hint of `page`, if the page is in a RAM range.
    fn hint_of(&self, page: u64) -> Option<u32> {
        self.memory.locate(page).map(|r| self.hints[r.range][r.index])
    }

    /// One page against the handlers touching it: forward and reverse (invariants M3 and M4).
    fn verify_page(&self, page: u64) {
        let Some(d) = self.memory.page(page) else { return };
        let last = page + (PAGE_SIZE - 1);
        let mut expected = HandlerState::None;
        let mut first_flag = None;
        // M8: a set hint names one of the handlers this walk meets.
        let hint = self.hint_of(page).unwrap_or(NO_HINT);
        let mut hint_met = hint == NO_HINT;
        let mut at = self.tree.lookup_matching_or_above(page);
        // Bound: at most one handler per byte of the page, each passed once.
        for step in 0..=PAGE_SIZE {
            if step == PAGE_SIZE {
                crate::invariant::loop_bound_exceeded(format_args!(
                    "the paranoid page walk met more than {PAGE_SIZE} handlers on page {page:#x}"
                ));
            }
            let Some(slot) = at else { break };
            let Some((key, key_last)) = self.tree.range_of(slot) else {
                break;
            };
            if key > last {
                break;
            }
            let rec = self.slab.by_slot(slot);
            let Some(config) = rec.and_then(|r| self.types.get(r.ty).ok()) else {
                panic!("pgmsim paranoid: tree slot {slot} has no typed record");
            };
            hint_met |= slot == hint;
            expected = expected.max(config.kind.page_state());
            first_flag.get_or_insert(config.not_in_hm);
            at = key_last
                .checked_add(1)
                .and_then(|next| self.tree.lookup_matching_or_above(next));
        }
        assert!(
            hint_met,
            "pgmsim paranoid: page {page:#x} hints at slot {hint}, which is no handler touching it"
        );
        let actual = d.handler_state();
        match first_flag {
            None => assert!(
                actual == HandlerState::None && !d.not_in_hm(),
                "pgmsim paranoid: page {page:#x} has {d:?} but no handler"
            ),
            Some(flag) => {
                assert!(
                    actual == expected || actual == HandlerState::Disabled,
                    "pgmsim paranoid: page {page:#x} is {actual:?}, its handlers say {expected:?}"
                );
                assert_eq!(d.not_in_hm(), flag, "pgmsim paranoid: page {page:#x} not-in-HM flag");
            }
        }
    }
}
