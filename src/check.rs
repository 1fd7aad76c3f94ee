//! `check_sync`: the original's `PGMAssertHandlerAndFlagsInSync`, plus the reverse check the
//! original left as a todo, per-handler accounting, tree structure and allocator balance
//! (manager invariants M1-M6, reported instead of asserted; semantics §3.27 and §6.2).
//!
//! The page walk merges the sorted handler list with the sorted pages, so a full check is
//! one pass over the descriptors; stretches of pages with no handler are scanned as plain
//! slices so the common case costs well under a nanosecond a page.

use crate::addr::{pages_touched, PAGE_SHIFT, PAGE_SIZE};
use crate::handler::{HandlerKind, TreeFault};
use crate::invariant::loop_bound_exceeded;
use crate::manager::Manager;
use crate::page::HandlerState;
use crate::platform::Platform;

/// One way the manager's state disagrees with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mismatch {
    /// Forward: a page's handler state is neither the maximum of its handlers' states nor `Disabled`.
    PageState {
        /// Guest page.
        page: u64,
        /// Maximum state of the handlers touching the page.
        expected: HandlerState,
        /// State in the descriptor.
        actual: HandlerState,
    },
    /// Forward: the not-in-HM flag differs from the first handler's type.
    NotInHm {
        /// Guest page.
        page: u64,
        /// The type's flag.
        expected: bool,
    },
    /// Forward / reverse: a page with handler state or not-in-HM flag but no handler touching it.
    StrayState {
        /// Guest page.
        page: u64,
        /// State in the descriptor.
        actual: HandlerState,
    },
    /// Reverse: a page a handler touches has state `None`.
    MissingState {
        /// Guest page.
        page: u64,
        /// Start of a handler touching it.
        handler: u64,
    },
    /// A handler's aliased-page count differs from the aliased pages in its range.
    AliasedCount {
        /// Handler start.
        handler: u64,
        /// Count kept by the handler.
        kept: u32,
        /// Aliased pages found.
        found: u32,
    },
    /// A handler's temp-off count differs from the `Disabled` non-alias pages in its range.
    TempOffCount {
        /// Handler start.
        handler: u64,
        /// Count kept by the handler.
        kept: u32,
        /// Disabled pages found.
        found: u32,
    },
    /// A handler's page count is not the number of pages its range touches.
    PageCount {
        /// Handler start.
        handler: u64,
    },
    /// A handler's node disagrees with the tree about its range, or lies outside one RAM range.
    HandlerRange {
        /// Handler start (as the node says).
        handler: u64,
    },
    /// An aliased page is not `Disabled`, or an alias lies outside an Mmio handler.
    Alias {
        /// Guest page.
        page: u64,
    },
    /// The tree is malformed.
    Tree(TreeFault),
    /// Allocated + free nodes do not add up to the capacity.
    Allocator {
        /// Allocated nodes.
        live: u32,
        /// Free nodes.
        free: u32,
        /// Capacity.
        capacity: u32,
    },
}

/// A registered handler flattened for the walk.
struct Span {
    key: u64,
    last: u64,
    state: HandlerState,
    not_in_hm: bool,
    mmio: bool,
}

