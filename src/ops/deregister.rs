//! Deregistration and destruction, the page-state reset and the edge-page recalculation
//! (the seed's `pgmHandlerPhysicalExDeregister`, `ExDestroy`, `PGMHandlerPhysicalDeregister`,
//! `pgmHandlerPhysicalResetRamFlags`, `pgmHandlerPhysicalRecalcPageState` and
//! `pgmHandlerPhysicalDeregisterNotifyNEM`).

use crate::addr::{page_base, NIL_GC_PHYS, PAGE_OFFSET_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerKind};
use crate::manager::Manager;
use crate::page::HandlerState;
use crate::platform::Platform;

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
    /// `InvalidHandle` for a stale id; `NotFound` if the handler is not registered;
    /// `Internal` if the tree does not hold it where its key says.
    pub fn deregister_ex(&mut self, id: HandlerId) -> OpResult {
        let rec = self.slab.get(id)?;
        if !rec.is_registered() {
            return Err(Error::NotFound);
        }
        if self.tree.lookup(rec.key) != Some(id.slot()) {
            return Err(Error::Internal);
        }
        self.unregister_slot(id.slot());
        Ok(Status::Success)
    }

    /// Frees an unregistered handler (`pgmHandlerPhysicalExDestroy`).
    ///
    /// # Errors
    /// `InvalidHandle` for a stale id (so a double destroy is refused); `WrongOrder` while
    /// the handler is still registered.
    pub fn destroy(&mut self, id: HandlerId) -> OpResult {
        if self.slab.get(id)?.is_registered() {
            return Err(Error::WrongOrder);
        }
        self.slab.free(id)?;
        Ok(Status::Success)
    }

    /// Deregisters and frees the handler starting at `addr` (`PGMHandlerPhysicalDeregister`).
    ///
    /// # Errors
    /// `NotFound` when no handler starts exactly at `addr` (the seed removes whichever
    /// handler contains it in release builds: deliberate difference 1).
    pub fn deregister(&mut self, addr: u64) -> OpResult {
        let slot = self.handler_at_start(addr)?;
        let id = self.slab.id_of(slot).ok_or(Error::Internal)?;
        self.unregister_slot(slot);
        self.slab.free(id)?;
        Ok(Status::Success)
    }

    /// Removes a registered slot from the tree and resets its pages.
    fn unregister_slot(&mut self, slot: u32) {
        let Some(rec) = self.slab.by_slot(slot) else { return };
        let (key, last) = (rec.key, rec.key_last);
        let kind = self.kind_of(rec).0;
        if let Ok((r, count)) = self.page_span(key, rec.page_count) {
            self.set_hints(r, count, slot, true);
        }
        self.tree.remove(slot);
        self.reset_page_states(slot);
        if self.config.nem.notifies() {
            self.nem_notify_deregistered(kind, key, last);
        }
        if let Some(rec) = self.slab.by_slot_mut(slot) {
            rec.key = NIL_GC_PHYS;
            rec.key_last = NIL_GC_PHYS;
            rec.page_count = 0;
        }
    }

    /// Resets every page of a just-removed handler to `None` and recomputes the edge pages
    /// (`pgmHandlerPhysicalResetRamFlags`).
    fn reset_page_states(&mut self, slot: u32) {
        let Some(rec) = self.slab.by_slot(slot) else { return };
        let (key, last) = (rec.key, rec.key_last);
        let Ok((first, count)) = self.page_span(key, rec.page_count) else {
            return;
        };
        for i in 0..count {
            let r = Self::nth(first, i);
            let mut nem_told = false;
            if self.memory.at(r).page_type().is_alias() {
                self.reset_alias(r, true);
                if let Some(rec) = self.slab.by_slot_mut(slot) {
                    rec.aliased_pages = rec.aliased_pages.saturating_sub(1);
                }
                nem_told = true;
            }
            self.memory.at_mut(r).set_handler_state(HandlerState::None, false);
            if !nem_told {
                self.nem_protection_changed(r);
            }
        }
        if let Some(rec) = self.slab.by_slot_mut(slot) {
            rec.aliased_pages = 0;
            rec.temp_off_pages = 0;
        }
        if key & PAGE_OFFSET_MASK != 0 {
            self.recalc_edge_page(key - 1, false);
        }
        if last & PAGE_OFFSET_MASK != PAGE_OFFSET_MASK {
            self.recalc_edge_page(last + 1, true);
        }
    }

    /// Raises a partial edge page to the maximum state of the handlers still on it, walking
    /// neighbours downwards (`above == false`) or upwards from `addr`
    /// (`pgmHandlerPhysicalRecalcPageState`). Flushes TLBs exactly when the platform asks
    /// (the seed reads an uninitialised flag here: deliberate difference 4).
    fn recalc_edge_page(&mut self, mut addr: u64, above: bool) {
        let page = addr >> PAGE_SHIFT;
        let mut state = HandlerState::None;
        loop {
            let found = if above {
                self.tree.lookup_matching_or_above(addr)
            } else {
                self.tree.lookup_matching_or_below(addr)
            };
            let Some(slot) = found else { break };
            let Some((key, last)) = self.tree.range_of(slot) else {
                break;
            };
            if (if above { key } else { last }) >> PAGE_SHIFT != page {
                break;
            }
            state = state.max(self.state_of_slot(slot));
            let next = if above {
                last.wrapping_add(1)
            } else {
                key.wrapping_sub(1)
            };
            if next >> PAGE_SHIFT != page {
                break;
            }
            addr = next;
        }
        if state == HandlerState::None {
            return;
        }
        let Some(r) = self.memory.locate(addr) else { return };
        if self.memory.at(r).handler_state() >= state {
            return;
        }
        self.memory.at_mut(r).set_handler_state_only(state);
        let copy = *self.memory.at(r);
        let update = self.platform.update_shadow_ptes(page_base(addr), &copy, false);
        if update.flush_tlbs {
            self.platform.flush_all_tlbs();
        }
        self.nem_protection_changed(r);
    }

    /// Tells NEM which whole pages a deregistered handler released: edge pages still used by
    /// another handler are left out (`pgmHandlerPhysicalDeregisterNotifyNEM`).
    fn nem_notify_deregistered(&mut self, kind: HandlerKind, key: u64, last: u64) {
        let mut start = key;
        let mut end = last;
        if key & PAGE_OFFSET_MASK != 0 || last.wrapping_add(1) & PAGE_OFFSET_MASK != 0 {
            if start & PAGE_OFFSET_MASK != 0 {
                if self
                    .memory
                    .page(start)
                    .is_some_and(|p| p.handler_state() != HandlerState::None)
                {
                    let next = page_base(start).wrapping_add(PAGE_SIZE);
                    if next > end || next < start {
                        return;
                    }
                    start = next;
                } else {
                    start = page_base(start);
                }
            }
            // The seed tests `last & mask` here (not `!= mask`); kept for NEM fidelity.
            if end & PAGE_OFFSET_MASK != 0 {
                if self
                    .memory
                    .page(end)
                    .is_some_and(|p| p.handler_state() != HandlerState::None)
                {
                    let prev = page_base(end).wrapping_sub(1);
                    if prev < start || prev > end {
                        return;
                    }
                    end = prev;
                } else {
                    end |= PAGE_OFFSET_MASK;
                }
            }
        }
        let len = end - start + 1;
        if let Some(nem) = self.platform.nem_handler_deregistered(kind, start, len) {
            let Some(first) = self.memory.locate(start) else { return };
            for i in 0..(len >> PAGE_SHIFT) as u32 {
                let r = Self::nth(first, i);
                if r.index < self.memory.ranges()[r.range].pages.len() {
                    self.memory.at_mut(r).set_nem_state(nem);
                }
            }
        }
    }
}
