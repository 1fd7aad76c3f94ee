//! The production handler manager: state, construction, accessors and the shared internal
//! helpers the operation families in [`crate::ops`] build on.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::addr::PAGE_SHIFT;
use crate::api::{ManagerConfig, PhysHandlerApi};
use crate::error::{Error, OpResult};
use crate::handler::{
    HandlerId, HandlerInfo, HandlerKind, HandlerRecord, HandlerSlab, HandlerTypeConfig, HandlerTypeHandle, RangeTree,
    TypeTable,
};
use crate::layout::{MemoryLayout, Mmio2Handle};
use crate::memory::{GuestMemory, PageRef};
use crate::page::{HandlerState, PageDescriptor};
use crate::platform::{NoopPlatform, Platform};

/// The physical access handler manager (the seed's PGM physical handler state plus its RAM
/// ranges), generic over the platform that receives its side effects.
#[derive(Debug, Clone)]
pub struct Manager<P: Platform = NoopPlatform> {
    pub(crate) config: ManagerConfig,
    pub(crate) layout: MemoryLayout,
    pub(crate) memory: GuestMemory,
    pub(crate) types: TypeTable,
    pub(crate) slab: HandlerSlab,
    pub(crate) tree: RangeTree,
    /// Per RAM range, per page: the slot of a handler touching the page, or `NO_HINT`. Only a
    /// hint (validated against the tree, which stays the authority), so lookups of the common
    /// case cost one probe instead of an AVL descent. Not part of the state digest.
    pub(crate) hints: Vec<Vec<u32>>,
    pub(crate) platform: P,
}

/// "No handler hinted for this page".
pub(crate) const NO_HINT: u32 = u32::MAX;

impl Manager<NoopPlatform> {
    /// A manager over `layout` with the default configuration and no platform.
    pub fn with_layout(layout: MemoryLayout) -> Result<Self, Error> {
        Manager::new(layout, ManagerConfig::default(), NoopPlatform)
    }
}

