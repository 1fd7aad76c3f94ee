//! Snapshot tests of page-state transitions (issue #6).
//!
//! Every scenario drives a `Manager<RecordingPlatform>` (pages reported as mapped, so TLB
//! flushes show) through a sequence of operations and snapshots the whole
//! [`TransitionTable`]: for each operation its result, its platform events, what changed and
//! the full state afterwards. Snapshots live in the top-level `snapshots/` folder, one file per
//! scenario. After every operation the harness also runs `check_sync` (a mismatch fails the
//! test unless the scenario expects one, in which case it is printed in the snapshot), and a
//! failing operation must leave the state digest unchanged and produce no platform event.

use std::fmt::Debug;

use insta::{assert_snapshot, Settings};
use pgmsim::render::{self, TransitionTable};
use pgmsim::{
    Error, HandlerId, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig, MemoryLayout,
    Mmio2Handle, NemMode, OpResult, RecordingPlatform, ShadowUpdate,
};

type M = Manager<RecordingPlatform>;

/// A result shown verbatim (for batch steps and formatted query answers).
struct Shown(String);

impl Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const K: u64 = 0x1000;

fn settings() -> Settings {
    let mut s = Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// A scenario under construction: the manager and its transition table.
struct Scenario {
    pgm: M,
    table: TransitionTable,
    /// Whether `check_sync` mismatches are expected (printed instead of failing).
    allow_mismatches: bool,
}

impl Scenario {
    fn new(title: &str, layout: MemoryLayout) -> Self {
        Self::with(title, layout, ManagerConfig::default(), RecordingPlatform::mapped())
    }

    fn with(title: &str, layout: MemoryLayout, config: ManagerConfig, platform: RecordingPlatform) -> Self {
        let pgm = Manager::new(layout, config, platform).expect("valid layout and config");
        let table = TransitionTable::start(title, &pgm);
        Scenario {
            pgm,
            table,
            allow_mismatches: false,
        }
    }

    fn nem(title: &str, layout: MemoryLayout, nem: NemMode) -> Self {
        let config = ManagerConfig {
            nem,
            ..ManagerConfig::default()
        };
        let mut sc = Self::with(title, layout, config, RecordingPlatform::mapped());
        sc.table.note(format!("NEM mode: {nem:?}"));
        sc
    }

    /// Registers a handler type (setup, noted in the table's preamble or after the last step).
    fn ty(&mut self, kind: HandlerKind, not_in_hm: bool, desc: &str) -> HandlerTypeHandle {
        let mut config = HandlerTypeConfig::new(kind, desc);
        config.not_in_hm = not_in_hm;
        let ty = self.pgm.register_type(config).expect("type slot");
        self.table.note(format!(
            "handler type {desc:?}: {kind:?}{}",
            if not_in_hm { ", not-in-HM" } else { "" }
        ));
        ty
    }

    /// Runs and records one operation.
    fn op<R: Debug>(&mut self, text: &str, f: impl FnOnce(&mut M) -> R) -> R {
        assert!(self.pgm.platform().events.is_empty(), "stray events before {text}");
        let r = f(&mut self.pgm);
        let events = self.pgm.platform_mut().take();
        self.table.record(text, &r, &events, &self.pgm);
        let mismatches = self.pgm.check_sync();
        if !mismatches.is_empty() {
            assert!(self.allow_mismatches, "{text}: check_sync reports {mismatches:?}");
            for m in mismatches {
                // Pretty hex Debug, folded onto one line: addresses read as addresses.
                let text = format!("{m:#x?}").split_whitespace().collect::<Vec<_>>().join(" ");
                self.table.note(format!("check_sync: {text}"));
            }
        }
        r
    }

    /// Runs an operation that must succeed with `expected`.
    fn ok(&mut self, text: &str, expected: OpResult, f: impl FnOnce(&mut M) -> OpResult) {
        let r = self.op(text, f);
        assert_eq!(r, expected, "{text}");
    }

    /// Runs an operation that must fail with `expected`, change nothing and call no platform hook.
    fn fails<T: Debug>(&mut self, text: &str, expected: Error, f: impl FnOnce(&mut M) -> Result<T, Error>) {
        let before = self.pgm.state_digest();
        let r = self.op(text, f);
        assert_eq!(r.as_ref().err(), Some(&expected), "{text}");
        assert_eq!(
            self.pgm.state_digest(),
            before,
            "{text}: a failed operation changed the state"
        );
        let last = self.table.steps().last().expect("just recorded");
        assert!(last.events.is_empty(), "{text}: a failed operation called the platform");
        assert!(
            last.changes.is_empty(),
            "{text}: a failed operation changed the rendering"
        );
    }

    /// Runs and records an operation that must create a node; the table shows the id as
    /// `node <slot> gen <generation>`.
    fn new_node(&mut self, text: &str, f: impl FnOnce(&mut M) -> Result<HandlerId, Error>) -> HandlerId {
        let mut created = None;
        self.op(text, |m| {
            let r = f(m);
            created = r.ok();
            r.map(|id| Shown(render::handler_id(id)))
        })
        .expect(text);
        created.expect(text)
    }

    fn note(&mut self, line: impl Into<String>) {
        self.table.note(line);
    }

    fn render(&self) -> String {
        self.table.render()
    }
}

fn ram(pages: u32) -> MemoryLayout {
    MemoryLayout::builder().ram(0, pages).build().unwrap()
}

/// RAM 0x0 (8 pages), MMIO 0x10000 (8 pages), an unmapped MMIO2 region #1 of 4 pages.
fn alias_world() -> (MemoryLayout, Mmio2Handle) {
    let (b, region) = MemoryLayout::builder().ram(0, 8).mmio(0x10000, 8).mmio2_region(4);
    (b.build().unwrap(), region)
}

/// RAM 0x0 (4 pages) and an 8-page MMIO2 region #1 mapped above 4 GiB.
const MMIO2_BASE: u64 = 0x1_0000_0000;
fn dirty_world(pages: u32) -> MemoryLayout {
    let (b, region) = MemoryLayout::builder().ram(0, 4).mmio2_region(pages);
    b.map_mmio2(region, MMIO2_BASE).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Sub-page Write handlers sharing pages.
// ---------------------------------------------------------------------------------------------

fn two_sub_page_handlers(title: &str) -> Scenario {
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register A 0x1800..=0x27ff Write", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1800, 0x27ff, w, 0xa, Some("A"))
    });
    sc.ok(
        "register B 0x2800..=0x37ff Write (page 2 already W: no PTE update)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x2800, 0x37ff, w, 0xb, Some("B")),
    );
    sc
}

