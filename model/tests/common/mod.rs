//! Shared harness of the differential tests: the fixed world, one operation vocabulary that
//! runs against either implementation, and the whole-state comparison.
//!
//! Handler ids differ between the model and the production manager, so operations name
//! handlers by index into the list of handlers each side created (that index means the same
//! handler on both sides, and stays meaningful when proptest deletes transitions); an index
//! past the end stands for a garbage id.
#![allow(dead_code)]

use pgmsim::api::NemMode;
use pgmsim::{
    Error, HandlerId, HandlerInfo, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig,
    MemoryLayout, Mismatch, Mmio2Handle, OpResult, PageDescriptor, PhysHandlerApi, PlatformEvent, RecordingPlatform,
};
use pgmsim_model::Model;

/// First RAM range: 16 pages at 0.
pub const RAM0: u64 = 0x0;
/// Second RAM range: 8 pages, after a gap.
pub const RAM1: u64 = 0x2_0000;
/// Third RAM range: 4 pages, directly adjacent to the second (no gap).
pub const RAM2: u64 = 0x2_8000;
/// The MMIO range: 16 pages.
pub const MMIO: u64 = 0x10_0000;
/// Pages of the MMIO range.
pub const MMIO_PAGES: u64 = 16;
/// Where MMIO2 region 1 (8 pages) is mapped as a RAM range: above 4 GiB.
pub const MMIO2_MAPPED: u64 = 0x1_0000_0000;
/// Pages of MMIO2 region 1 (mapped) and region 2 (unmapped, alias source only).
pub const MMIO2_PAGES: [u64; 2] = [8, 4];

/// Several RAM ranges with gaps, two of them adjacent, an MMIO range, and two MMIO2 regions
/// (the first mapped above 4 GiB, the second only an alias source).
pub fn layout() -> MemoryLayout {
    let b = MemoryLayout::builder()
        .ram(RAM0, 16)
        .ram(RAM1, 8)
        .ram(RAM2, 4)
        .mmio(MMIO, MMIO_PAGES as u32);
    let (b, r1) = b.mmio2_region(MMIO2_PAGES[0] as u32);
    let (b, _r2) = b.mmio2_region(MMIO2_PAGES[1] as u32);
    b.map_mmio2(r1, MMIO2_MAPPED).build().expect("valid layout")
}

/// Capacity 32, the minimum, so exhaustion happens within a test case.
pub fn config() -> ManagerConfig {
    ManagerConfig {
        max_handlers: 32,
        nem: NemMode::Off,
        type_salt: ManagerConfig::default().type_salt,
    }
}

/// The handler types every world starts with.
pub fn initial_types() -> Vec<HandlerTypeConfig> {
    let mut write_nhm = HandlerTypeConfig::new(HandlerKind::Write, "write-not-in-hm");
    write_nhm.not_in_hm = true;
    vec![
        HandlerTypeConfig::new(HandlerKind::Write, "write"),
        write_nhm,
        HandlerTypeConfig::new(HandlerKind::All, "all"),
        HandlerTypeConfig::new(HandlerKind::Mmio, "mmio"),
    ]
}

/// Both implementations, plus the handler id of "the registered handler at `addr`" each
/// keeps, so plain `register` can name the handler it created.
pub trait Subject: PhysHandlerApi {
    /// Id of the registered handler containing `addr`.
    fn id_at(&self, addr: u64) -> Option<HandlerId>;
}

impl Subject for Model {
    fn id_at(&self, addr: u64) -> Option<HandlerId> {
        self.handler_id_at(addr)
    }
}

impl Subject for Manager<RecordingPlatform> {
    fn id_at(&self, addr: u64) -> Option<HandlerId> {
        self.handler_id_at(addr)
    }
}

