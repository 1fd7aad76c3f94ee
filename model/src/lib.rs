//! # pgmsim-model: the reference model of the handler manager
//!
//! [`Model`] implements [`pgmsim::PhysHandlerApi`] with the semantics of the production
//! [`pgmsim::Manager`] (and so of the original, VirtualBox's `PGMAllHandler.cpp`, as
//! `docs/semantics.md` states them), written to be read and
//! believed rather than to be fast. It is the oracle of the differential tests: when the two
//! disagree, one of them is wrong, and this one is short enough to check by hand.
//!
//! ```
//! use pgmsim::{HandlerKind, HandlerState, HandlerTypeConfig, ManagerConfig, MemoryLayout};
//! use pgmsim::{PhysHandlerApi, Status};
//! use pgmsim_model::Model;
//!
//! let layout = MemoryLayout::builder().ram(0, 4).build().unwrap();
//! let mut m = Model::new(layout, ManagerConfig::default()).unwrap();
//! let w = m.register_type(HandlerTypeConfig::new(HandlerKind::Write, "w")).unwrap();
//! assert_eq!(m.register(0x1000, 0x17ff, w, 0, None), Ok(Status::Success));
//! assert_eq!(m.register(0x1800, 0x1fff, w, 0, None), Ok(Status::Success));
//! assert_eq!(m.deregister(0x1000), Ok(Status::Success));
//! // The neighbour still on the shared page keeps it armed.
//! assert_eq!(m.page(0x1000).unwrap().handler_state(), HandlerState::Write);
//! ```
//!
//! ## Shape
//!
//! * Handler nodes live in a `BTreeMap` keyed by their [`HandlerId`], which is the node's
//!   creation number (`next_id`, the one number the model keeps about history besides the
//!   stale alias counts below). Ids are never reused and a destroyed node is removed, so a
//!   destroyed id is simply unknown (`InvalidHandle`) forever, and the model only ever walks
//!   live nodes.
//! * Registered handlers live in a `BTreeMap` keyed by their first byte: the primary (and
//!   only) record of which node covers which range, not an index over something else.
//!   Validation refuses overlaps, so the map is a sorted list of disjoint ranges, and "the
//!   handlers overlapping `[first, last]`" are found by walking it backwards from the last
//!   key `<= last` while ranges still reach `first`. A node's own registration is found by
//!   looking through the registered handlers (only the id-based calls need that).
//! * Only *primary facts* are stored: which pages are temporarily off, which pages are aliased
//!   and to what, and one per-handler number explained below. Everything else is **derived
//!   from scratch** each time it is asked for: a page descriptor starts from the page's
//!   initial descriptor (derived here from the layout), the alias fact (if any) replaces its
//!   backing, and its
//!   handler state is `Disabled` if the page is temp-off or aliased, else the maximum state of
//!   the handlers touching it. A handler's temp-off and aliased counts are counted from the
//!   facts over its own range. Nothing can drift because nothing is kept twice, and what a
//!   call costs is proportional to the pages and handlers it concerns, not to the history.
//!
//! ## Why derivation reproduces the original, and where it does not by itself
//!
//! The original keeps page states incrementally ("only upgrade" on registration, reset to `None`
//! then recalculation of partial edge pages on deregistration, `_ONLY` setters that keep the
//! not-in-HM bit). That history collapses to the derived rule because of three structural
//! facts, each enforced by validation:
//!
//! 1. Only plain `Write` handlers may cover part of a page (All, Mmio and not-in-HM Write must
//!    be whole pages), so a page shared by several handlers only ever has `Write` handlers,
//!    all without not-in-HM. After deregistering one of them the original resets the page to
//!    `None` and recomputes it from the neighbours below and above, which is exactly the
//!    maximum over the remaining handlers; the not-in-HM bit ends `false` either way.
//! 2. Temp-off and aliasing need whole-page handlers, so a `Disabled` page belongs to exactly
//!    one handler; no registration can touch it (that would overlap), and re-arming by
//!    `reset` / `reset_mmio2_with_bitmap` raises precisely the temp-off pages. So "temp-off"
//!    is a set of pages that `reset` clears, and the not-in-HM bit of a disabled page is its
//!    one handler's.
//! 3. Aliases only exist on MMIO-range pages inside Mmio handlers; every way back (reset,
//!    deregistration, `reset_aliased_page`, VM reset, re-aliasing) gives the page its initial
//!    MMIO descriptor and, while the handler is registered, state `All` = the derived maximum.
//!    The `Internal` error of `reset_aliased_page` (an aliased page not `Disabled`) is kept
//!    as the production code states it but cannot fire here.
//!
//! The one genuinely historical fact is the **stale alias count**:
//! `reset_aliased_page(page, accounting = false)` undoes an alias without decrementing the
//! handler's count (the original leaves that to its caller). The model keeps, per registered
//! handler, how many such resets happened (`Registration::stale_aliases`); the reported
//! `aliased_pages` is "aliases counted in the range + stale", and
//! [`Model::expected_sync_mismatches`] names the `AliasedCount` mismatch the production
//! `check_sync` must then report. The number is cleared exactly where the original zeroes the
//! count (`reset`, and deregistration, which drops the registration with it); VM reset and
//! re-aliasing change the count by the same amount as the aliases, so they keep it.
//!
//! ## Platform events
//!
//! The model records the events that are part of the observable contract, as
//! [`PlatformEvent`]s: `UpdateShadowPtes` (registration and re-arm upgrades, edge-page
//! recalculation, alias resets with `flush_ptes`), the unconditional `FlushAllTlbs` of alias
//! resets, `InvalidatePageMapEntry` and `FlushEmulatorPhysTlbs`. Whether an upgrade loop ends
//! with `FlushAllTlbs` depends on what the platform answers; the model is told once, with
//! [`Model::set_all_pages_mapped`], whether every page is mapped (as
//! `RecordingPlatform::mapped()` pretends), and then emits that flush exactly where the
//! production manager would. The model never asks for a resync, so it never returns
//! `GcPhysAliased` / `SyncCr3`, and it records no NEM notifications and keeps no NEM state
//! bits (descriptors have NEM state 0: compare with `without_nem_state()`); NEM mode only
//! matters to it for `NotSupportedInNemMode`.
//!
//! ## What it deliberately does not do
//!
//! No balanced tree of its own, no slab, no derived counters, no caches, no hint-driven
//! allocation (ids differ from the production ones; tests map them), and **no production logic**: it uses `pgmsim`'s plain
//! data types (addresses, kinds, errors, the descriptor's field accessors, the layout as
//! data) and the API trait, nothing else. Layout validation, capacity rounding, the initial
//! descriptors, the page state of each kind and the type handles are all derived here, in
//! the simplest words that state them ([`rules`]), so a bug in the production helpers is a
//! disagreement, not a shared blind spot. Type handles are the model's own values; tests
//! compare them by registration index, never by value.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod rules;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use pgmsim::api::NemMode;
use pgmsim::{
    Error, Gpa, HandlerId, HandlerInfo, HandlerKind, HandlerSpan, HandlerState, HandlerTypeConfig, HandlerTypeHandle,
    Hpa, ManagerConfig, MemoryLayout, Mismatch, Mmio2Handle, NodeInfo, OpResult, PageDescriptor, PageState, PageType,
    PhysHandlerApi, PlatformEvent, SetupError, Status,
};

