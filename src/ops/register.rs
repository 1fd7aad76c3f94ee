//! Handler types, create / dup, registration and the page-state upgrade
//! (the original's `pgmHandlerPhysicalExCreate`, `ExDup`, `ExRegister`,
//! `PGMHandlerPhysicalRegister` and `pgmHandlerPhysicalSetRamFlagsAndFlushShadowPTs`).

use std::sync::Arc;

use crate::addr::{is_whole_pages, pages_touched, Gpa, MAX_HANDLER_SPAN};
use crate::error::{Error, OpResult, Status};
use crate::handler::{HandlerId, HandlerKind, HandlerRecord, HandlerTypeConfig, HandlerTypeHandle, Registration};
use crate::invariant::{ensure, expect_invariant};
use crate::manager::Manager;
use crate::memory::PageSpan;
use crate::platform::Platform;

impl<P: Platform> Manager<P> {
    /// Registers a handler type (`PGMR3HandlerPhysicalTypeRegister`).
    ///
    /// # Errors
    /// `OutOfResources` past 32 types (types are never freed).
    pub fn register_type(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        self.platform.pgm_lock();
        let r = self.register_type_locked(config);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::register_type`] with the PGM lock held.
    fn register_type_locked(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        self.types.register(config)
    }

    /// Creates an unregistered handler (`pgmHandlerPhysicalExCreate`). Without a description
    /// the handler takes its type's.
    ///
    /// # Errors
    /// `InvalidHandle` for an unknown type; `OutOfResources` when the allocator is full.
    pub fn create(&mut self, ty: HandlerTypeHandle, user: u64, description: Option<&str>) -> Result<HandlerId, Error> {
        self.platform.pgm_lock();
        let r = self.create_locked(ty, user, description);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::create`] with the PGM lock held.
    fn create_locked(
        &mut self,
        ty: HandlerTypeHandle,
        user: u64,
        description: Option<&str>,
    ) -> Result<HandlerId, Error> {
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
        self.platform.pgm_lock();
        let r = self.dup_locked(source);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::dup`] with the PGM lock held.
    fn dup_locked(&mut self, source: HandlerId) -> Result<HandlerId, Error> {
        let src = self.slab.get(source)?;
        let (ty, user, description) = (src.ty, src.user, src.description.clone());
        self.kind_of(src)?;
        self.slab.allocate(HandlerRecord::new(ty, user, description))
    }

    /// Checks a range for a handler of `config` in the original's order: `first <= last`
    /// (the original wants `<`: deliberate difference D3), span at most 4 GiB (D1), whole
    /// pages for All / Mmio / not-in-HM Write, one RAM range, no overlap. Returns the pages.
    fn validate_range(&self, config: &HandlerTypeConfig, first: u64, last: u64) -> Result<PageSpan, Error> {
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
        let span = self.memory.span(first, pages_touched(first, last));
        ensure!(
            span.is_some(),
            "[{first:#x}, {last:#x}] is in one RAM range but its pages are not"
        );
        span.ok_or(Error::Internal)
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
        self.platform.pgm_lock();
        let r = self.register_ex_locked(id, first, last);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::register_ex`] with the PGM lock held.
    fn register_ex_locked(&mut self, id: HandlerId, first: u64, last: u64) -> OpResult {
        let rec = self.slab.get(id)?;
        let config = self.types.get(rec.ty)?;
        if rec.is_registered() {
            return Err(Error::WrongOrder);
        }
        let span = self.validate_range(config, first, last)?;
        let arm = Arming::of(config);
        ensure!(
            self.tree.range_of(id.slot()).is_none(),
            "unregistered slot {} is linked",
            id.slot()
        );
        Ok(self.commit_registration(id.slot(), first, last, span, arm))
    }

    /// Creates and registers a handler (`PGMHandlerPhysicalRegister`).
    ///
    /// Unlike the original (create, then destroy on failure), everything is validated before
    /// the node is allocated, so a failure leaves even the allocator's hint untouched
    /// (deliberate difference D5).
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
        self.platform.pgm_lock();
        let r = self.register_locked(first, last, ty, user, description);
        self.platform.pgm_unlock();
        r
    }

    /// [`Manager::register`] with the PGM lock held.
    fn register_locked(
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
        let span = self.validate_range(config, first, last)?;
        let arm = Arming::of(config);
        let free = self.slab.peek_free_slot();
        ensure!(
            free.is_some_and(|s| self.tree.range_of(s).is_none()),
            "free slot {free:?} is linked"
        );
        let id = self.create_locked(ty, user, description)?;
        Ok(self.commit_registration(id.slot(), first, last, span, arm))
    }

    /// Links a validated range into the tree and raises its pages (apply phase).
    fn commit_registration(&mut self, slot: u32, first: u64, last: u64, span: PageSpan, arm: Arming) -> Status {
        let linked = self.tree.insert(slot, first, last);
        expect_invariant!(
            linked.is_ok(),
            "validated insert of [{first:#x}, {last:#x}] failed: {linked:?}"
        );
        self.slab
            .set_registration(slot, Some(Registration::new(first, last, span.count)));
        self.set_hints(span, slot);
        let resync = self.raise_pages(span, arm, None);
        if self.config.nem.notifies() {
            self.platform
                .nem_handler_registered(arm.kind, Gpa(first), last - first + 1);
        }
        self.paranoid_check(&[slot]);
        if resync {
            Status::GcPhysAliased
        } else {
            Status::Success
        }
    }

    /// Raises the pages of a registered handler to its kind's state, only upgrading
    /// (`pgmHandlerPhysicalSetRamFlagsAndFlushShadowPTs`). For each raised page: full state
    /// setter (state + not-in-HM), shadow PTE update, NEM protection, and bit
    /// `offset + page index` in `bitmap`. Flushes all TLBs once if the platform asked.
    /// Returns whether the platform fell back to a full resync. Apply phase: cannot fail.
    pub(crate) fn raise_pages(&mut self, span: PageSpan, arm: Arming, mut bitmap: Option<(&mut [u64], u32)>) -> bool {
        let (state, not_in_hm) = (arm.kind.page_state(), arm.not_in_hm);
        let mut flush = false;
        let mut resync = false;
        for (i, r) in span.pages().enumerate() {
            let page = self.memory.at_mut(r);
            if page.handler_state() >= state {
                continue;
            }
            page.set_handler_state(state, not_in_hm);
            let update = self.update_ptes(r, false);
            flush |= update.flush_tlbs;
            resync |= update.resync;
            self.nem_protection_changed(r);
            if let Some((bits, offset)) = bitmap.as_mut() {
                let bit = *offset as usize + i;
                bits[bit / 64] |= 1 << (bit % 64);
            }
        }
        if flush {
            self.platform.flush_all_tlbs();
        }
        resync
    }
}

/// What a handler raises its pages to: its type's kind and not-in-HM flag, looked up while
/// validating so the apply phase needs no lookups that could fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arming {
    /// The type's kind.
    pub kind: HandlerKind,
    /// The type's not-in-HM flag.
    pub not_in_hm: bool,
}

impl Arming {
    /// The arming of a type.
    pub fn of(config: &HandlerTypeConfig) -> Self {
        Arming {
            kind: config.kind,
            not_in_hm: config.not_in_hm,
        }
    }
}
