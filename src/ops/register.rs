//! Handler types, create / dup, registration and the page-state upgrade
//! (the seed's `pgmHandlerPhysicalExCreate`, `ExDup`, `ExRegister`, `PGMHandlerPhysicalRegister`
//! and `pgmHandlerPhysicalSetRamFlagsAndFlushShadowPTs`).

use std::sync::Arc;

use crate::addr::{is_whole_pages, pages_touched, MAX_HANDLER_SPAN};
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerRecord, HandlerTypeConfig, HandlerTypeHandle};
use crate::manager::Manager;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Registers a handler type (`PGMR3HandlerPhysicalTypeRegister`).
    ///
    /// # Errors
    /// `OutOfResources` past 32 types (types are never freed).
    pub fn register_type(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        self.types.register(config)
    }

    /// Creates an unregistered handler (`pgmHandlerPhysicalExCreate`). Without a description
    /// the handler takes its type's.
    ///
    /// # Errors
    /// `InvalidHandle` for an unknown type; `OutOfResources` when the allocator is full.
    pub fn create(&mut self, ty: HandlerTypeHandle, user: u64, description: Option<&str>) -> Result<HandlerId, Error> {
        let config = self.types.get(ty)?;
        let description: Arc<str> = description.map_or_else(|| config.description.clone(), Arc::from);
        self.slab.allocate(HandlerRecord::new(ty, user, description))
    }

    /// Creates a handler with the type, user argument and description of `source`
    /// (`pgmHandlerPhysicalExDup`).
    ///
    /// # Errors
    /// `InvalidHandle` for a stale or unknown `source`; `OutOfResources`.
    pub fn dup(&mut self, source: HandlerId) -> Result<HandlerId, Error> {
        let src = self.slab.get(source)?;
        let (ty, user, description) = (src.ty, src.user, src.description.clone());
        self.types.get(ty)?;
        self.slab.allocate(HandlerRecord::new(ty, user, description))
    }

    /// Checks a range for a handler of `config` in the seed's order: `first <= last`
    /// (the seed wants `<`: deliberate difference 3), span at most 4 GiB (deliberate
    /// difference 1), whole pages for All / Mmio / not-in-HM Write, then one RAM range.
    fn validate_range(&self, config: &HandlerTypeConfig, first: u64, last: u64) -> Result<(), Error> {
        if first > last || last - first >= MAX_HANDLER_SPAN {
            return Err(Error::InvalidParameter);
        }
        if config.kind.needs_whole_pages(config.not_in_hm) && !is_whole_pages(first, last) {
            return Err(Error::InvalidParameter);
        }
        let range = self.memory.range_index(first).ok_or(Error::NoRamRange)?;
        if last > self.memory.ranges()[range].last {
            return Err(Error::NoRamRange);
        }
        if self.tree.overlaps(first, last) {
            return Err(Error::Conflict);
        }
        Ok(())
    }

    /// Registers an existing handler over `[first, last]` (`pgmHandlerPhysicalExRegister`).
    ///
    /// Raises every touched page to the kind's state, only upgrading; asks the platform to
    /// update the shadow PTEs of each raised page and flushes all TLBs once if any was mapped;
    /// then tells NEM. A platform fallback to a full resync gives [`Status::GcPhysAliased`].
    ///
    /// # Errors
    /// In order: `InvalidHandle`, `WrongOrder` (already registered), `InvalidParameter`
    /// (`first > last`, span over 4 GiB, misaligned whole-page kind), `NoRamRange`, `Conflict`.
    pub fn register_ex(&mut self, id: HandlerId, first: u64, last: u64) -> OpResult {
        let rec = self.slab.get(id)?;
        let config = self.types.get(rec.ty)?;
        if rec.is_registered() {
            return Err(Error::WrongOrder);
        }
        self.validate_range(config, first, last)?;
        Ok(self.commit_registration(id.slot(), first, last))
    }

    /// Creates and registers a handler (`PGMHandlerPhysicalRegister`).
    ///
    /// Unlike the seed (create, then destroy on failure), everything is validated before the
    /// node is allocated, so a failure leaves even the allocator's hint untouched.
    ///
    /// # Errors
    /// `InvalidHandle`, `OutOfResources`, then as [`Manager::register_ex`].
    pub fn register(
        &mut self,
        first: u64,
        last: u64,
        ty: HandlerTypeHandle,
        user: u64,
        description: Option<&str>,
    ) -> OpResult {
        let config = self.types.get(ty)?;
        if self.slab.live() >= self.slab.capacity() {
            return Err(Error::OutOfResources);
        }
        self.validate_range(config, first, last)?;
        let id = self.create(ty, user, description)?;
        Ok(self.commit_registration(id.slot(), first, last))
    }

    /// Links a validated range into the tree and raises its pages. Cannot fail: validation
    /// already proved the insert succeeds.
    fn commit_registration(&mut self, slot: u32, first: u64, last: u64) -> Status {
        if self.tree.insert(slot, first, last).is_err() {
            debug_assert!(false, "validated insert failed");
            return Status::Success;
        }
        if let Some(rec) = self.slab.by_slot_mut(slot) {
            rec.key = first;
            rec.key_last = last;
            rec.page_count = pages_touched(first, last);
        }
        if let Ok((r, count)) = self.page_span(first, pages_touched(first, last)) {
            self.set_hints(r, count, slot, false);
        }
        let resync = self.set_page_states(slot, None);
        if self.config.nem.notifies() {
            let kind = self.state_kind(slot);
            self.platform.nem_handler_registered(kind, first, last - first + 1);
        }
        if resync {
            Status::GcPhysAliased
        } else {
            Status::Success
        }
    }

    fn state_kind(&self, slot: u32) -> crate::handler::HandlerKind {
        self.slab
            .by_slot(slot)
            .map_or(crate::handler::HandlerKind::All, |r| self.kind_of(r).0)
    }

    /// Raises the pages of a registered handler to its kind's state, only upgrading
    /// (`pgmHandlerPhysicalSetRamFlagsAndFlushShadowPTs`). For each raised page: full state
    /// setter (state + not-in-HM), shadow PTE update, NEM protection, and bit
    /// `offset + page index` in `bitmap`. Flushes all TLBs once if the platform asked.
    /// Returns whether the platform fell back to a full resync.
    pub(crate) fn set_page_states(&mut self, slot: u32, mut bitmap: Option<(&mut [u64], u32)>) -> bool {
        let Some(rec) = self.slab.by_slot(slot) else {
            return false;
        };
        let (kind, not_in_hm) = self.kind_of(rec);
        let state = kind.page_state();
        let Ok((first, count)) = self.page_span(rec.key, rec.page_count) else {
            return false;
        };
        let mut flush = false;
        let mut resync = false;
        for i in 0..count {
            let r = Self::nth(first, i);
            let page = self.memory.at_mut(r);
            if page.handler_state() >= state {
                continue;
            }
            page.set_handler_state(state, not_in_hm);
            let copy = *page;
            let addr = self.memory.addr_of(r);
            let update = self.platform.update_shadow_ptes(addr, &copy, false);
            flush |= update.flush_tlbs;
            resync |= update.resync;
            self.nem_protection_changed(r);
            if let Some((bits, offset)) = bitmap.as_mut() {
                let bit = *offset as usize + i as usize;
                bits[bit / 64] |= 1 << (bit % 64);
            }
        }
        if flush {
            self.platform.flush_all_tlbs();
        }
        resync
    }
}