/// One side of the comparison: an implementation and the ids/types it handed out.
#[derive(Debug, Clone)]
pub struct Side<A> {
    /// The implementation.
    pub api: A,
    /// Handler ids in creation order (destroyed ones stay, as stale ids).
    pub created: Vec<HandlerId>,
    /// Type handles in registration order.
    pub types: Vec<HandlerTypeHandle>,
}

impl<A: Subject> Side<A> {
    /// Registers the initial types.
    pub fn new(mut api: A) -> Self {
        let types = initial_types()
            .into_iter()
            .map(|t| api.register_type(t).expect("type"))
            .collect();
        Side {
            api,
            created: Vec::new(),
            types,
        }
    }

    fn id(&self, h: usize) -> HandlerId {
        self.created.get(h).copied().unwrap_or(HandlerId(u64::MAX))
    }

    fn ty(&self, t: usize) -> HandlerTypeHandle {
        match self.types.get(t) {
            Some(h) => *h,
            // Right slot, wrong check bits: must be refused, not resolved by slot.
            None if t & 1 == 0 => HandlerTypeHandle(self.types[0].0 ^ 0x100),
            None => HandlerTypeHandle::NIL,
        }
    }

    /// Runs one operation; the outcome contains no handler ids, so both sides compare.
    pub fn perform(&mut self, op: &Op) -> Outcome {
        let api = &mut self.api;
        match *op {
            Op::RegisterType { kind, not_in_hm } => {
                let mut config = HandlerTypeConfig::new(kind, "extra");
                config.not_in_hm = not_in_hm;
                let r = api.register_type(config);
                if let Ok(h) = r {
                    self.types.push(h);
                }
                Outcome::Type(r)
            }
            Op::Create {
                ty,
                user,
                described,
                count,
            } => {
                let ty = self.ty(ty);
                let desc = described.then_some("custom");
                let mut results = Vec::new();
                for k in 0..count.max(1) {
                    let r = self.api.create(ty, user.wrapping_add(k as u64), desc);
                    if let Ok(id) = r {
                        self.created.push(id);
                    }
                    results.push(r.map(|_| ()));
                }
                Outcome::Ids(results)
            }
            Op::Dup { h } => {
                let r = self.api.dup(self.id(h));
                if let Ok(id) = r {
                    self.created.push(id);
                }
                Outcome::Ids(vec![r.map(|_| ())])
            }
            Op::RegisterEx { h, first, last } => {
                let id = self.id(h);
                Outcome::Op(self.api.register_ex(id, first, last))
            }
            Op::Register {
                first,
                last,
                ty,
                user,
                described,
            } => {
                let ty = self.ty(ty);
                let r = self.api.register(first, last, ty, user, described.then_some("custom"));
                if r.is_ok() {
                    let id = self.api.id_at(first).expect("registered handler is found");
                    self.created.push(id);
                }
                Outcome::Op(r)
            }
            Op::DeregisterEx { h } => {
                let id = self.id(h);
                Outcome::Op(self.api.deregister_ex(id))
            }
            Op::Destroy { h } => {
                let id = self.id(h);
                Outcome::Op(self.api.destroy(id))
            }
            Op::Deregister { addr } => Outcome::Op(api.deregister(addr)),
            Op::ChangeUserArg { addr, user } => Outcome::Op(api.change_user_arg(addr, user)),
            Op::Reset { addr } => Outcome::Op(api.reset(addr)),
            Op::ResetMmio2WithBitmap { addr, words, offset } => {
                // Pre-filled with a pattern so a stray clear or set shows.
                let mut bitmap = vec![0x8000_0000_0000_0001u64; words];
                let r = api.reset_mmio2_with_bitmap(addr, &mut bitmap, offset);
                Outcome::Bitmap(r, bitmap)
            }
            Op::PageTempOff { addr, page } => Outcome::Op(api.page_temp_off(addr, page)),
            Op::PageAliasMmio2 {
                addr,
                page,
                region,
                offset,
            } => Outcome::Op(api.page_alias_mmio2(addr, page, Mmio2Handle(region), offset)),
            Op::PageAliasHc { addr, page, host_phys } => Outcome::Op(api.page_alias_hc(addr, page, host_phys)),
            Op::ResetAliasedPage { page, accounting } => Outcome::Op(api.reset_aliased_page(page, accounting)),
            Op::VmReset => Outcome::Op(api.vm_reset()),
            Op::IsRegistered { addr } => Outcome::Bool(api.is_registered(addr)),
            Op::IsAll { addr } => Outcome::IsAll(api.is_all(addr)),
            Op::Lookup { addr } => Outcome::Lookup(api.lookup(addr)),
            Op::HandlerInfo { h } => {
                let id = self.id(h);
                Outcome::Info(self.api.handler_info(id))
            }
            Op::TypeConfig { ty } => {
                let ty = self.ty(ty);
                Outcome::TypeConfig(self.api.type_config(ty))
            }
            Op::Page { addr } => Outcome::Page(api.page(addr).map(PageDescriptor::without_nem_state)),
        }
    }
}