use rules::{initial_descriptor, state_of_kind, MAX_HOST_ADDRESS, NO_PAGE_ID};

const PAGE: u64 = 0x1000;
const OFFSET_MASK: u64 = PAGE - 1;
const MAX_TYPES: usize = 32;

fn page_of(addr: u64) -> u64 {
    addr & !OFFSET_MASK
}

fn whole_pages(first: u64, last: u64) -> bool {
    first & OFFSET_MASK == 0 && last & OFFSET_MASK == OFFSET_MASK
}

/// Page bases of every page the inclusive range `[first, last]` touches.
fn pages(first: u64, last: u64) -> impl Iterator<Item = u64> {
    (page_of(first) >> 12..=last >> 12).map(|n| n << 12)
}

/// A handler node (registered or not): what `create` / `dup` made.
#[derive(Debug, Clone)]
struct Node {
    ty: HandlerTypeHandle,
    user: u64,
    description: Arc<str>,
}

/// A registered handler, stored under its first byte: node `node` covers `[key, last]`.
#[derive(Debug, Clone)]
struct Registration {
    last: u64,
    node: u64,
    /// Aliases undone by `reset_aliased_page` without accounting since the count was last
    /// zeroed: the only history the model keeps about pages (see the crate docs).
    stale_aliases: u32,
}

/// What backs an aliased MMIO page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alias {
    /// `page_alias_mmio2`: the MMIO2 page's backing and page id.
    Mmio2 { host_phys: Hpa, page_id: u32 },
    /// `page_alias_hc`: an arbitrary host page, no page id.
    Host { host_phys: Hpa },
}