#[test]
fn sub_page_two_write_handlers_deregister_low_first() {
    let mut sc = two_sub_page_handlers("two sub-page Write handlers share page 2; deregister A then B");
    sc.ok(
        "deregister A 0x1800 (page 2 reset, then recalculated from B above)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x1800),
    );
    sc.ok(
        "deregister B 0x2800 (nothing left on page 2)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    settings().bind(|| assert_snapshot!("sub_page_two_write_handlers_deregister_low_first", sc.render()));
}

#[test]
fn sub_page_two_write_handlers_deregister_high_first() {
    let mut sc = two_sub_page_handlers("two sub-page Write handlers share page 2; deregister B then A");
    sc.ok(
        "deregister B 0x2800 (page 2 reset, then recalculated from A below)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    sc.ok("deregister A 0x1800", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x1800)
    });
    settings().bind(|| assert_snapshot!("sub_page_two_write_handlers_deregister_high_first", sc.render()));
}

fn three_in_one_page(title: &str) -> Scenario {
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register A 0x2000..=0x23ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2000, 0x23ff, w, 1, Some("A"))
    });
    sc.ok("register B 0x2400..=0x27ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2400, 0x27ff, w, 2, Some("B"))
    });
    sc.ok("register C 0x2800..=0x2fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2800, 0x2fff, w, 3, Some("C"))
    });
    sc
}

#[test]
fn sub_page_three_handlers_one_page_deregister_middle_low_high() {
    let mut sc = three_in_one_page("three Write handlers inside page 2; deregister B, A, C");
    sc.ok(
        "deregister B (both neighbours still on page 2)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2400),
    );
    sc.ok("deregister A (C still on page 2)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x2000)
    });
    sc.ok("deregister C (page 2 free)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x2800)
    });
    settings().bind(|| {
        assert_snapshot!(
            "sub_page_three_handlers_one_page_deregister_middle_low_high",
            sc.render()
        )
    });
}

#[test]
fn sub_page_three_handlers_one_page_deregister_high_low_middle() {
    let mut sc = three_in_one_page("three Write handlers inside page 2; deregister C, A, B");
    sc.ok(
        "deregister C (walks below: B, then A)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    sc.ok("deregister A (walks above: B)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x2000)
    });
    sc.ok("deregister B (page 2 free)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x2400)
    });
    settings().bind(|| {
        assert_snapshot!(
            "sub_page_three_handlers_one_page_deregister_high_low_middle",
            sc.render()
        )
    });
}

#[test]
fn sub_page_three_chained_handlers_deregister_middle_first() {
    let mut sc = Scenario::new(
        "three chained Write handlers sharing pages 2 and 4; deregister B, C, A",
        ram(8),
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register A 0x1000..=0x27ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x27ff, w, 1, Some("A"))
    });
    sc.ok("register B 0x2800..=0x47ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2800, 0x47ff, w, 2, Some("B"))
    });
    sc.ok("register C 0x4800..=0x5fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x4800, 0x5fff, w, 3, Some("C"))
    });
    sc.ok(
        "deregister B (pages 2 and 4 recalculated from A below and C above)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    sc.ok("deregister C (page 4 free)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x4800)
    });
    sc.ok("deregister A", Ok(pgmsim::Status::Success), |m| m.deregister(0x1000));
    settings().bind(|| assert_snapshot!("sub_page_three_chained_handlers_deregister_middle_first", sc.render()));
}

#[test]
fn register_over_pages_already_raised() {
    let mut sc = Scenario::new(
        "only upgrades: registering over pages already in a higher or equal state",
        ram(8),
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register A 0x1000..=0x1bff Write", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x1bff, w, 1, None)
    });
    sc.ok(
        "register B 0x1c00..=0x3fff Write (page 1 already W: only pages 2-3 updated)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x1c00, 0x3fff, w, 2, None),
    );
    sc.ok(
        "register C 0x4000..=0x4000 Write (one byte, SPEC difference 3)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x4000, 0x4000, w, 3, None),
    );
    sc.ok(
        "register D 0x4001..=0x4fff Write (page 4 already W: no event at all)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x4001, 0x4fff, w, 4, None),
    );
    settings().bind(|| assert_snapshot!("register_over_pages_already_raised", sc.render()));
}

