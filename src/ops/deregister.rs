//! Deregistration and destruction, the page-state reset and the edge-page recalculation
//! (the original's `pgmHandlerPhysicalExDeregister`, `ExDestroy`,
//! `PGMHandlerPhysicalDeregister`, `pgmHandlerPhysicalResetRamFlags`,
//! `pgmHandlerPhysicalRecalcPageState` and `pgmHandlerPhysicalDeregisterNotifyNEM`).

use crate::addr::{page_base, Gpa, PAGE_OFFSET_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerKind, Registration};
use crate::invariant::{ensure, ensure_bound, expect_invariant};
use crate::manager::Manager;
use crate::memory::PageSpan;
use crate::page::HandlerState;
use crate::platform::Platform;

/// Everything a deregistration needs, gathered (and checked) before anything changes.
struct Unregister {
    slot: u32,
    kind: HandlerKind,
    reg: Registration,
    span: PageSpan,
    /// State the partial first page gets back from the handlers below it on that page.
    below: HandlerState,
    /// State the partial last page gets back from the handlers above it on that page.
    above: HandlerState,
}

/// Most handlers one page can hold (one-byte handlers): the bound of every walk over the
/// neighbours sharing a page.
const MAX_HANDLERS_PER_PAGE: u64 = PAGE_SIZE;

impl<P: Platform> Manager<P> {
    /// Deregisters a handler and keeps its node for a later `register_ex`
    /// (`pgmHandlerPhysicalExDeregister`).
    ///
    /// Every page of the handler goes back to `None` (aliased pages first become plain MMIO
    /// pages again), then the partial first and last pages are recomputed from the handlers
    /// still sharing them. Shadow PTEs are not touched: a stale, more restrictive PTE only
    /// costs one extra fault.
    ///
    /// # Errors
    /// `InvalidHandle` for a stale id; `NotFound` if the handler is not registered.
    pub fn deregister_ex(&mut self, id: HandlerId) -> OpResult {
        self.platform.pgm_lock();
        let r = self.deregister_ex_locked(id);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::deregister_ex`] with the PGM lock held.
    fn deregister_ex_locked(&mut self, id: HandlerId) -> OpResult {
        if !self.slab.get(id)?.is_registered() {
            return Err(Error::NotFound);
        }
        let plan = self.plan_unregister(id.slot())?;
        self.unregister(plan);
        Ok(Status::Success)
    }

    /// Frees an unregistered handler (`pgmHandlerPhysicalExDestroy`).
    ///
    /// # Errors
    /// `InvalidHandle` for a stale id (so a double destroy is refused); `WrongOrder` while
    /// the handler is still registered.
    pub fn destroy(&mut self, id: HandlerId) -> OpResult {
        self.platform.pgm_lock();
        let r = self.destroy_locked(id);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::destroy`] with the PGM lock held.
    fn destroy_locked(&mut self, id: HandlerId) -> OpResult {
        if self.slab.get(id)?.is_registered() {
            return Err(Error::WrongOrder);
        }
        self.slab.free(id)?;
        Ok(Status::Success)
    }