/// The reference model. See the crate docs for what it stores and what it derives.
#[derive(Debug, Clone)]
pub struct Model {
    config: ManagerConfig,
    capacity: u32,
    layout: MemoryLayout,
    types: Vec<(HandlerTypeHandle, HandlerTypeConfig)>,
    /// Live handler nodes by id (destroyed ones are removed).
    nodes: BTreeMap<u64, Node>,
    /// The id the next node gets: ids are handed out in creation order and never reused.
    next_id: u64,
    /// Registered handlers by first byte; disjoint, because validation refuses overlaps.
    registered: BTreeMap<u64, Registration>,
    /// Page bases turned off by `page_temp_off` and not re-armed since.
    temp_off: BTreeSet<u64>,
    /// Page bases currently aliased, with their backing.
    aliases: BTreeMap<u64, Alias>,
    events: Vec<PlatformEvent>,
    all_pages_mapped: bool,
}

impl Model {
    /// A model over `layout`; a [`SetupError`] for a bad layout or capacity, as the
    /// production constructor (derived by [`rules`], not by the production code).
    pub fn new(layout: MemoryLayout, config: ManagerConfig) -> Result<Self, SetupError> {
        rules::validate_layout(&layout).map_err(SetupError::Layout)?;
        let capacity = rules::capacity(config.max_handlers)?;
        Ok(Model {
            config,
            capacity,
            layout,
            types: Vec::new(),
            nodes: BTreeMap::new(),
            next_id: 0,
            registered: BTreeMap::new(),
            temp_off: BTreeSet::new(),
            aliases: BTreeMap::new(),
            events: Vec::new(),
            all_pages_mapped: false,
        })
    }

    /// Tells the model whether the platform reports every page as mapped, so that every
    /// upgrade loop that updated a shadow PTE ends with `FlushAllTlbs` (true for
    /// `RecordingPlatform::mapped()`, false for a platform that maps nothing).
    pub fn set_all_pages_mapped(&mut self, mapped: bool) {
        self.all_pages_mapped = mapped;
    }

    /// The platform events recorded since the last call.
    pub fn take_events(&mut self) -> Vec<PlatformEvent> {
        std::mem::take(&mut self.events)
    }

    /// Handler capacity.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The id of the registered handler containing `addr`.
    pub fn handler_id_at(&self, addr: u64) -> Option<HandlerId> {
        let key = self.containing(addr)?;
        Some(HandlerId(self.registered[&key].node))
    }