/// One operation of the trait, with handlers and types named by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `register_type`.
    RegisterType { kind: HandlerKind, not_in_hm: bool },
    /// `create`, `count` times in a row (so the allocator runs dry within a case).
    Create {
        ty: usize,
        user: u64,
        described: bool,
        count: u8,
    },
    /// `dup`.
    Dup { h: usize },
    /// `register_ex`.
    RegisterEx { h: usize, first: u64, last: u64 },
    /// `register`.
    Register {
        first: u64,
        last: u64,
        ty: usize,
        user: u64,
        described: bool,
    },
    /// `deregister_ex`.
    DeregisterEx { h: usize },
    /// `destroy`.
    Destroy { h: usize },
    /// `deregister`.
    Deregister { addr: u64 },
    /// `change_user_arg`.
    ChangeUserArg { addr: u64, user: u64 },
    /// `reset`.
    Reset { addr: u64 },
    /// `reset_mmio2_with_bitmap` with a bitmap of `words` words.
    ResetMmio2WithBitmap { addr: u64, words: usize, offset: u32 },
    /// `page_temp_off`.
    PageTempOff { addr: u64, page: u64 },
    /// `page_alias_mmio2`.
    PageAliasMmio2 {
        addr: u64,
        page: u64,
        region: u32,
        offset: u64,
    },
    /// `page_alias_hc`.
    PageAliasHc { addr: u64, page: u64, host_phys: u64 },
    /// `reset_aliased_page`.
    ResetAliasedPage { page: u64, accounting: bool },
    /// `vm_reset`.
    VmReset,
    /// `is_registered`.
    IsRegistered { addr: u64 },
    /// `is_all`.
    IsAll { addr: u64 },
    /// `lookup`.
    Lookup { addr: u64 },
    /// `handler_info`.
    HandlerInfo { h: usize },
    /// `type_config`.
    TypeConfig { ty: usize },
    /// `page`.
    Page { addr: u64 },
}

/// What an operation answered, free of handler ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Nothing ran yet.
    #[default]
    Nothing,
    /// A status or error.
    Op(OpResult),
    /// create / dup results.
    Ids(Vec<Result<(), Error>>),
    /// register_type.
    Type(Result<HandlerTypeHandle, Error>),
    /// is_registered.
    Bool(bool),
    /// is_all.
    IsAll(Result<bool, Error>),
    /// lookup.
    Lookup(Option<HandlerInfo>),
    /// handler_info.
    Info(Result<HandlerInfo, Error>),
    /// type_config.
    TypeConfig(Result<HandlerTypeConfig, Error>),
    /// page (without NEM state).
    Page(Option<PageDescriptor>),
    /// reset_mmio2_with_bitmap and the bitmap afterwards.
    Bitmap(OpResult, Vec<u64>),
}