#[test]
fn not_in_hm_write_handler_sets_and_clears_flag() {
    let mut sc = Scenario::new(
        "not-in-HM Write handler: whole pages only, flag set and cleared",
        ram(8),
    );
    let w = sc.ty(HandlerKind::Write, true, "write-nohm");
    sc.fails(
        "register 0x1000..=0x17ff (not-in-HM Write must be whole pages)",
        Error::InvalidParameter,
        |m| m.register(0x1000, 0x17ff, w, 0, None),
    );
    sc.ok("register 0x1000..=0x2fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x2fff, w, 0, None)
    });
    sc.ok("temp-off page 0x2000 (flag kept)", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x2000)
    });
    sc.ok(
        "deregister 0x1000 (state and flag cleared)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x1000),
    );
    settings().bind(|| assert_snapshot!("not_in_hm_write_handler_sets_and_clears_flag", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// Temp-off and reset.
// ---------------------------------------------------------------------------------------------

#[test]
fn temp_off_then_reset_write() {
    let mut sc = Scenario::new("Write handler: temp-off pages, then reset re-arms them", ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register 0x2000..=0x5fff Write", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2000, 0x5fff, w, 0, None)
    });
    sc.ok(
        "temp-off 0x3000 (no PTE update, no TLB flush)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(0x2000, 0x3000),
    );
    sc.ok(
        "temp-off 0x5abc (any address in the page)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(0x2000, 0x5abc),
    );
    sc.ok(
        "temp-off 0x3000 again (already off: no-op)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(0x2000, 0x3000),
    );
    sc.ok(
        "reset 0x2000 (re-arms only the off pages, PTEs updated, TLBs flushed)",
        Ok(pgmsim::Status::Success),
        |m| m.reset(0x2000),
    );
    sc.ok(
        "reset 0x2000 again (nothing off: no event)",
        Ok(pgmsim::Status::Success),
        |m| m.reset(0x2000),
    );
    settings().bind(|| assert_snapshot!("temp_off_then_reset_write", sc.render()));
}

#[test]
fn temp_off_then_reset_all() {
    let mut sc = Scenario::new("All handler: temp-off, then reset re-arms to All", ram(8));
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok("register 0x1000..=0x3fff All", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x3fff, a, 0, None)
    });
    sc.ok("temp-off 0x1000", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x1000)
    });
    sc.ok("temp-off 0x3000", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x3000)
    });
    sc.ok("reset 0x1000", Ok(pgmsim::Status::Success), |m| m.reset(0x1000));
    sc.ok("temp-off 0x2000", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x2000)
    });
    sc.ok("deregister 0x1000 (PTEs untouched)", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x1000)
    });
    settings().bind(|| assert_snapshot!("temp_off_then_reset_all", sc.render()));
}

#[test]
fn temp_off_failures_leave_state_unchanged() {
    let (layout, _) = alias_world();
    let mut sc = Scenario::new("temp-off failures change nothing", layout);
    let w = sc.ty(HandlerKind::Write, false, "write");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register sub-page Write 0x1000..=0x27ff",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x1000, 0x27ff, w, 0, None),
    );
    sc.ok("register Write 0x4000..=0x5fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x4000, 0x5fff, w, 0, None)
    });
    sc.ok("register Mmio 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, None)
    });
    sc.fails("temp-off via 0x5000 (inside, not the start)", Error::NotFound, |m| {
        m.page_temp_off(0x5000, 0x5000)
    });
    sc.fails(
        "temp-off 0x6000 of handler 0x4000 (outside it)",
        Error::InvalidParameter,
        |m| m.page_temp_off(0x4000, 0x6000),
    );
    sc.fails(
        "temp-off on the sub-page handler (not whole pages)",
        Error::InvalidParameter,
        |m| m.page_temp_off(0x1000, 0x1000),
    );
    sc.fails("temp-off on the Mmio handler", Error::AccessDenied, |m| {
        m.page_temp_off(0x10000, 0x10000)
    });
    sc.fails("reset 0x4800 (no handler starts there)", Error::NotFound, |m| {
        m.reset(0x4800)
    });
    settings().bind(|| assert_snapshot!("temp_off_failures_leave_state_unchanged", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// MMIO aliasing.
// ---------------------------------------------------------------------------------------------

#[test]
fn mmio_alias_realias_alias_hc_and_reset() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new("Mmio handler: alias MMIO2, re-alias, alias HC, reset", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x13fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x13fff, mmio, 0, Some("dev"))
    });
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x0",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0),
    );
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x0 again",
        Ok(pgmsim::Status::AlreadyAliased),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0),
    );
    sc.ok(
        "re-alias 0x11000 -> MMIO2 #1 offset 0x2000 (reset first, emulator TLBs flushed)",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0x2000),
    );
    sc.ok(
        "alias 0x12000 -> MMIO2 #1 offset 0x3000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x12000, region, 0x3000),
    );
    sc.ok(
        "alias HC 0x13000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x10000, 0x13000, 0xfee0_0000),
    );
    sc.ok(
        "alias HC 0x13000 -> host 0xabc000 (already special-aliased, host ignored)",
        Ok(pgmsim::Status::AlreadyAliased),
        |m| m.page_alias_hc(0x10000, 0x13000, 0xabc000),
    );
    sc.fails("alias HC 0x11000 (an MMIO2 alias)", Error::NotMmio2, |m| {
        m.page_alias_hc(0x10000, 0x11000, 0xabc000)
    });
    sc.fails("alias MMIO2 0x13000 (a special alias)", Error::NotMmio2, |m| {
        m.page_alias_mmio2(0x10000, 0x13000, region, 0)
    });
    sc.ok(
        "reset 0x10000 (every alias back to a zero MMIO page in state All)",
        Ok(pgmsim::Status::Success),
        |m| m.reset(0x10000),
    );
    settings().bind(|| assert_snapshot!("mmio_alias_realias_alias_hc_and_reset", sc.render()));
}

#[test]
fn mmio_reset_with_only_special_alias_skips_emulator_flush() {
    let (layout, _) = alias_world();
    let mut sc = Scenario::new("Mmio reset with only an HC alias: no emulator TLB flush", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, None)
    });
    sc.ok(
        "alias HC 0x10000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x10000, 0x10000, 0xfee0_0000),
    );
    sc.ok("reset 0x10000", Ok(pgmsim::Status::Success), |m| m.reset(0x10000));
    sc.ok(
        "reset 0x10000 again (nothing aliased: no event)",
        Ok(pgmsim::Status::Success),
        |m| m.reset(0x10000),
    );
    settings().bind(|| assert_snapshot!("mmio_reset_with_only_special_alias_skips_emulator_flush", sc.render()));
}

#[test]
fn mmio_deregister_with_aliases() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new("Mmio handler deregistered while pages are aliased", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x12fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x12fff, mmio, 0, None)
    });
    sc.ok(
        "register Mmio 0x13000..=0x13fff (neighbour)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x13000, 0x13fff, mmio, 0, None),
    );
    sc.ok(
        "alias 0x10000 -> MMIO2 #1 offset 0x1000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x10000, region, 0x1000),
    );
    sc.ok(
        "alias HC 0x12000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x10000, 0x12000, 0xfee0_0000),
    );
    sc.ok(
        "deregister 0x10000 (aliases reset with emulator flush, then every page None)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x10000),
    );
    settings().bind(|| assert_snapshot!("mmio_deregister_with_aliases", sc.render()));
}