    /// The registered handlers in address order, as `handlers()` lists them, one at a time
    /// (for a caller comparing them without a list).
    pub fn handler_iter(&self) -> impl Iterator<Item = HandlerInfo> + '_ {
        self.registered.iter().filter_map(|(&key, r)| self.info(key, r))
    }

    /// Every registered handler's range, kind and not-in-HM flag in address order (what
    /// `handlers()` lists, without copying descriptions).
    pub fn handler_spans(&self) -> Vec<HandlerSpan> {
        self.registered.iter().map(|(&key, r)| self.span(key, r)).collect()
    }

    /// The registered handlers with at least one byte in the page at `page`, highest first
    /// (what [`handler_spans`](Self::handler_spans) lists, for one page).
    pub fn spans_touching(&self, page: u64) -> impl Iterator<Item = HandlerSpan> + '_ {
        self.touching(page_of(page)).map(|(key, r)| self.span(key, r))
    }

    /// The handler registered at `key` (with registration `r`) as a span.
    fn span(&self, key: u64, r: &Registration) -> HandlerSpan {
        let (kind, not_in_hm) = self.kind_of_registration(r);
        HandlerSpan {
            key,
            key_last: r.last,
            kind,
            not_in_hm,
        }
    }

    /// Whether the aliased-page count of the handler registered at `key` is stale (what
    /// [`expected_sync_mismatches`](Self::expected_sync_mismatches) reports for it).
    pub fn aliased_count_is_stale(&self, key: u64) -> bool {
        self.registered.get(&key).is_some_and(|r| r.stale_aliases != 0)
    }

    /// What the production `check_sync` must report: one `AliasedCount` per handler whose
    /// count is stale after `reset_aliased_page` without accounting, in address order.
    pub fn expected_sync_mismatches(&self) -> Vec<Mismatch> {
        self.registered
            .iter()
            .filter(|(_, r)| r.stale_aliases != 0)
            .map(|(&key, r)| Mismatch::AliasedCount {
                handler: key,
                kept: self.aliases_in(key, r.last) + r.stale_aliases,
                found: self.aliases_in(key, r.last),
            })
            .collect()
    }

    // ----- derivations -------------------------------------------------------------------

    fn node(&self, id: HandlerId) -> Result<&Node, Error> {
        self.nodes.get(&id.0).ok_or(Error::InvalidHandle)
    }

    /// The first byte of node `id`'s registered range, if it is registered: a look through
    /// the registered handlers (each names its node).
    fn key_of_node(&self, id: HandlerId) -> Option<u64> {
        self.registered
            .iter()
            .find(|(_, r)| r.node == id.0)
            .map(|(&key, _)| key)
    }

    fn type_of(&self, ty: HandlerTypeHandle) -> Result<&HandlerTypeConfig, Error> {
        self.types
            .iter()
            .find(|(h, _)| *h == ty)
            .map(|(_, c)| c)
            .ok_or(Error::InvalidHandle)
    }

    /// Kind and not-in-HM flag of a node (its type always exists: types are never freed).
    fn kind_of(&self, node: &Node) -> (HandlerKind, bool) {
        self.type_of(node.ty)
            .map_or((HandlerKind::All, false), |c| (c.kind, c.not_in_hm))
    }

    fn live(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// Kind and not-in-HM flag of a registered handler's node.
    fn kind_of_registration(&self, r: &Registration) -> (HandlerKind, bool) {
        self.nodes
            .get(&r.node)
            .map_or((HandlerKind::All, false), |n| self.kind_of(n))
    }

    /// Kind and not-in-HM flag of the handler registered at `key`.
    fn kind_at(&self, key: u64) -> (HandlerKind, bool) {
        self.registered
            .get(&key)
            .map_or((HandlerKind::All, false), |r| self.kind_of_registration(r))
    }

    /// `[key, last]` of the handler registered at `key`.
    fn range_of(&self, key: u64) -> (u64, u64) {
        (key, self.registered.get(&key).map_or(key, |r| r.last))
    }

    /// The registered handlers with at least one byte in `[first, last]`, highest first. The
    /// ranges are disjoint, so they are sorted by their last byte as well as by key: walking
    /// down from the last key `<= last`, every range that still reaches `first` overlaps, and
    /// the first one that does not ends the walk for all below it.
    fn overlapping(&self, first: u64, last: u64) -> impl Iterator<Item = (u64, &Registration)> + '_ {
        self.registered
            .range(..=last)
            .rev()
            .map(|(&key, r)| (key, r))
            .take_while(move |(_, r)| r.last >= first)
    }

    /// The registered handler whose range contains `addr`.
    fn containing(&self, addr: u64) -> Option<u64> {
        self.overlapping(addr, addr).next().map(|(key, _)| key)
    }

    /// The registered handler starting exactly at `addr` (`NotFound` otherwise, including an
    /// address merely inside a handler: deliberate difference D1, semantics §5).
    fn starting_at(&self, addr: u64) -> Result<u64, Error> {
        match self.registered.contains_key(&addr) {
            true => Ok(addr),
            false => Err(Error::NotFound),
        }
    }

    /// Registered handlers with at least one byte in the page at `page`.
    fn touching(&self, page: u64) -> impl Iterator<Item = (u64, &Registration)> + '_ {
        self.overlapping(page, page + OFFSET_MASK)
    }

    /// The derived handler state of a page: `Disabled` if temp-off or aliased, else the
    /// maximum state of the handlers touching it.
    fn handler_state(&self, page: u64) -> HandlerState {
        self.state_and_not_in_hm(page).0
    }

    /// The derived handler state of a page and whether a handler touching it is not-in-HM
    /// (one walk over those handlers).
    fn state_and_not_in_hm(&self, page: u64) -> (HandlerState, bool) {
        let (mut state, mut not_in_hm) = (HandlerState::None, false);
        for (_, r) in self.touching(page) {
            let (kind, flag) = self.kind_of_registration(r);
            state = state.max(state_of_kind(kind));
            not_in_hm |= flag;
        }
        if self.temp_off.contains(&page) || self.aliases.contains_key(&page) {
            state = HandlerState::Disabled;
        }
        (state, not_in_hm)
    }

    /// Aliased pages counted in `[key, last]`.
    fn aliases_in(&self, key: u64, last: u64) -> u32 {
        self.aliases.range(page_of(key)..=last).count() as u32
    }

    /// Temp-off pages counted in `[key, last]`.
    fn temp_off_in(&self, key: u64, last: u64) -> u32 {
        self.temp_off.range(page_of(key)..=last).count() as u32
    }

    /// The aliased-page count the handler at `key` reports: aliases in its range + stale.
    fn aliased_count(&self, key: u64) -> u32 {
        self.registered
            .get(&key)
            .map_or(0, |r| self.aliases_in(key, r.last) + r.stale_aliases)
    }

    fn temp_off_count(&self, key: u64) -> u32 {
        self.registered.get(&key).map_or(0, |r| self.temp_off_in(key, r.last))
    }

    /// The handler registered at `key` (with registration `r`), as `handlers()` lists it.
    fn info(&self, key: u64, r: &Registration) -> Option<HandlerInfo> {
        let node = self.nodes.get(&r.node)?;
        Some(HandlerInfo {
            key,
            key_last: r.last,
            page_count: ((r.last >> 12) - (key >> 12) + 1) as u32,
            aliased_pages: self.aliases_in(key, r.last) + r.stale_aliases,
            temp_off_pages: self.temp_off_in(key, r.last),
            ty: node.ty,
            kind: self.kind_of(node).0,
            user: node.user,
            description: node.description.clone(),
        })
    }

    /// The handler registered at `key`, as `lookup` describes it.
    fn info_at(&self, key: u64) -> Option<HandlerInfo> {
        self.info(key, self.registered.get(&key)?)
    }

    /// Node `id`, registered or not, as `handler_info` describes it.
    fn node_info(&self, id: HandlerId) -> Result<NodeInfo, Error> {
        let node = self.node(id)?;
        Ok(NodeInfo {
            ty: node.ty,
            kind: self.kind_of(node).0,
            user: node.user,
            description: node.description.clone(),
            registered: self.key_of_node(id).and_then(|key| self.info_at(key)),
        })
    }

    /// The derived descriptor of the page containing `addr`.
    fn descriptor(&self, addr: u64) -> Option<PageDescriptor> {
        let page = page_of(addr);
        let mut d = initial_descriptor(&self.layout, page)?;
        match self.aliases.get(&page) {
            Some(Alias::Mmio2 { host_phys, page_id }) => {
                d = PageDescriptor::new(PageType::Mmio2AliasMmio, PageState::Allocated, *host_phys, *page_id);
            }
            Some(Alias::Host { host_phys }) => {
                d = PageDescriptor::new(PageType::SpecialAliasMmio, PageState::Allocated, *host_phys, NO_PAGE_ID);
            }
            None => {}
        }
        // Pages shared by several handlers only have plain Write handlers (no not-in-HM),
        // so "any handler touching the page is not-in-HM" is the one handler's flag.
        let (state, not_in_hm) = self.state_and_not_in_hm(page);
        d.set_handler_state(state, not_in_hm);
        Some(d)
    }

    // ----- effects -----------------------------------------------------------------------

    fn emit(&mut self, event: PlatformEvent) {
        self.events.push(event);
    }

    fn emit_update(&mut self, page: u64, flush_ptes: bool) {
        let state = self.handler_state(page);
        self.emit(PlatformEvent::UpdateShadowPtes {
            gc_phys: Gpa(page),
            state,
            flush_ptes,
        });
    }

    /// Undoes the alias of `page` (the original's `pgmHandlerPhysicalResetAliasedPage`,
    /// semantics §3.3): shadow PTEs flushed first (with the page still in its aliased state),
    /// all TLBs flushed unconditionally, the page-map entry dropped, optionally the emulator's
    /// TLBs.
    fn undo_alias(&mut self, page: u64, flush_emulator: bool) {
        self.emit_update(page, true);
        self.emit(PlatformEvent::FlushAllTlbs);
        self.aliases.remove(&page);
        self.emit(PlatformEvent::InvalidatePageMapEntry { gc_phys: Gpa(page) });
        if flush_emulator {
            self.emit(PlatformEvent::FlushEmulatorPhysTlbs);
        }
    }

    /// Shadow-PTE updates for the pages of `[key, last]` whose state rose from `before`,
    /// then one TLB flush if any was updated and pages are mapped. Returns the indices (in
    /// the handler) of the pages raised, for the dirty bitmap.
    fn emit_upgrades(&mut self, key: u64, last: u64, before: &[HandlerState]) -> Vec<usize> {
        let mut raised = Vec::new();
        for (i, page) in pages(key, last).enumerate() {
            if self.handler_state(page) > before[i] {
                self.emit_update(page, false);
                raised.push(i);
            }
        }
        if !raised.is_empty() && self.all_pages_mapped {
            self.emit(PlatformEvent::FlushAllTlbs);
        }
        raised
    }

    fn states(&self, key: u64, last: u64) -> Vec<HandlerState> {
        pages(key, last).map(|p| self.handler_state(p)).collect()
    }

    /// Range checks of registration in the production order.
    fn validate_range(&self, config: &HandlerTypeConfig, first: u64, last: u64) -> Result<(), Error> {
        if first > last || last - first >= 1 << 32 {
            return Err(Error::InvalidParameter);
        }
        let whole_only = config.kind != HandlerKind::Write || config.not_in_hm;
        if whole_only && !whole_pages(first, last) {
            return Err(Error::InvalidParameter);
        }
        match rules::range_containing(&self.layout, first) {
            Some((_, range_last)) if last <= range_last => {}
            _ => return Err(Error::NoRamRange),
        }
        if self.overlapping(first, last).next().is_some() {
            return Err(Error::Conflict);
        }
        Ok(())
    }

    fn allocate(&mut self, node: Node) -> Result<HandlerId, Error> {
        if self.live() >= self.capacity {
            return Err(Error::OutOfResources);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, node);
        Ok(HandlerId(id))
    }

    /// Links a validated range: pages whose state rises get their shadow PTEs updated.
    fn commit(&mut self, id: HandlerId, first: u64, last: u64) -> Status {
        let before = self.states(first, last);
        let registration = Registration {
            last,
            node: id.0,
            stale_aliases: 0,
        };
        self.registered.insert(first, registration);
        self.emit_upgrades(first, last, &before);
        Status::Success
    }

    /// Unlinks the handler registered at `key`: its aliases are undone (emulator TLBs flushed
    /// each time), its temp-off pages forgotten, then each partial edge page is recomputed
    /// from the handlers left on it, below first and above second, as the original walks them
    /// (semantics §3.4). Returns the node, now unregistered.
    fn unregister(&mut self, key: u64) -> u64 {
        let (key, last) = self.range_of(key);
        for page in pages(key, last) {
            if self.aliases.contains_key(&page) {
                self.undo_alias(page, true);
            }
            self.temp_off.remove(&page);
        }
        let node = self.registered.remove(&key).map_or(u64::MAX, |r| r.node);
        // Every page of the handler is now `None` in the original; an edge page is raised again
        // by the neighbours on one side, then (if higher) by those on the other side.
        let state_of = |m: &Model, page: u64, below: bool| {
            m.touching(page)
                .filter(|&(k, r)| if below { r.last < key } else { k > last })
                .map(|(_, r)| state_of_kind(m.kind_of_registration(r).0))
                .max()
                .unwrap_or(HandlerState::None)
        };
        let mut first_edge = None;
        if key & OFFSET_MASK != 0 {
            let page = page_of(key);
            let s = state_of(self, page, true);
            if s != HandlerState::None {
                self.emit_edge_update(page, s);
                first_edge = Some((page, s));
            }
        }
        if last & OFFSET_MASK != OFFSET_MASK {
            let page = page_of(last);
            let current = match first_edge {
                Some((p, s)) if p == page => s,
                _ => HandlerState::None,
            };
            let s = state_of(self, page, false);
            if s > current {
                self.emit_edge_update(page, s);
            }
        }
        node
    }

    fn emit_edge_update(&mut self, page: u64, state: HandlerState) {
        self.emit(PlatformEvent::UpdateShadowPtes {
            gc_phys: Gpa(page),
            state,
            flush_ptes: false,
        });
        if self.all_pages_mapped {
            self.emit(PlatformEvent::FlushAllTlbs);
        }
    }

    /// "The page `page` of the Mmio handler starting at `addr`", checked in the production
    /// order; returns the handler's key and the page base.
    fn mmio_handler_page(&self, addr: u64, page: u64) -> Result<(u64, u64), Error> {
        let key = self.starting_at(addr)?;
        let (key, last) = self.range_of(key);
        if page < key || page > last {
            return Err(Error::InvalidParameter);
        }
        if self.kind_at(key).0 != HandlerKind::Mmio {
            return Err(Error::AccessDenied);
        }
        if !whole_pages(key, last) {
            return Err(Error::InvalidParameter);
        }
        Ok((key, page_of(page)))
    }

    /// Re-arms the temp-off pages of a Write/All handler; returns the raised page indices.
    fn rearm(&mut self, key: u64) -> Vec<usize> {
        let (key, last) = self.range_of(key);
        let before = self.states(key, last);
        let off: Vec<u64> = self.temp_off.range(page_of(key)..=last).copied().collect();
        for page in off {
            self.temp_off.remove(&page);
        }
        self.emit_upgrades(key, last, &before)
    }

    /// Temp-off of `page` in the handler registered at `key`, from the handler's checks on.
    fn temp_off(&mut self, key: u64, page: u64) -> OpResult {
        let (key, last) = self.range_of(key);
        if page < key || page > last || !whole_pages(key, last) {
            return Err(Error::InvalidParameter);
        }
        if !matches!(self.kind_at(key).0, HandlerKind::Write | HandlerKind::All) {
            return Err(Error::AccessDenied);
        }
        // Already off: a successful no-op (the set ignores the duplicate).
        self.temp_off.insert(page_of(page));
        Ok(Status::Success)
    }
}

