//! The production handler manager: its state and invariants, construction, accessors and the
//! shared internal helpers the operation families in [`crate::ops`] build on.

use crate::addr::{Gpa, Hpa};
use crate::api::{ManagerConfig, PhysHandlerApi, SetupError};
use crate::error::{Error, OpResult};
use crate::handler::{
    HandlerId, HandlerInfo, HandlerKind, HandlerRecord, HandlerSlab, HandlerTypeConfig, HandlerTypeHandle, NodeInfo,
    RangeTree, Registration, TypeTable,
};
use crate::invariant::ensure;
use crate::layout::{MemoryLayout, Mmio2Handle};
use crate::memory::{GuestMemory, PageRef, PageSpan};
use crate::page::{HandlerState, PageDescriptor};
use crate::platform::{NoopPlatform, Platform};

/// The physical access handler manager (the original's PGM physical handler state plus its
/// RAM ranges), generic over the platform that receives its side effects.
///
/// # Invariants
///
/// Every operation preserves these (`check_sync` reports any that broke; the `paranoid`
/// feature re-verifies the ones an operation touched after it, see `crate::paranoid`).
/// `docs/semantics.md` §6.1 names them M1 to M8, in this order:
///
/// 1. **Tree ⇔ registration.** A node is in the range tree exactly when its record has a
///    [`Registration`], under the same `[key, key_last]`; the tree is an AVL tree of
///    byte-disjoint ranges ordered by key.
/// 2. **Ranges.** A registered range lies inside one RAM range, spans at most 4 GiB, and
///    `page_count` is the number of pages it touches. All, Mmio and not-in-HM Write handlers
///    cover whole pages, so only plain Write handlers ever share a page.
/// 3. **Page states (forward).** Every page a handler touches has the maximum state of the
///    handlers touching it, or `Disabled`; its not-in-HM flag is its handler's type flag.
/// 4. **Page states (reverse).** Every page no handler touches has state `None` and no
///    not-in-HM flag.
/// 5. **Disabled pages.** A `Disabled` page belongs to exactly one whole-page handler and is
///    either temporarily off (Write / All handlers) or aliased (Mmio handlers, where every
///    alias lies); `temp_off_pages` and `aliased_pages` count them, except that
///    `aliased_pages` also keeps the aliases undone by `reset_aliased_page` without
///    accounting (`unaccounted_aliases`) until `reset` or deregistration zeroes both.
/// 6. **Allocator.** Live + free nodes = capacity; a slot's free bit is clear exactly when
///    it holds a record; ids carry the slot's generation, so freed ids stay invalid.
/// 7. **Types.** Types are never freed, so every node's type handle resolves.
/// 8. **Hints.** A page's lookup hint, when set, names a registered handler touching the
///    page, and every page a handler covers entirely hints at it. Lookups still trust a hint
///    only after the tree confirms that slot contains the address (the tree stays the
///    authority), so a stale hint costs a tree descent, never a wrong answer; the `paranoid`
///    feature checks the hints anyway, since a hint that is never set is a silent slowdown.
#[derive(Debug, Clone)]
pub struct Manager<P: Platform = NoopPlatform> {
    pub(crate) config: ManagerConfig,
    pub(crate) layout: MemoryLayout,
    pub(crate) memory: GuestMemory,
    pub(crate) types: TypeTable,
    pub(crate) slab: HandlerSlab,
    pub(crate) tree: RangeTree,
    /// Per RAM range, per page: the slot of a handler touching the page, or `NO_HINT`. Only a
    /// hint (invariant M8), so lookups of the common case cost one probe instead of an AVL
    /// descent. Not part of the state digest.
    pub(crate) hints: Vec<Vec<u32>>,
    pub(crate) platform: P,
}

/// "No handler hinted for this page".
pub(crate) const NO_HINT: u32 = u32::MAX;

impl Manager<NoopPlatform> {
    /// A manager over `layout` with the default configuration and no platform.
    pub fn with_layout(layout: MemoryLayout) -> Result<Self, SetupError> {
        Manager::new(layout, ManagerConfig::default(), NoopPlatform)
    }
}