#[test]
fn mmio_alias_failures_leave_state_unchanged() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new("alias failures change nothing", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register Mmio 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, None)
    });
    sc.ok("register Write 0x2000..=0x2fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2000, 0x2fff, w, 0, None)
    });
    sc.fails("alias MMIO2 region #9", Error::OutOfRange, |m| {
        m.page_alias_mmio2(0x10000, 0x10000, Mmio2Handle(9), 0)
    });
    sc.fails("alias MMIO2 region #0 (never valid)", Error::OutOfRange, |m| {
        m.page_alias_mmio2(0x10000, 0x10000, Mmio2Handle(0), 0)
    });
    sc.fails("alias MMIO2 #1 offset 0x4000 (past its end)", Error::OutOfRange, |m| {
        m.page_alias_mmio2(0x10000, 0x10000, region, 0x4000)
    });
    sc.fails("alias via 0x11000 (inside, not the start)", Error::NotFound, |m| {
        m.page_alias_mmio2(0x11000, 0x11000, region, 0)
    });
    sc.fails(
        "alias page 0x12000 of handler 0x10000 (outside it)",
        Error::InvalidParameter,
        |m| m.page_alias_mmio2(0x10000, 0x12000, region, 0),
    );
    sc.fails("alias MMIO2 into the Write handler", Error::AccessDenied, |m| {
        m.page_alias_mmio2(0x2000, 0x2000, region, 0)
    });
    sc.fails("alias HC into the Write handler", Error::AccessDenied, |m| {
        m.page_alias_hc(0x2000, 0x2000, 0xfee0_0000)
    });
    sc.fails(
        "alias HC host 0x1_0000_0000_0000 (over 48 bits)",
        Error::InvalidParameter,
        |m| m.page_alias_hc(0x10000, 0x10000, 1 << 48),
    );
    settings().bind(|| assert_snapshot!("mmio_alias_failures_leave_state_unchanged", sc.render()));
}

#[test]
fn reset_aliased_page_with_accounting() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new("reset_aliased_page with accounting keeps the count right", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x13fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x13fff, mmio, 0, None)
    });
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x0",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0),
    );
    sc.ok(
        "alias HC 0x12000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x10000, 0x12000, 0xfee0_0000),
    );
    sc.ok(
        "reset aliased page 0x11abc, accounting",
        Ok(pgmsim::Status::Success),
        |m| m.reset_aliased_page(0x11abc, true),
    );
    sc.ok(
        "reset aliased page 0x12000, accounting",
        Ok(pgmsim::Status::Success),
        |m| m.reset_aliased_page(0x12000, true),
    );
    sc.fails(
        "reset aliased page 0x12000 again (no longer aliased)",
        Error::WrongType,
        |m| m.reset_aliased_page(0x12000, true),
    );
    sc.fails("reset aliased page 0x3000 (RAM)", Error::WrongType, |m| {
        m.reset_aliased_page(0x3000, true)
    });
    sc.fails(
        "reset aliased page 0x80000 (no RAM range)",
        Error::InvalidParameter,
        |m| m.reset_aliased_page(0x80000, false),
    );
    settings().bind(|| assert_snapshot!("reset_aliased_page_with_accounting", sc.render()));
}

#[test]
fn reset_aliased_page_without_accounting_leaves_stale_count() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new(
        "reset_aliased_page without accounting: the caller owns the count",
        layout,
    );
    sc.allow_mismatches = true;
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x13fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x13fff, mmio, 0, None)
    });
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x1000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0x1000),
    );
    sc.ok(
        "reset aliased page 0x11000, no accounting (aliased count stays 1)",
        Ok(pgmsim::Status::Success),
        |m| m.reset_aliased_page(0x11000, false),
    );
    sc.ok(
        "reset 0x10000 (zeroes the counts; no alias left to reset)",
        Ok(pgmsim::Status::Success),
        |m| m.reset(0x10000),
    );
    settings().bind(|| assert_snapshot!("reset_aliased_page_without_accounting_leaves_stale_count", sc.render()));
}

#[test]
fn vm_reset_resets_every_alias() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::new("VM reset: every alias of every Mmio handler, with accounting", layout);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register Mmio A 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, Some("A"))
    });
    sc.ok("register Mmio B 0x14000..=0x17fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x14000, 0x17fff, mmio, 0, Some("B"))
    });
    sc.ok(
        "register Write 0x1000..=0x1fff (untouched by VM reset)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x1000, 0x1fff, w, 0, None),
    );
    sc.ok("temp-off 0x1000", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x1000)
    });
    sc.ok(
        "alias A 0x11000 -> MMIO2 #1 offset 0x0",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x11000, region, 0),
    );
    sc.ok(
        "alias B 0x14000 -> MMIO2 #1 offset 0x1000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x14000, 0x14000, region, 0x1000),
    );
    sc.ok(
        "alias HC B 0x17000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x14000, 0x17000, 0xfee0_0000),
    );
    sc.ok(
        "VM reset (one emulator TLB flush at the end)",
        Ok(pgmsim::Status::Success),
        |m| m.vm_reset(),
    );
    sc.ok(
        "VM reset again (nothing aliased: no event)",
        Ok(pgmsim::Status::Success),
        |m| m.vm_reset(),
    );
    settings().bind(|| assert_snapshot!("vm_reset_resets_every_alias", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// MMIO2 dirty tracking.
// ---------------------------------------------------------------------------------------------

#[test]
fn dirty_tracking_harvest_with_bitmap() {
    let mut sc = Scenario::new(
        "MMIO2 dirty tracking above 4 GiB: temp-off marks dirty, harvest re-arms",
        dirty_world(8),
    );
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    let last = MMIO2_BASE + 8 * K - 1;
    sc.ok(
        "register Write over the whole MMIO2 mapping",
        Ok(pgmsim::Status::Success),
        |m| m.register(MMIO2_BASE, last, w, 0, Some("vram")),
    );
    for page in [1u64, 3, 4] {
        sc.ok(
            &format!("guest writes page {page}: temp-off (dirty)"),
            Ok(pgmsim::Status::Success),
            |m| m.page_temp_off(MMIO2_BASE, MMIO2_BASE + page * K),
        );
    }
    let mut bitmap = [0u64; 1];
    sc.ok(
        "harvest: reset_mmio2_with_bitmap offset 0",
        Ok(pgmsim::Status::Success),
        |m| m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut bitmap, 0),
    );
    sc.note(format!(
        "bitmap after harvest (offset 0):\n{}",
        render::bitmap(&bitmap, 16)
    ));
    let mut bitmap = [0u64; 1];
    sc.ok("harvest again with nothing dirty", Ok(pgmsim::Status::Success), |m| {
        m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut bitmap, 0)
    });
    sc.note(format!(
        "bitmap after harvest (offset 0):\n{}",
        render::bitmap(&bitmap, 16)
    ));
    sc.ok(
        "guest writes page 7: temp-off (dirty)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(MMIO2_BASE, MMIO2_BASE + 7 * K),
    );
    sc.ok(
        "guest writes page 0: temp-off (dirty)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(MMIO2_BASE, MMIO2_BASE),
    );
    let mut bitmap = [0u64; 2];
    sc.ok(
        "harvest: reset_mmio2_with_bitmap offset 60 (bits cross a word)",
        Ok(pgmsim::Status::Success),
        |m| m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut bitmap, 60),
    );
    sc.note(format!(
        "bitmap after harvest (offset 60):\n{}",
        render::bitmap(&bitmap, 72)
    ));
    settings().bind(|| assert_snapshot!("dirty_tracking_harvest_with_bitmap", sc.render()));
}