impl<P: Platform> Manager<P> {
    /// Every inconsistency in the manager's state; empty when all is in sync.
    pub fn check_sync(&self) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for fault in self.tree.verify() {
            out.push(Mismatch::Tree(fault));
        }
        let (live, free, capacity) = (self.slab.live(), self.slab.free_count(), self.slab.capacity());
        if live + free != capacity || self.slab.iter().count() as u32 != live {
            out.push(Mismatch::Allocator { live, free, capacity });
        }
        let spans = self.checked_spans(&mut out);
        self.check_pages(&spans, &mut out);
        self.check_accounting(&mut out);
        out
    }

    fn checked_spans(&self, out: &mut Vec<Mismatch>) -> Vec<Span> {
        let mut spans = Vec::with_capacity(self.tree.len() as usize);
        for slot in self.tree.iter() {
            let Some(rec) = self.slab.by_slot(slot) else {
                out.push(Mismatch::Tree(TreeFault::Count));
                continue;
            };
            let Some((key, last)) = self.tree.range_of(slot) else {
                continue;
            };
            let in_one_range = self
                .memory
                .range_index(key)
                .is_some_and(|r| last <= self.memory.ranges()[r].last);
            let reg = match rec.registration {
                Some(reg) if reg.key == key && reg.key_last == last && in_one_range && key <= last => reg,
                _ => {
                    out.push(Mismatch::HandlerRange {
                        handler: rec.registration.map_or(key, |r| r.key),
                    });
                    continue;
                }
            };
            if reg.page_count != pages_touched(key, last) {
                out.push(Mismatch::PageCount { handler: key });
            }
            let (kind, not_in_hm) = self
                .types
                .get(rec.ty)
                .map_or((HandlerKind::All, false), |c| (c.kind, c.not_in_hm));
            spans.push(Span {
                key,
                last,
                state: kind.page_state(),
                not_in_hm,
                mmio: kind == HandlerKind::Mmio,
            });
        }
        spans
    }

    /// Forward and reverse page checks, merging pages and handlers in address order.
    fn check_pages(&self, spans: &[Span], out: &mut Vec<Mismatch>) {
        let mut h = 0usize;
        for range in self.memory.ranges() {
            let mut i = 0usize;
            let n = range.pages.len();
            // Bound: every pass advances `i` by at least one page (a stretch without handlers
            // jumps past it), so at most `n` passes; `h` and `j` only move forward over `spans`.
            let mut passes = 0usize;
            while i < n {
                passes += 1;
                if passes > n {
                    loop_bound_exceeded(format_args!(
                        "the page scan passed {n} pages of range {:#x}",
                        range.first
                    ));
                    break;
                }
                let page = range.first + ((i as u64) << PAGE_SHIFT);
                while h < spans.len() && spans[h].last < page {
                    h += 1;
                }
                let next_key = spans.get(h).map_or(u64::MAX, |s| s.key);
                if next_key > page + (PAGE_SIZE - 1) {
                    // No handler until `next_key`: scan the stretch as a slice.
                    let stop = if next_key > range.last {
                        n
                    } else {
                        (((next_key - range.first) >> PAGE_SHIFT) as usize).min(n)
                    };
                    for (j, p) in range.pages[i..stop].iter().enumerate() {
                        if p.raw_word() & 0b111 != 0 {
                            out.push(Mismatch::StrayState {
                                page: range.first + (((i + j) as u64) << PAGE_SHIFT),
                                actual: p.handler_state(),
                            });
                        }
                    }
                    i = stop;
                    continue;
                }
                let p = &range.pages[i];
                let page_last = page + (PAGE_SIZE - 1);
                let mut expected = HandlerState::None;
                let mut mmio_here = false;
                let mut j = h;
                while j < spans.len() && spans[j].key <= page_last {
                    expected = expected.max(spans[j].state);
                    mmio_here |= spans[j].mmio;
                    j += 1;
                }
                let actual = p.handler_state();
                if actual == HandlerState::None {
                    out.push(Mismatch::MissingState {
                        page,
                        handler: spans[h].key,
                    });
                } else if actual != expected && actual != HandlerState::Disabled {
                    out.push(Mismatch::PageState { page, expected, actual });
                }
                if p.not_in_hm() != spans[h].not_in_hm {
                    out.push(Mismatch::NotInHm {
                        page,
                        expected: spans[h].not_in_hm,
                    });
                }
                if p.page_type().is_alias() && (!mmio_here || actual != HandlerState::Disabled) {
                    out.push(Mismatch::Alias { page });
                }
                i += 1;
            }
        }
    }

    /// Per-handler aliased and temp-off counts against the pages in each range.
    fn check_accounting(&self, out: &mut Vec<Mismatch>) {
        for slot in self.tree.iter() {
            let Some(reg) = self.slab.by_slot(slot).and_then(|r| r.registration) else {
                continue;
            };
            let Some(span) = self.memory.span(reg.key, reg.page_count) else {
                continue;
            };
            let (aliased, off) = self.count_disabled(span);
            if aliased != reg.aliased_pages {
                out.push(Mismatch::AliasedCount {
                    handler: reg.key,
                    kept: reg.aliased_pages,
                    found: aliased,
                });
            }
            if off != reg.temp_off_pages {
                out.push(Mismatch::TempOffCount {
                    handler: reg.key,
                    kept: reg.temp_off_pages,
                    found: off,
                });
            }
        }
    }

    /// Aliased pages and other `Disabled` (temp-off) pages of a span.
    pub(crate) fn count_disabled(&self, span: crate::memory::PageSpan) -> (u32, u32) {
        let (mut aliased, mut off) = (0u32, 0u32);
        for r in span.pages() {
            let p = self.memory.at(r);
            if p.page_type().is_alias() {
                aliased += 1;
            } else if p.handler_state() == HandlerState::Disabled {
                off += 1;
            }
        }
        (aliased, off)
    }
}