impl PhysHandlerApi for Model {
    fn register_type(&mut self, config: HandlerTypeConfig) -> Result<HandlerTypeHandle, Error> {
        if self.types.len() >= MAX_TYPES {
            return Err(Error::OutOfResources);
        }
        let handle = rules::type_handle(self.types.len());
        self.types.push((handle, config));
        Ok(handle)
    }

    fn create(&mut self, ty: HandlerTypeHandle, user: u64, description: Option<&str>) -> Result<HandlerId, Error> {
        let config = self.type_of(ty)?;
        let description = description.map_or_else(|| config.description.clone(), Arc::from);
        self.allocate(Node { ty, user, description })
    }

    fn dup(&mut self, source: HandlerId) -> Result<HandlerId, Error> {
        let copy = self.node(source)?.clone();
        self.allocate(copy)
    }

    fn register_ex(&mut self, id: HandlerId, first: u64, last: u64) -> OpResult {
        let node = self.node(id)?;
        let config = self.type_of(node.ty)?;
        if self.key_of_node(id).is_some() {
            return Err(Error::WrongOrder);
        }
        self.validate_range(config, first, last)?;
        Ok(self.commit(id, first, last))
    }

    fn register(
        &mut self,
        first: u64,
        last: u64,
        ty: HandlerTypeHandle,
        user: u64,
        description: Option<&str>,
    ) -> OpResult {
        let config = self.type_of(ty)?;
        if self.live() >= self.capacity {
            return Err(Error::OutOfResources);
        }
        self.validate_range(config, first, last)?;
        let id = self.create(ty, user, description)?;
        Ok(self.commit(id, first, last))
    }