#[test]
fn dirty_tracking_two_chunks_share_one_bitmap() {
    let mut sc = Scenario::new(
        "two dirty-tracked chunks of one MMIO2 region share a bitmap at offsets 0 and 4",
        dirty_world(8),
    );
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    sc.ok("register chunk 0: pages 0-3", Ok(pgmsim::Status::Success), |m| {
        m.register(MMIO2_BASE, MMIO2_BASE + 4 * K - 1, w, 0, Some("chunk0"))
    });
    sc.ok("register chunk 1: pages 4-7", Ok(pgmsim::Status::Success), |m| {
        m.register(MMIO2_BASE + 4 * K, MMIO2_BASE + 8 * K - 1, w, 1, Some("chunk1"))
    });
    sc.ok("dirty page 2 (chunk 0)", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(MMIO2_BASE, MMIO2_BASE + 2 * K)
    });
    sc.ok("dirty page 4 (chunk 1, its page 0)", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(MMIO2_BASE + 4 * K, MMIO2_BASE + 4 * K)
    });
    sc.ok("dirty page 7 (chunk 1, its page 3)", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(MMIO2_BASE + 4 * K, MMIO2_BASE + 7 * K)
    });
    let mut bitmap = [0u64; 1];
    sc.ok("harvest chunk 0 at offset 0", Ok(pgmsim::Status::Success), |m| {
        m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut bitmap, 0)
    });
    sc.ok("harvest chunk 1 at offset 4", Ok(pgmsim::Status::Success), |m| {
        m.reset_mmio2_with_bitmap(MMIO2_BASE + 4 * K, &mut bitmap, 4)
    });
    sc.note(format!(
        "shared bitmap after both harvests:\n{}",
        render::bitmap(&bitmap, 8)
    ));
    settings().bind(|| assert_snapshot!("dirty_tracking_two_chunks_share_one_bitmap", sc.render()));
}

#[test]
fn dirty_tracking_failures_and_resync() {
    let mut platform = RecordingPlatform::mapped();
    platform.answer = ShadowUpdate {
        flush_tlbs: true,
        resync: true,
    };
    let mut sc = Scenario::with(
        "bitmap reset failures change nothing; a platform resync gives GcPhysAliased / SyncCr3",
        dirty_world(4),
        ManagerConfig::default(),
        platform,
    );
    sc.note("platform answers every PTE update with flush_tlbs + resync (reverse map overflowed)");
    let w = sc.ty(HandlerKind::Write, false, "mmio2-dirty");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register Write over MMIO2 (resync: GcPhysAliased)",
        Ok(pgmsim::Status::GcPhysAliased),
        |m| m.register(MMIO2_BASE, MMIO2_BASE + 4 * K - 1, w, 0, None),
    );
    sc.ok(
        "register All 0x1000..=0x1fff (resync: GcPhysAliased)",
        Ok(pgmsim::Status::GcPhysAliased),
        |m| m.register(0x1000, 0x1fff, a, 0, None),
    );
    sc.ok("dirty page 1", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(MMIO2_BASE, MMIO2_BASE + K)
    });
    let mut small = [0u64; 1];
    sc.fails(
        "harvest at offset 61 (needs 65 bits, bitmap has 64)",
        Error::InvalidParameter,
        |m| m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut small, 61),
    );
    sc.fails("harvest the All handler", Error::WrongType, |m| {
        m.reset_mmio2_with_bitmap(0x1000, &mut small, 0)
    });
    sc.fails(
        "harvest via 0x100001000 (inside, not the start)",
        Error::NotFound,
        |m| m.reset_mmio2_with_bitmap(MMIO2_BASE + K, &mut small, 0),
    );
    assert_eq!(small, [0], "failed harvests wrote no bit");
    sc.ok(
        "harvest at offset 60 (fits exactly; resync: SyncCr3)",
        Ok(pgmsim::Status::SyncCr3),
        |m| m.reset_mmio2_with_bitmap(MMIO2_BASE, &mut small, 60),
    );
    sc.note(format!("bitmap:\n{}", render::bitmap(&small, 64)));
    settings().bind(|| assert_snapshot!("dirty_tracking_failures_and_resync", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// Failures of register / deregister / lifecycle calls.
// ---------------------------------------------------------------------------------------------

#[test]
fn register_failures_leave_state_unchanged() {
    let layout = MemoryLayout::builder().ram(0, 8).ram(0x8000, 4).build().unwrap();
    let mut sc = Scenario::new("register failures, in validation order, change nothing", layout);
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Write 0x2000..=0x27ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2000, 0x27ff, w, 0, None)
    });
    sc.fails("register with a made-up type handle", Error::InvalidHandle, |m| {
        m.register(0x4000, 0x4fff, HandlerTypeHandle(0x1234_5678), 0, None)
    });
    sc.fails(
        "register 0x4fff..=0x4000 (first > last)",
        Error::InvalidParameter,
        |m| m.register(0x4fff, 0x4000, w, 0, None),
    );
    sc.fails(
        "register 0x0..=0x1_0000_0000 (over 4 GiB, checked before the RAM range)",
        Error::InvalidParameter,
        |m| m.register(0, 0x1_0000_0000, w, 0, None),
    );
    sc.fails(
        "register All 0x4000..=0x47ff (not whole pages)",
        Error::InvalidParameter,
        |m| m.register(0x4000, 0x47ff, a, 0, None),
    );
    sc.fails(
        "register Mmio 0x4800..=0x4fff (not whole pages)",
        Error::InvalidParameter,
        |m| m.register(0x4800, 0x4fff, mmio, 0, None),
    );
    sc.fails("register 0x20000..=0x20fff (no RAM range)", Error::NoRamRange, |m| {
        m.register(0x20000, 0x20fff, w, 0, None)
    });
    sc.fails(
        "register 0x7000..=0x8fff (straddles two RAM ranges)",
        Error::NoRamRange,
        |m| m.register(0x7000, 0x8fff, w, 0, None),
    );
    sc.fails(
        "register 0x1000..=0x2000 (overlaps the handler by one byte)",
        Error::Conflict,
        |m| m.register(0x1000, 0x2000, w, 0, None),
    );
    sc.fails(
        "register 0x27ff..=0x2fff (overlaps its last byte)",
        Error::Conflict,
        |m| m.register(0x27ff, 0x2fff, w, 0, None),
    );
    sc.ok(
        "register 0x2800..=0x2fff (adjacent is fine)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x2800, 0x2fff, w, 0, None),
    );
    settings().bind(|| assert_snapshot!("register_failures_leave_state_unchanged", sc.render()));
}

