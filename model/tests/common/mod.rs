//! Shared harness of the differential tests: the fixed world, both sides driven through the
//! testkit's call vocabulary ([`ApiCall`] + [`apply_checked`]), and the whole-state
//! comparison.
//!
//! Handler ids and type handles differ between the model and the production manager, so calls
//! name handlers and types by creation index ([`Names`]); that index means the same node on
//! both sides and stays meaningful when proptest deletes transitions.
#![allow(dead_code)]

use std::hash::{DefaultHasher, Hash, Hasher};

use pgmsim::api::NemMode;
use pgmsim::{HandlerKind, HandlerTypeConfig, Manager, ManagerConfig, MemoryLayout, Mismatch, PhysHandlerApi};
use pgmsim_model::Model;
use pgmsim_testkit::call::apply_checked;
use pgmsim_testkit::{compare, ApiCall, Names, Outcome, RecordingPlatform};

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

/// The handler types every world starts with, by registration index: 0 Write, 1 Write
/// not-in-HM, 2 All, 3 Mmio.
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

/// The model's state digest for [`apply_checked`]: a hash of everything it keeps (its
/// `Debug` text covers every field).
pub fn model_digest(model: &Model) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{model:?}").hash(&mut h);
    h.finish()
}

/// The production manager's state digest for [`apply_checked`].
pub fn manager_digest(mgr: &Manager<RecordingPlatform>) -> u64 {
    mgr.state_digest()
}

/// One side of the comparison: an implementation, the ids and types it handed out, and its
/// state digest (so every failed call is proven to change nothing).
#[derive(Debug, Clone)]
pub struct Side<A> {
    /// The implementation.
    pub api: A,
    /// Node ids and type handles in creation order.
    pub names: Names,
    digest: fn(&A) -> u64,
}

impl<A: PhysHandlerApi> Side<A> {
    /// Registers the initial types.
    pub fn new(mut api: A, digest: fn(&A) -> u64) -> Self {
        let types = initial_types()
            .into_iter()
            .map(|t| api.register_type(t).expect("type"))
            .collect();
        let names = Names {
            types,
            ..Names::default()
        };
        Side { api, names, digest }
    }

    /// Applies `call`; panics if a failed call changed anything (the robustness contract).
    pub fn run(&mut self, call: &ApiCall) -> Outcome {
        apply_checked(&mut self.api, &mut self.names, call, &self.digest).unwrap_or_else(|broken| panic!("{broken}"))
    }
}

/// A fresh model, told that every page is mapped (as `RecordingPlatform::mapped()`).
pub fn new_model() -> Side<Model> {
    let mut model = Model::new(layout(), config()).expect("model");
    model.set_all_pages_mapped(true);
    Side::new(model, model_digest)
}

/// A fresh production manager on a recording platform where every page is mapped.
pub fn new_manager() -> Side<Manager<RecordingPlatform>> {
    let mgr = Manager::new(layout(), config(), RecordingPlatform::mapped()).expect("manager");
    let mut side = Side::new(mgr, manager_digest);
    side.api.platform_mut().take();
    side
}

/// Asserts that the whole observable state agrees: every RAM page descriptor (NEM bits
/// aside), the handler list (as views), the live count, and `check_sync` (empty unless the
/// model expects the stale-alias-count mismatch of `reset_aliased_page` without accounting).
pub fn assert_same_state(model: &Side<Model>, mgr: &Side<Manager<RecordingPlatform>>, context: &dyn std::fmt::Debug) {
    if let Err(diff) = compare::same_state(&mgr.api, &mgr.names, &model.api, &model.names) {
        panic!("after {context:?}, production and model differ (production first): {diff}");
    }
    let expected: Vec<Mismatch> = model.api.expected_sync_mismatches();
    assert_eq!(mgr.api.check_sync(), expected, "check_sync after {context:?}");
}