    fn deregister_ex(&mut self, id: HandlerId) -> OpResult {
        self.node(id)?;
        let key = self.key_of_node(id).ok_or(Error::NotFound)?;
        self.unregister(key);
        Ok(Status::Success)
    }

    fn destroy(&mut self, id: HandlerId) -> OpResult {
        self.node(id)?;
        if self.key_of_node(id).is_some() {
            return Err(Error::WrongOrder);
        }
        self.nodes.remove(&id.0);
        Ok(Status::Success)
    }

    fn deregister(&mut self, addr: u64) -> OpResult {
        let key = self.starting_at(addr)?;
        let node = self.unregister(key);
        self.nodes.remove(&node);
        Ok(Status::Success)
    }

    fn change_user_arg(&mut self, addr: u64, user: u64) -> OpResult {
        let key = self.starting_at(addr)?;
        let id = self.registered[&key].node;
        if let Some(node) = self.nodes.get_mut(&id) {
            node.user = user;
        }
        Ok(Status::Success)
    }

    fn reset(&mut self, addr: u64) -> OpResult {
        let key = self.starting_at(addr)?;
        let (key, last) = self.range_of(key);
        match self.kind_at(key).0 {
            HandlerKind::Mmio => {
                // Gated on the (possibly stale) count, as in the original.
                if self.aliased_count(key) > 0 {
                    let aliased: Vec<(u64, Alias)> =
                        self.aliases.range(page_of(key)..=last).map(|(p, a)| (*p, *a)).collect();
                    for &(page, _) in &aliased {
                        self.undo_alias(page, false);
                    }
                    if aliased.iter().any(|(_, a)| matches!(a, Alias::Mmio2 { .. })) {
                        self.emit(PlatformEvent::FlushEmulatorPhysTlbs);
                    }
                }
            }
            HandlerKind::Write | HandlerKind::All => {
                if self.temp_off_count(key) > 0 {
                    self.rearm(key);
                }
            }
        }
        if let Some(r) = self.registered.get_mut(&key) {
            r.stale_aliases = 0;
        }
        Ok(Status::Success)
    }