#[test]
fn deregister_and_query_failures_leave_state_unchanged() {
    let mut sc = Scenario::new("deregister / change_user_arg failures change nothing; queries", ram(8));
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register Write 0x1000..=0x2fff user 0x10",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x1000, 0x2fff, w, 0x10, None),
    );
    sc.ok(
        "register All 0x4000..=0x4fff user 0x20",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x4000, 0x4fff, a, 0x20, None),
    );
    sc.fails(
        "deregister 0x2000 (inside, not the start: SPEC difference 1)",
        Error::NotFound,
        |m| m.deregister(0x2000),
    );
    sc.fails("deregister 0x6000 (no handler)", Error::NotFound, |m| {
        m.deregister(0x6000)
    });
    sc.fails("change user arg via 0x1800", Error::NotFound, |m| {
        m.change_user_arg(0x1800, 0x99)
    });
    sc.ok("change user arg of 0x1000 to 0x11", Ok(pgmsim::Status::Success), |m| {
        m.change_user_arg(0x1000, 0x11)
    });
    let q = sc.op("is_registered(0x2abc)", |m| m.is_registered(0x2abc));
    assert!(q);
    let q = sc.op("is_registered(0x3000)", |m| m.is_registered(0x3000));
    assert!(!q);
    let q = sc.op("is_all(0x1000)", |m| m.is_all(0x1000));
    assert_eq!(q, Ok(false));
    let q = sc.op("is_all(0x4fff)", |m| m.is_all(0x4fff));
    assert_eq!(q, Ok(true));
    sc.fails("is_all(0x3000) (no handler: SPEC difference 1)", Error::NotFound, |m| {
        m.is_all(0x3000)
    });
    let q = sc.op("lookup(0x2fff)", |m| {
        m.lookup(0x2fff)
            .map(|h| Shown(format!("{:#x}..={:#x} user {:#x}", h.key, h.key_last, h.user)))
    });
    assert_eq!(q.map(|s| s.0).as_deref(), Some("0x1000..=0x2fff user 0x11"));
    settings().bind(|| assert_snapshot!("deregister_and_query_failures_leave_state_unchanged", sc.render()));
}