/// A fresh model, told that every page is mapped (as `RecordingPlatform::mapped()`).
pub fn new_model() -> Side<Model> {
    let mut model = Model::new(layout(), config()).expect("model");
    model.set_all_pages_mapped(true);
    Side::new(model)
}

/// A fresh production manager on a recording platform where every page is mapped.
pub fn new_manager() -> Side<Manager<RecordingPlatform>> {
    let mut side = Side::new(Manager::new(layout(), config(), RecordingPlatform::mapped()).expect("manager"));
    side.api.platform_mut().take();
    side
}

/// Every RAM page address of the layout.
pub fn all_pages(layout: &MemoryLayout) -> Vec<u64> {
    layout
        .ram_ranges
        .iter()
        .flat_map(|r| (0..r.pages as u64).map(move |i| r.first + (i << 12)))
        .collect()
}

/// Asserts that the whole observable state agrees: every RAM page descriptor (NEM bits
/// aside), the handler list, the live count, and `check_sync` (empty unless the model
/// expects the stale-alias-count mismatch of `reset_aliased_page` without accounting).
pub fn assert_same_state(model: &Model, mgr: &Manager<RecordingPlatform>, context: &dyn std::fmt::Debug) {
    for page in all_pages(model.layout()) {
        let want = model.page(page);
        let got = mgr.page(page).map(PageDescriptor::without_nem_state);
        assert_eq!(
            got, want,
            "page {page:#x} differs (production left, model right) after {context:?}"
        );
    }
    assert_eq!(
        mgr.handlers(),
        model.handlers(),
        "handler list differs after {context:?}"
    );
    assert_eq!(
        mgr.live_handlers(),
        model.live_handlers(),
        "live handlers differ after {context:?}"
    );
    let expected: Vec<Mismatch> = model.expected_sync_mismatches();
    assert_eq!(mgr.check_sync(), expected, "check_sync after {context:?}");
}

/// A model and a manager driven in lock-step, for scenario tests.
pub struct Pair {
    /// The reference model.
    pub model: Side<Model>,
    /// The production manager.
    pub mgr: Side<Manager<RecordingPlatform>>,
}

impl Default for Pair {
    fn default() -> Self {
        Pair {
            model: new_model(),
            mgr: new_manager(),
        }
    }
}

impl Pair {
    /// Runs `op` on both, asserts identical outcome, events and state; returns the outcome.
    pub fn run(&mut self, op: Op) -> Outcome {
        self.events_of(op).0
    }

    /// `run`, also returning the platform events the operation produced.
    pub fn events_of(&mut self, op: Op) -> (Outcome, Vec<PlatformEvent>) {
        let want = self.model.perform(&op);
        let got = self.mgr.perform(&op);
        assert_eq!(got, want, "outcome of {op:?} (production left, model right)");
        let want_events = self.model.api.take_events();
        // The model keeps no NEM state: compare everything else the platform was told.
        let got_events: Vec<PlatformEvent> = self
            .mgr
            .api
            .platform_mut()
            .take()
            .into_iter()
            .filter(|e| !is_nem(e))
            .collect();
        assert_eq!(
            got_events, want_events,
            "platform events of {op:?} (production left, model right)"
        );
        assert_same_state(&self.model.api, &self.mgr.api, &op);
        (want, want_events)
    }

    /// `run`, expecting an operation status.
    pub fn op(&mut self, op: Op) -> OpResult {
        match self.run(op) {
            Outcome::Op(r) | Outcome::Bitmap(r, _) => r,
            other => panic!("not an operation outcome: {other:?}"),
        }
    }
}

/// Whether an event is a NEM notification (which the model does not model).
pub fn is_nem(e: &PlatformEvent) -> bool {
    matches!(
        e,
        PlatformEvent::NemHandlerRegistered { .. }
            | PlatformEvent::NemHandlerDeregistered { .. }
            | PlatformEvent::NemProtectionChanged { .. }
            | PlatformEvent::NemBackingChanged { .. }
    )
}