    fn reset_mmio2_with_bitmap(&mut self, addr: u64, bitmap: &mut [u64], offset: u32) -> OpResult {
        let key = self.starting_at(addr)?;
        if self.kind_at(key).0 != HandlerKind::Write {
            return Err(Error::WrongType);
        }
        let (key, last) = self.range_of(key);
        let page_count = pages(key, last).count() as u64;
        if offset as u64 + page_count > bitmap.len() as u64 * 64 {
            return Err(Error::InvalidParameter);
        }
        if self.temp_off_count(key) == 0 {
            return Ok(Status::Success);
        }
        for index in self.rearm(key) {
            let bit = offset as usize + index;
            bitmap[bit / 64] |= 1 << (bit % 64);
        }
        Ok(Status::Success)
    }

    fn page_temp_off(&mut self, addr: u64, page: u64) -> OpResult {
        let key = self.starting_at(addr)?;
        self.temp_off(key, page)
    }

    fn page_temp_off_ex(&mut self, id: HandlerId, page: u64) -> OpResult {
        self.node(id)?;
        let key = self.key_of_node(id).ok_or(Error::NotFound)?;
        self.temp_off(key, page)
    }

    fn page_alias_mmio2(&mut self, addr: u64, page: u64, region: Mmio2Handle, offset: u64) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let remap = rules::mmio2_descriptor(&self.layout, region, offset).ok_or(Error::OutOfRange)?;
        if remap.page_type() != PageType::Mmio2 {
            return Err(Error::NotMmio2);
        }
        let (_, page) = self.mmio_handler_page(addr, page)?;
        let current = self.descriptor(page).ok_or(Error::Internal)?;
        match current.page_type() {
            PageType::Mmio => {}
            PageType::Mmio2AliasMmio if current.host_phys() == remap.host_phys() => return Ok(Status::AlreadyAliased),
            PageType::Mmio2AliasMmio => {
                self.undo_alias(page, false);
                self.emit(PlatformEvent::FlushEmulatorPhysTlbs);
            }
            _ => return Err(Error::NotMmio2),
        }
        self.aliases.insert(
            page,
            Alias::Mmio2 {
                host_phys: remap.host_phys(),
                page_id: remap.page_id(),
            },
        );
        self.emit(PlatformEvent::InvalidatePageMapEntry { gc_phys: Gpa(page) });
        Ok(Status::Success)
    }

    fn page_alias_hc(&mut self, addr: u64, page: u64, host_phys: Hpa) -> OpResult {
        if self.config.nem == NemMode::Exclusive {
            return Err(Error::NotSupportedInNemMode);
        }
        let (_, page) = self.mmio_handler_page(addr, page)?;
        if host_phys.0 > MAX_HOST_ADDRESS {
            return Err(Error::InvalidParameter);
        }
        match self.descriptor(page).ok_or(Error::Internal)?.page_type() {
            PageType::Mmio => {}
            PageType::SpecialAliasMmio => return Ok(Status::AlreadyAliased),
            _ => return Err(Error::NotMmio2),
        }
        self.aliases.insert(
            page,
            Alias::Host {
                host_phys: Hpa(page_of(host_phys.0)),
            },
        );
        self.emit(PlatformEvent::InvalidatePageMapEntry { gc_phys: Gpa(page) });
        Ok(Status::Success)
    }

    fn reset_aliased_page(&mut self, page: u64, accounting: bool) -> OpResult {
        let current = self.descriptor(page).ok_or(Error::InvalidParameter)?;
        if !current.page_type().is_alias() {
            return Err(Error::WrongType);
        }
        if current.handler_state() != HandlerState::Disabled {
            return Err(Error::Internal);
        }
        let owner = self.containing(page);
        if accounting {
            let key = owner.ok_or(Error::NotFound)?;
            if self.aliased_count(key) == 0 {
                return Err(Error::Internal);
            }
        }
        self.undo_alias(page_of(page), true);
        if let (false, Some(key)) = (accounting, owner) {
            if let Some(r) = self.registered.get_mut(&key) {
                r.stale_aliases += 1;
            }
        }
        Ok(Status::Success)
    }

    fn vm_reset(&mut self) -> OpResult {
        let mut work = Vec::new();
        for (&key, r) in &self.registered {
            if self.kind_at(key).0 != HandlerKind::Mmio {
                continue;
            }
            let last = r.last;
            let found: Vec<u64> = self.aliases.range(page_of(key)..=last).map(|(p, _)| *p).collect();
            if found.len() as u64 > self.aliased_count(key) as u64 {
                return Err(Error::Internal);
            }
            work.extend(found);
        }
        for &page in &work {
            self.undo_alias(page, false);
        }
        if !work.is_empty() {
            self.emit(PlatformEvent::FlushEmulatorPhysTlbs);
        }
        Ok(Status::Success)
    }

    fn is_registered(&self, addr: u64) -> bool {
        self.containing(addr).is_some()
    }

    fn is_all(&self, addr: u64) -> Result<bool, Error> {
        let key = self.containing(addr).ok_or(Error::NotFound)?;
        Ok(self.kind_at(key).0 != HandlerKind::Write)
    }

    fn lookup(&self, addr: u64) -> Option<HandlerInfo> {
        self.info_at(self.containing(addr)?)
    }

    fn handler_info(&self, id: HandlerId) -> Result<NodeInfo, Error> {
        self.node_info(id)
    }

    fn handlers(&self) -> Vec<HandlerInfo> {
        self.handler_iter().collect()
    }

    fn live_handlers(&self) -> u32 {
        self.live()
    }

    fn page(&self, addr: u64) -> Option<PageDescriptor> {
        self.descriptor(addr)
    }

    fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    fn type_config(&self, ty: HandlerTypeHandle) -> Result<HandlerTypeConfig, Error> {
        self.type_of(ty).cloned()
    }
}