#[test]
fn handler_lifecycle_create_dup_register_ex_deregister_ex_destroy() {
    let mut sc = Scenario::new(
        "handler node lifecycle: create, dup, register_ex, deregister_ex, destroy",
        ram(8),
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let h1 = sc.new_node("create All user 0x1 \"first\"", |m| m.create(a, 1, Some("first")));
    let h2 = sc.new_node("dup first", |m| m.dup(h1));
    let h3 = sc.new_node("create Write user 0x3 (type description)", |m| m.create(w, 3, None));
    sc.fails("create with a made-up type", Error::InvalidHandle, |m| {
        m.create(HandlerTypeHandle(7), 0, None)
    });
    sc.ok("register_ex first 0x1000..=0x1fff", Ok(pgmsim::Status::Success), |m| {
        m.register_ex(h1, 0x1000, 0x1fff)
    });
    sc.ok("register_ex dup 0x3000..=0x3fff", Ok(pgmsim::Status::Success), |m| {
        m.register_ex(h2, 0x3000, 0x3fff)
    });
    sc.fails("register_ex first again", Error::WrongOrder, |m| {
        m.register_ex(h1, 0x5000, 0x5fff)
    });
    sc.fails("register_ex Write node over dup (conflict)", Error::Conflict, |m| {
        m.register_ex(h3, 0x3800, 0x3fff)
    });
    sc.fails("destroy first while registered", Error::WrongOrder, |m| m.destroy(h1));
    sc.ok("deregister_ex first (node kept)", Ok(pgmsim::Status::Success), |m| {
        m.deregister_ex(h1)
    });
    sc.fails("deregister_ex first again (not registered)", Error::NotFound, |m| {
        m.deregister_ex(h1)
    });
    sc.ok(
        "register_ex first again at 0x5000..=0x6fff",
        Ok(pgmsim::Status::Success),
        |m| m.register_ex(h1, 0x5000, 0x6fff),
    );
    sc.ok("deregister_ex first", Ok(pgmsim::Status::Success), |m| {
        m.deregister_ex(h1)
    });
    sc.ok("destroy first", Ok(pgmsim::Status::Success), |m| m.destroy(h1));
    sc.fails("destroy first again (stale id)", Error::InvalidHandle, |m| {
        m.destroy(h1)
    });
    sc.fails("dup of the stale id", Error::InvalidHandle, |m| m.dup(h1));
    sc.fails("register_ex with the stale id", Error::InvalidHandle, |m| {
        m.register_ex(h1, 0x5000, 0x5fff)
    });
    sc.ok(
        "deregister dup via its start 0x3000 (frees the node)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x3000),
    );
    sc.fails("handler_info of the freed dup", Error::InvalidHandle, |m| {
        m.handler_info(h2)
    });
    let info = sc.op("handler_info of the unregistered Write node", |m| {
        m.handler_info(h3).map(|i| {
            let registered = i.key != pgmsim::addr::NIL_GC_PHYS;
            Shown(format!(
                "registered {registered}, {:?}, user {:#x}, {:?}",
                i.kind, i.user, i.description
            ))
        })
    });
    assert!(info.is_ok());
    sc.ok("destroy the Write node", Ok(pgmsim::Status::Success), |m| m.destroy(h3));
    settings().bind(|| {
        assert_snapshot!(
            "handler_lifecycle_create_dup_register_ex_deregister_ex_destroy",
            sc.render()
        )
    });
}

#[test]
fn allocator_exhaustion_capacity_32() {
    let config = ManagerConfig {
        max_handlers: 32,
        ..ManagerConfig::default()
    };
    let mut sc = Scenario::with(
        "handler allocator with capacity 32: exhaustion is an error, freeing one makes room",
        ram(48),
        config,
        RecordingPlatform::mapped(),
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    let all_ok = sc.op(
        "register 32 one-page Write handlers on pages 0-31 (one batch step)",
        |m| {
            let results: Vec<OpResult> = (0..32u64)
                .map(|p| m.register(p * K, p * K + K - 1, w, p, None))
                .collect();
            let ok = results.iter().filter(|r| **r == Ok(pgmsim::Status::Success)).count();
            Shown(format!("{ok} of {} Ok(Success)", results.len()))
        },
    );
    assert_eq!(all_ok.0, "32 of 32 Ok(Success)");
    sc.fails("register a 33rd on page 40", Error::OutOfResources, |m| {
        m.register(40 * K, 41 * K - 1, w, 40, None)
    });
    sc.fails(
        "register over page 3 (full allocator is checked before the range)",
        Error::OutOfResources,
        |m| m.register(3 * K, 4 * K - 1, w, 0, None),
    );
    sc.fails("create", Error::OutOfResources, |m| m.create(w, 0, None));
    sc.ok("deregister page 5's handler", Ok(pgmsim::Status::Success), |m| {
        m.deregister(5 * K)
    });
    sc.ok("register on page 40 now fits", Ok(pgmsim::Status::Success), |m| {
        m.register(40 * K, 41 * K - 1, w, 40, None)
    });
    sc.fails("register on page 41 (full again)", Error::OutOfResources, |m| {
        m.register(41 * K, 42 * K - 1, w, 41, None)
    });
    settings().bind(|| assert_snapshot!("allocator_exhaustion_capacity_32", sc.render()));
}

#[test]
fn unmapped_pages_need_no_tlb_flush() {
    let mut sc = Scenario::with(
        "platform reports nothing mapped: PTE updates but no TLB flush",
        ram(8),
        ManagerConfig::default(),
        RecordingPlatform::default(),
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register 0x1000..=0x2fff Write", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x2fff, w, 0, None)
    });
    sc.ok("temp-off 0x2000", Ok(pgmsim::Status::Success), |m| {
        m.page_temp_off(0x1000, 0x2000)
    });
    sc.ok("reset 0x1000", Ok(pgmsim::Status::Success), |m| m.reset(0x1000));
    settings().bind(|| assert_snapshot!("unmapped_pages_need_no_tlb_flush", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// NEM.
// ---------------------------------------------------------------------------------------------

#[test]
fn nem_notify_register_and_deregister() {
    let mut sc = Scenario::nem(
        "NEM notifications for registration and deregistration",
        ram(8),
        NemMode::Notify,
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok("register Write A 0x1800..=0x27ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1800, 0x27ff, w, 0, Some("A"))
    });
    sc.ok("register Write B 0x2800..=0x37ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2800, 0x37ff, w, 0, Some("B"))
    });
    sc.ok("register All 0x5000..=0x6fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x5000, 0x6fff, a, 0, None)
    });
    sc.ok(
        "deregister A (page 2 still B's: NEM told pages 1 only)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x1800),
    );
    sc.ok(
        "deregister B (edge pages free: NEM told pages 2-3)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    sc.ok("deregister All 0x5000", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x5000)
    });
    settings().bind(|| assert_snapshot!("nem_notify_register_and_deregister", sc.render()));
}

#[test]
fn nem_notify_sub_page_handlers_inside_one_page() {
    let mut sc = Scenario::nem(
        "NEM: deregistering a handler whose only page is still shared tells NEM nothing",
        ram(8),
        NemMode::Notify,
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok("register A 0x2000..=0x23ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2000, 0x23ff, w, 1, Some("A"))
    });
    sc.ok("register B 0x2400..=0x27ff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x2400, 0x27ff, w, 2, Some("B"))
    });
    sc.ok(
        "register C 0x2800..=0x3fff (page 3 whole)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x2800, 0x3fff, w, 3, Some("C")),
    );
    sc.ok(
        "deregister B (page 2 still shared: no NEM deregistration)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2400),
    );
    sc.ok(
        "deregister C (page 2 still A's: NEM told page 3 only)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2800),
    );
    sc.ok(
        "deregister A (page 2 free: NEM told page 2)",
        Ok(pgmsim::Status::Success),
        |m| m.deregister(0x2000),
    );
    settings().bind(|| assert_snapshot!("nem_notify_sub_page_handlers_inside_one_page", sc.render()));
}