impl<P: Platform> Manager<P> {
    /// Builds a manager; `InvalidParameter` for a bad layout or handler capacity.
    pub fn new(layout: MemoryLayout, config: ManagerConfig, platform: P) -> Result<Self, Error> {
        layout.validate()?;
        let capacity = config.capacity()?;
        Ok(Manager {
            hints: layout
                .ram_ranges
                .iter()
                .map(|r| vec![NO_HINT; r.pages as usize])
                .collect(),
            memory: GuestMemory::new(&layout),
            types: TypeTable::new(config.type_salt),
            slab: HandlerSlab::new(capacity),
            tree: RangeTree::new(capacity),
            config,
            layout,
            platform,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The guest memory (read-only).
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// Memory and platform at once: a platform that must read page descriptors while it
    /// updates its own state (an MMU resolving a fault) borrows both through this.
    pub fn memory_and_platform(&mut self) -> (&GuestMemory, &mut P) {
        (&self.memory, &mut self.platform)
    }

    /// Sets a page's NEM state bits (platform-owned; the NEM backend may change them).
    pub fn set_nem_state(&mut self, addr: u64, nem_state: u8) -> Result<(), Error> {
        let r = self.memory.locate(addr).ok_or(Error::InvalidParameter)?;
        self.memory.at_mut(r).set_nem_state(nem_state);
        Ok(())
    }

    /// Handler capacity.
    pub fn capacity(&self) -> u32 {
        self.slab.capacity()
    }

    /// A digest of the whole manager state (descriptors, handler nodes, tree, types), used to
    /// prove that a failed operation changed nothing.
    pub fn state_digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.memory.hash(&mut h);
        self.slab.hash(&mut h);
        self.tree.hash(&mut h);
        self.types.hash(&mut h);
        h.finish()
    }

    /// Type of a registered node. Registered nodes always carry a valid type; the fallback
    /// (`All`, like the seed's dummy type) only matters for corrupted state.
    #[inline]
    pub(crate) fn kind_of(&self, rec: &HandlerRecord) -> (HandlerKind, bool) {
        match self.types.get(rec.ty) {
            Ok(c) => (c.kind, c.not_in_hm),
            Err(_) => (HandlerKind::All, false),
        }
    }

    #[inline]
    pub(crate) fn state_of_slot(&self, slot: u32) -> HandlerState {
        self.slab
            .by_slot(slot)
            .map_or(HandlerState::All, |r| self.kind_of(r).0.page_state())
    }

    /// Slot of the registered handler whose range *starts* at `addr` (`NotFound` otherwise,
    /// including an address only inside a handler: deliberate difference 1).
    pub(crate) fn handler_at_start(&self, addr: u64) -> Result<u32, Error> {
        let slot = self.find_slot(addr).ok_or(Error::NotFound)?;
        match self.slab.by_slot(slot) {
            Some(r) if r.key == addr => Ok(slot),
            Some(_) => Err(Error::NotFound),
            None => Err(Error::Internal),
        }
    }

    /// Slot of the registered handler containing `addr`: the page's hint when it holds, else
    /// the tree.
    #[inline]
    pub(crate) fn find_slot(&self, addr: u64) -> Option<u32> {
        if let Some(r) = self.memory.locate(addr) {
            let hint = self.hints[r.range][r.index];
            if hint != NO_HINT {
                if let Some((key, last)) = self.tree.range_of(hint) {
                    if key <= addr && addr <= last {
                        return Some(hint);
                    }
                }
            }
        }
        self.tree.lookup(addr)
    }

    /// Points the hints of `count` pages from `first` at `slot`, or clears those that point
    /// at `slot` when `slot` is being removed.
    pub(crate) fn set_hints(&mut self, first: PageRef, count: u32, slot: u32, remove: bool) {
        let Some(hints) = self.hints.get_mut(first.range) else {
            return;
        };
        let end = (first.index + count as usize).min(hints.len());
        for h in &mut hints[first.index.min(end)..end] {
            if !remove {
                *h = slot;
            } else if *h == slot {
                *h = NO_HINT;
            }
        }
    }

    pub(crate) fn record(&self, slot: u32) -> Result<&HandlerRecord, Error> {
        self.slab.by_slot(slot).ok_or(Error::Internal)
    }

    pub(crate) fn record_mut(&mut self, slot: u32) -> Result<&mut HandlerRecord, Error> {
        self.slab.by_slot_mut(slot).ok_or(Error::Internal)
    }

    pub(crate) fn info_of(&self, rec: &HandlerRecord) -> HandlerInfo {
        HandlerInfo {
            key: rec.key,
            key_last: rec.key_last,
            page_count: rec.page_count,
            aliased_pages: rec.aliased_pages,
            temp_off_pages: rec.temp_off_pages,
            ty: rec.ty,
            kind: self.kind_of(rec).0,
            user: rec.user,
            description: rec.description.clone(),
        }
    }

    /// Locations of the pages a registered range touches: one RAM range, consecutive pages.
    pub(crate) fn page_span(&self, key: u64, page_count: u32) -> Result<(PageRef, u32), Error> {
        let first = self.memory.locate(key).ok_or(Error::Internal)?;
        let range = &self.memory.ranges()[first.range];
        if first.index + page_count as usize > range.pages.len() {
            return Err(Error::Internal);
        }
        Ok((first, page_count))
    }

    pub(crate) fn nth(first: PageRef, i: u32) -> PageRef {
        PageRef {
            range: first.range,
            index: first.index + i as usize,
        }
    }

    /// Tells NEM a page's protection changed and stores the NEM state it returns.
    pub(crate) fn nem_protection_changed(&mut self, r: PageRef) {
        if !self.config.nem.notifies() {
            return;
        }
        let addr = self.memory.addr_of(r);
        let page = *self.memory.at(r);
        let nem = self
            .platform
            .nem_page_protection_changed(addr, &page, page.nem_protection());
        self.memory.at_mut(r).set_nem_state(nem);
    }

    /// Tells NEM a page's backing changed and stores the NEM state it returns.
    pub(crate) fn nem_backing_changed(&mut self, r: PageRef, old_host_phys: u64) {
        if !self.config.nem.notifies() {
            return;
        }
        let addr = self.memory.addr_of(r);
        let page = *self.memory.at(r);
        let nem = self
            .platform
            .nem_page_backing_changed(addr, old_host_phys, &page, page.nem_protection());
        self.memory.at_mut(r).set_nem_state(nem);
    }

    pub(crate) fn page_addr(&self, r: PageRef) -> u64 {
        self.memory.addr_of(r) & !((1u64 << PAGE_SHIFT) - 1)
    }
}

impl<P: Platform> PhysHandlerApi for Manager<P> {
    fn register_type(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        Manager::register_type(self, config)
    }
    fn create(&mut self, ty: HandlerTypeHandle, user: u64, description: Option<&str>) -> Result<HandlerId, Error> {
        Manager::create(self, ty, user, description)
    }
    fn dup(&mut self, source: HandlerId) -> Result<HandlerId, Error> {
        Manager::dup(self, source)
    }
    fn register_ex(&mut self, id: HandlerId, first: u64, last: u64) -> OpResult {
        Manager::register_ex(self, id, first, last)
    }
    fn register(
        &mut self,
        first: u64,
        last: u64,
        ty: HandlerTypeHandle,
        user: u64,
        description: Option<&str>,
    ) -> OpResult {
        Manager::register(self, first, last, ty, user, description)
    }
    fn deregister_ex(&mut self, id: HandlerId) -> OpResult {
        Manager::deregister_ex(self, id)
    }
    fn destroy(&mut self, id: HandlerId) -> OpResult {
        Manager::destroy(self, id)
    }
    fn deregister(&mut self, addr: u64) -> OpResult {
        Manager::deregister(self, addr)
    }
    fn change_user_arg(&mut self, addr: u64, user: u64) -> OpResult {
        Manager::change_user_arg(self, addr, user)
    }
    fn reset(&mut self, addr: u64) -> OpResult {
        Manager::reset(self, addr)
    }
    fn reset_mmio2_with_bitmap(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult {
        Manager::reset_mmio2_with_bitmap(self, addr, bitmap, offset)
    }
    fn page_temp_off(&mut self, addr: u64, page: u64) -> OpResult {
        Manager::page_temp_off(self, addr, page)
    }
    fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        Manager::page_alias_mmio2(self, addr, page, region, offset)
    }
    fn page_alias_hc(&mut self, addr: u64, page: u64, host_phys: u64) -> OpResult {
        Manager::page_alias_hc(self, addr, page, host_phys)
    }
    fn reset_aliased_page(&mut self, page: u64, accounting: bool) -> OpResult {
        Manager::reset_aliased_page(self, page, accounting)
    }
    fn vm_reset(&mut self) -> OpResult {
        Manager::vm_reset(self)
    }
    fn is_registered(&self, addr: u64) -> bool {
        Manager::is_registered(self, addr)
    }
    fn is_all(&self, addr: u64) -> Result<bool, Error> {
        Manager::is_all(self, addr)
    }
    fn lookup(&self, addr: u64) -> Option<HandlerInfo> {
        Manager::lookup(self, addr)
    }
    fn handler_info(&self, id: HandlerId) -> Result<HandlerInfo, Error> {
        Manager::handler_info(self, id)
    }
    fn handlers(&self) -> Vec<HandlerInfo> {
        Manager::handlers(self)
    }
    fn live_handlers(&self) -> u32 {
        self.slab.live()
    }
    fn page(&self, addr: u64) -> Option<PageDescriptor> {
        self.memory.page(addr).copied()
    }
    fn layout(&self) -> &MemoryLayout {
        &self.layout
    }
    fn type_config(&self, ty: HandlerTypeHandle) -> Result<HandlerTypeConfig, Error> {
        self.types.get(ty).cloned()
    }
}