    /// Deregisters and frees the handler starting at `addr` (`PGMHandlerPhysicalDeregister`).
    ///
    /// # Errors
    /// `NotFound` when no handler starts exactly at `addr` (the original removes whichever
    /// handler contains it in release builds: deliberate difference D1).
    pub fn deregister(&mut self, addr: u64) -> OpResult {
        self.platform.pgm_lock();
        let r = self.deregister_locked(addr);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::deregister`] with the PGM lock held.
    fn deregister_locked(&mut self, addr: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let id = self.slab.id_of(slot);
        ensure!(id.is_some(), "registered slot {slot} is not allocated");
        let id = id.ok_or(Error::Internal)?;
        let plan = self.plan_unregister(slot)?;
        self.unregister(plan);
        let freed = self.slab.free(id);
        expect_invariant!(freed.is_ok(), "freeing the deregistered {id:?} failed: {freed:?}");
        Ok(Status::Success)
    }

    /// Validation phase of a deregistration.
    fn plan_unregister(&self, slot: u32) -> Result<Unregister, Error> {
        let (rec, reg) = self.registered(slot)?;
        ensure!(
            self.tree.lookup(reg.key) == Some(slot),
            "the tree does not find slot {slot} at {:#x}",
            reg.key
        );
        let kind = self.kind_of(rec)?.0;
        let span = self.span_of(&reg)?;
        let below = match reg.key & PAGE_OFFSET_MASK {
            0 => HandlerState::None,
            _ => self.edge_state(reg.key - 1, false)?,
        };
        let above = match reg.key_last & PAGE_OFFSET_MASK {
            PAGE_OFFSET_MASK => HandlerState::None,
            _ => self.edge_state(reg.key_last + 1, true)?,
        };
        Ok(Unregister {
            slot,
            kind,
            reg,
            span,
            below,
            above,
        })
    }

    /// The maximum state of the handlers on the page of `addr`, walking neighbours downwards
    /// (`above == false`) or upwards from `addr` (`pgmHandlerPhysicalRecalcPageState`).
    fn edge_state(&self, mut addr: u64, above: bool) -> Result<HandlerState, Error> {
        let page = addr >> PAGE_SHIFT;
        let mut state = HandlerState::None;
        // Bound: every handler met covers at least one byte of the page and the walk moves
        // past it, so at most one handler per byte (a walk that does not advance passes it).
        for step in 0..=MAX_HANDLERS_PER_PAGE {
            ensure_bound!(
                step < MAX_HANDLERS_PER_PAGE,
                "the edge walk met more than {MAX_HANDLERS_PER_PAGE} handlers on page {page:#x}"
            );
            let found = if above {
                self.tree.lookup_matching_or_above(addr)
            } else {
                self.tree.lookup_matching_or_below(addr)
            };
            let Some(slot) = found else { break };
            let (_, reg) = self.registered(slot)?;
            if (if above { reg.key } else { reg.key_last }) >> PAGE_SHIFT != page {
                break;
            }
            state = state.max(self.state_of_slot(slot)?);
            let next = if above {
                reg.key_last.wrapping_add(1)
            } else {
                reg.key.wrapping_sub(1)
            };
            if next >> PAGE_SHIFT != page {
                break;
            }
            addr = next;
        }
        Ok(state)
    }

    /// Apply phase of a deregistration: unlink, reset every page to `None` (undoing
    /// aliases), recompute the partial edge pages, tell NEM, drop the registration.
    fn unregister(&mut self, plan: Unregister) {
        let Unregister {
            slot,
            kind,
            reg,
            span,
            below,
            above,
        } = plan;
        self.clear_hints(span, slot);
        let removed = self.tree.remove(slot);
        expect_invariant!(removed, "validated slot {slot} was not in the tree");
        let last_page = span.count - 1;
        for (i, r) in span.pages().enumerate() {
            let aliased = self.memory.at(r).page_type().is_alias();
            if aliased {
                self.reset_alias(r, true);
            }
            self.memory.at_mut(r).set_handler_state(HandlerState::None, false);
            // A partial edge page a neighbour still covers is raised again below; NEM hears
            // only its final protection, never a transient writable one that would let a
            // vCPU write past the neighbour's handler meanwhile (deliberate difference D15).
            let kept =
                (i == 0 && below != HandlerState::None) || (i as u32 == last_page && above != HandlerState::None);
            if !aliased && !kept {
                self.nem_protection_changed(r);
            }
        }
        // A shared edge page is the page of the first (last) byte itself.
        if below != HandlerState::None {
            self.raise_edge_page(reg.key, below);
        }
        if above != HandlerState::None {
            self.raise_edge_page(reg.key_last, above);
        }
        if self.config.nem.notifies() {
            self.nem_notify_deregistered(kind, reg.key, reg.key_last);
        }
        self.slab.set_registration(slot, None);
        self.paranoid_check_released(reg.key, reg.key_last);
    }

    /// Raises the page of `addr` to `state` if it is lower; flushes TLBs exactly when the
    /// platform asks (the original reads an uninitialised flag here: deliberate difference D4).
    fn raise_edge_page(&mut self, addr: u64, state: HandlerState) {
        let Some(r) = self.memory.locate(addr) else {
            expect_invariant!(false, "edge page {addr:#x} of a registered handler is in no RAM range");
            return;
        };
        if self.memory.at(r).handler_state() >= state {
            return;
        }
        self.memory.at_mut(r).set_handler_state_only(state);
        if self.update_ptes(r, false).flush_tlbs {
            self.platform.flush_all_tlbs();
        }
        self.nem_protection_changed(r);
    }

    /// Tells NEM which whole pages a deregistered handler released: edge pages still used by
    /// another handler are left out (`pgmHandlerPhysicalDeregisterNotifyNEM`).
    fn nem_notify_deregistered(&mut self, kind: HandlerKind, key: u64, last: u64) {
        let Some((start, end)) = self.released_pages(key, last) else {
            return;
        };
        let len = end - start + 1;
        let Some(nem) = self.platform.nem_handler_deregistered(kind, Gpa(start), len) else {
            return;
        };
        if let Some(span) = self.memory.span(start, (len >> PAGE_SHIFT) as u32) {
            for r in span.pages() {
                self.memory.at_mut(r).set_nem_state(nem);
            }
        }
    }

    /// The bytes `[start, end]` NEM hears were released: a partial first or last page is
    /// dropped while another handler still touches it and widened to the whole page when none
    /// does. `None` when nothing is left.
    fn released_pages(&self, key: u64, last: u64) -> Option<(u64, u64)> {
        let in_use = |addr: u64| {
            self.memory
                .page(addr)
                .is_some_and(|p| p.handler_state() != HandlerState::None)
        };
        let start = if key & PAGE_OFFSET_MASK == 0 || !in_use(key) {
            page_base(key)
        } else {
            page_base(key).checked_add(PAGE_SIZE)?
        };
        // The original tests the offset of the last byte, not of the byte after it: a handler
        // whose last byte is a page's first byte keeps that byte as the end. Kept for NEM
        // fidelity (a whole-page handler's last byte is never at offset 0).
        let end = if last & PAGE_OFFSET_MASK == 0 {
            last
        } else if in_use(last) {
            page_base(last).checked_sub(1)?
        } else {
            page_base(last) + PAGE_OFFSET_MASK
        };
        (start <= end).then_some((start, end))
    }
}