#[test]
fn nem_notify_temp_off_alias_and_reset() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::nem(
        "NEM notifications for temp-off, aliasing and resets",
        layout,
        NemMode::Notify,
    );
    let w = sc.ty(HandlerKind::Write, false, "write");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Write 0x1000..=0x2fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x1000, 0x2fff, w, 0, None)
    });
    sc.ok(
        "temp-off 0x2000 (NEM protection back to rwx)",
        Ok(pgmsim::Status::Success),
        |m| m.page_temp_off(0x1000, 0x2000),
    );
    sc.ok("reset 0x1000", Ok(pgmsim::Status::Success), |m| m.reset(0x1000));
    sc.ok("register Mmio 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, None)
    });
    sc.ok(
        "alias 0x10000 -> MMIO2 #1 offset 0x0 (NEM backing changed)",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x10000, 0x10000, region, 0),
    );
    sc.ok(
        "alias HC 0x11000 -> host 0xfee00000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_hc(0x10000, 0x11000, 0xfee0_0000),
    );
    sc.ok("reset 0x10000", Ok(pgmsim::Status::Success), |m| m.reset(0x10000));
    sc.ok("deregister 0x10000", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x10000)
    });
    settings().bind(|| assert_snapshot!("nem_notify_temp_off_alias_and_reset", sc.render()));
}

#[test]
fn nem_exclusive_refuses_aliasing() {
    let (layout, region) = alias_world();
    let mut sc = Scenario::nem(
        "exclusive NEM mode: aliasing is NotSupportedInNemMode",
        layout,
        NemMode::Exclusive,
    );
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok("register Mmio 0x10000..=0x11fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x10000, 0x11fff, mmio, 0, None)
    });
    sc.fails(
        "alias 0x10000 -> MMIO2 #1 offset 0x0",
        Error::NotSupportedInNemMode,
        |m| m.page_alias_mmio2(0x10000, 0x10000, region, 0),
    );
    sc.fails(
        "alias HC 0x11000 -> host 0xfee00000",
        Error::NotSupportedInNemMode,
        |m| m.page_alias_hc(0x10000, 0x11000, 0xfee0_0000),
    );
    sc.fails(
        "alias with a bad region (the NEM check comes first)",
        Error::NotSupportedInNemMode,
        |m| m.page_alias_mmio2(0x10000, 0x10000, Mmio2Handle(9), 0),
    );
    sc.fails(
        "alias via a non-start address (the NEM check comes first)",
        Error::NotSupportedInNemMode,
        |m| m.page_alias_hc(0x11000, 0x11000, 0xfee0_0000),
    );
    sc.ok("deregister 0x10000", Ok(pgmsim::Status::Success), |m| {
        m.deregister(0x10000)
    });
    settings().bind(|| assert_snapshot!("nem_exclusive_refuses_aliasing", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// Rendering details: wrapping, type rows, windows.
// ---------------------------------------------------------------------------------------------

#[test]
fn render_page_map_wraps_and_marks_types() {
    let (b, region) = MemoryLayout::builder().ram(0, 70).mmio(0x100000, 4).mmio2_region(2);
    let layout = b.map_mmio2(region, 0x200000).build().unwrap();
    let mut sc = Scenario::new("page map wrapping (70 pages) and type rows", layout);
    let w = sc.ty(HandlerKind::Write, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Write 0x3e000..=0x41fff (crosses the line break)",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x3e000, 0x41fff, w, 0, None),
    );
    sc.ok(
        "register All on MMIO2 0x201000..=0x201fff",
        Ok(pgmsim::Status::Success),
        |m| m.register(0x201000, 0x201fff, a, 0, None),
    );
    sc.ok("register Mmio 0x100000..=0x101fff", Ok(pgmsim::Status::Success), |m| {
        m.register(0x100000, 0x101fff, mmio, 0, None)
    });
    sc.ok(
        "alias 0x101000 -> MMIO2 #1 offset 0x1000",
        Ok(pgmsim::Status::Success),
        |m| m.page_alias_mmio2(0x100000, 0x101000, region, 0x1000),
    );
    let window = render::page_map_range(&sc.pgm, 0xfe000, 8);
    sc.note(format!("page_map_range(0xfe000, 8):\n{window}"));
    settings().bind(|| assert_snapshot!("render_page_map_wraps_and_marks_types", sc.render()));
}

// ---------------------------------------------------------------------------------------------
// Simulator summaries: the JSON summary (with `trace_hash`) of fixed seeds, so any change to the
// generator, the world or the step loop is a visible, reviewed diff.
// ---------------------------------------------------------------------------------------------

fn sim_summary(seed: u64, mode: pgmsim_sim::mmu::Mode) -> String {
    let ov = pgmsim_sim::config::Overrides {
        mode: Some(mode),
        ..Default::default()
    };
    let r = pgmsim_sim::run_seed(seed, 1500, &ov, pgmsim_sim::CheckMode::Incremental);
    assert!(r.failure.is_none(), "seed {seed}: {:?}", r.failure);
    serde_json::to_string_pretty(&r.summary()).expect("summary serialises")
}

#[test]
fn sim_summary_seed_1_shadow() {
    settings().bind(|| {
        assert_snapshot!(
            "sim_summary_seed_1_shadow",
            sim_summary(1, pgmsim_sim::mmu::Mode::Shadow)
        )
    });
}

#[test]
fn sim_summary_seed_2_nem() {
    settings().bind(|| assert_snapshot!("sim_summary_seed_2_nem", sim_summary(2, pgmsim_sim::mmu::Mode::Nem)));
}

#[test]
fn sim_summary_seed_3_shadow() {
    settings().bind(|| {
        assert_snapshot!(
            "sim_summary_seed_3_shadow",
            sim_summary(3, pgmsim_sim::mmu::Mode::Shadow)
        )
    });
}