impl<P: Platform> Manager<P> {
    /// Builds a manager; a [`SetupError`] names what is wrong with the layout or capacity.
    pub fn new(layout: MemoryLayout, config: ManagerConfig, platform: P) -> Result<Self, SetupError> {
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

    /// Sets a page's NEM state bits (platform-owned; the NEM backend may change them).
    ///
    /// # Errors
    /// `InvalidParameter` when `addr` is in no RAM range.
    pub fn set_nem_state(&mut self, addr: u64, nem_state: u8) -> Result<(), Error> {
        let r = self.memory.locate(addr).ok_or(Error::InvalidParameter)?;
        self.memory.at_mut(r).set_nem_state(nem_state);
        Ok(())
    }

    /// Handler capacity.
    pub fn capacity(&self) -> u32 {
        self.slab.capacity()
    }

    /// Kind and not-in-HM flag of a node's type (invariant M7).
    #[inline]
    pub(crate) fn kind_of(&self, rec: &HandlerRecord) -> Result<(HandlerKind, bool), Error> {
        let config = self.types.get(rec.ty);
        ensure!(config.is_ok(), "node type {:?} does not resolve", rec.ty);
        Ok(config.map_or((HandlerKind::All, false), |c| (c.kind, c.not_in_hm)))
    }

    /// The registered node in `slot` (a slot taken from the tree: invariant M1).
    #[inline]
    pub(crate) fn registered(&self, slot: u32) -> Result<(&HandlerRecord, Registration), Error> {
        let rec = self.slab.by_slot(slot);
        ensure!(rec.is_some(), "tree slot {slot} holds no record");
        let rec = rec.ok_or(Error::Internal)?;
        ensure!(rec.registration.is_some(), "tree slot {slot} is not registered");
        let reg = rec.registration.ok_or(Error::Internal)?;
        ensure!(
            self.tree.range_of(slot) == Some((reg.key, reg.key_last)),
            "slot {slot}: tree range {:?} differs from the registration {reg:?}",
            self.tree.range_of(slot)
        );
        Ok((rec, reg))
    }

    /// The registration of `slot`, mutably (apply phase: validation proved it exists).
    pub(crate) fn registration_mut(&mut self, slot: u32) -> &mut Registration {
        let reg = self.slab.by_slot_mut(slot).and_then(|r| r.registration.as_mut());
        match reg {
            Some(reg) => reg,
            None => panic!("pgmsim: internal invariant broken: slot {slot} lost its registration while applying"),
        }
    }

    /// Slot of the registered handler whose range *starts* at `addr` (`NotFound` otherwise,
    /// including an address only inside a handler: deliberate difference D1).
    pub(crate) fn handler_at_start(&self, addr: u64) -> Result<u32, Error> {
        let slot = self.find_slot(addr).ok_or(Error::NotFound)?;
        let (_, reg) = self.registered(slot)?;
        if reg.key != addr {
            return Err(Error::NotFound);
        }
        Ok(slot)
    }

    /// Slot of the registered handler containing `addr`: the page's hint when the tree
    /// confirms it, else a tree lookup.
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

    /// Points the hints of a span's pages at `slot`.
    pub(crate) fn set_hints(&mut self, span: PageSpan, slot: u32) {
        for h in self.hint_slice(span) {
            *h = slot;
        }
    }

    /// Clears the hints of a span's pages that point at `slot` (which is being removed).
    pub(crate) fn clear_hints(&mut self, span: PageSpan, slot: u32) {
        for h in self.hint_slice(span) {
            if *h == slot {
                *h = NO_HINT;
            }
        }
    }

    fn hint_slice(&mut self, span: PageSpan) -> &mut [u32] {
        let hints = &mut self.hints[span.first.range];
        &mut hints[span.first.index..span.first.index + span.count as usize]
    }

    /// The pages a registration touches: one RAM range, consecutive pages (invariant M2).
    pub(crate) fn span_of(&self, reg: &Registration) -> Result<PageSpan, Error> {
        let span = self.memory.span(reg.key, reg.page_count);
        ensure!(span.is_some(), "registration {reg:?} is not inside one RAM range");
        span.ok_or(Error::Internal)
    }

    pub(crate) fn info_of(&self, rec: &HandlerRecord, reg: Registration) -> Result<HandlerInfo, Error> {
        Ok(HandlerInfo {
            key: reg.key,
            key_last: reg.key_last,
            page_count: reg.page_count,
            aliased_pages: reg.aliased_pages,
            temp_off_pages: reg.temp_off_pages,
            ty: rec.ty,
            kind: self.kind_of(rec)?.0,
            user: rec.user,
            description: rec.description.clone(),
        })
    }

    pub(crate) fn node_info(&self, rec: &HandlerRecord) -> Result<NodeInfo, Error> {
        Ok(NodeInfo {
            ty: rec.ty,
            kind: self.kind_of(rec)?.0,
            user: rec.user,
            description: rec.description.clone(),
            registered: match rec.registration {
                Some(reg) => Some(self.info_of(rec, reg)?),
                None => None,
            },
        })
    }

    /// The page state a slot's handler raises its pages to.
    pub(crate) fn state_of_slot(&self, slot: u32) -> Result<HandlerState, Error> {
        let (rec, _) = self.registered(slot)?;
        Ok(self.kind_of(rec)?.0.page_state())
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
            .nem_page_protection_changed(Gpa(addr), &page, page.nem_protection());
        self.memory.at_mut(r).set_nem_state(nem);
    }

    /// Tells NEM a page's backing changed and stores the NEM state it returns.
    pub(crate) fn nem_backing_changed(&mut self, r: PageRef, old: Hpa) {
        if !self.config.nem.notifies() {
            return;
        }
        let addr = self.memory.addr_of(r);
        let page = *self.memory.at(r);
        let nem = self
            .platform
            .nem_page_backing_changed(Gpa(addr), old, &page, page.nem_protection());
        self.memory.at_mut(r).set_nem_state(nem);
    }

    /// Asks the platform to update the shadow PTEs of a page whose descriptor just changed.
    pub(crate) fn update_ptes(&mut self, r: PageRef, flush_ptes: bool) -> crate::platform::ShadowUpdate {
        let page = *self.memory.at(r);
        self.platform
            .update_shadow_ptes(Gpa(self.memory.addr_of(r)), &page, flush_ptes)
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
    fn page_temp_off_ex(&mut self, id: HandlerId, page: u64) -> OpResult {
        Manager::page_temp_off_ex(self, id, page)
    }
    fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        Manager::page_alias_mmio2(self, addr, page, region, offset)
    }
    fn page_alias_hc(&mut self, addr: u64, page: u64, host: Hpa) -> OpResult {
        Manager::page_alias_hc(self, addr, page, host)
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
    fn handler_info(&self, id: HandlerId) -> Result<NodeInfo, Error> {
        Manager::handler_info(self, id)
    }
    fn handlers(&self) -> Vec<HandlerInfo> {
        Manager::handlers(self)
    }
    fn live_handlers(&self) -> u32 {
        self.slab.live()
    }
    fn page(&self, addr: u64) -> Option<PageDescriptor> {
        Manager::page(self, addr)
    }
    fn layout(&self) -> &MemoryLayout {
        &self.layout
    }
    fn type_config(&self, ty: HandlerTypeHandle) -> Result<HandlerTypeConfig, Error> {
        self.types.get(ty).cloned()
    }
}
