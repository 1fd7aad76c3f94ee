//! MMIO aliasing (to an MMIO2 page or to a host page) and every way back: re-aliasing,
//! `reset`, deregistration, `reset_aliased_page` with and without accounting, VM reset.

use pgmsim::page::NIL_PAGE_ID;
use pgmsim::{
    Error, Gpa, HandlerKind, HandlerState as S, Hpa, Mismatch, NemMode, NemProtection as P, PageDescriptor, PageState,
    PageType, PhysHandlerApi, PlatformEvent, Status,
};
use pgmsim_testkit::{ApiCall, Outcome};

use crate::alias_world;
use crate::common::{invalidate, nem_dereg, prot, upd};
use crate::harness::{dereg, reg, reg_as, Scenario};

const FLUSH: PlatformEvent = PlatformEvent::FlushAllTlbs;
const FLUSH_EMULATOR: PlatformEvent = PlatformEvent::FlushEmulatorPhysTlbs;
/// The MMIO range of [`alias_world`].
const MMIO: u64 = 0x10000;

fn alias(addr: u64, page: u64, offset: u64) -> ApiCall {
    ApiCall::PageAliasMmio2 {
        addr,
        page,
        region: 1,
        offset,
    }
}

fn alias_hc(addr: u64, page: u64, host: u64) -> ApiCall {
    ApiCall::PageAliasHc {
        addr,
        page,
        host: Hpa(host),
    }
}

fn reset_aliased(page: u64, accounting: bool) -> ApiCall {
    ApiCall::ResetAliasedPage { page, accounting }
}

/// The world's shared zero page.
fn zero(sc: &Scenario) -> Hpa {
    sc.mgr().layout().zero_page
}

/// Page `i` of MMIO2 region #1 as the world starts.
fn mmio2_page(sc: &Scenario, i: u32) -> PageDescriptor {
    let layout = sc.mgr().layout();
    layout.initial_mmio2_page(&layout.mmio2_regions[0], i)
}

fn backing(gc_phys: u64, old: Hpa, new: Hpa, prot: P) -> PlatformEvent {
    PlatformEvent::NemBackingChanged {
        gc_phys: Gpa(gc_phys),
        old_host_phys: old,
        new_host_phys: new,
        prot,
    }
}

/// The events of one alias reset, as the seed's `pgmHandlerPhysicalResetAliasedPage` does
/// it: shadow PTEs cleared, TLBs flushed, page-map entry dropped, optionally the emulator's
/// TLBs flushed, and NEM told the page is back on the zero page.
fn alias_reset(sc: &Scenario, page: u64, flush_emulator: bool, old: Hpa) -> Vec<PlatformEvent> {
    let mut v = vec![upd(page, S::Disabled, true), FLUSH, invalidate(page)];
    if flush_emulator {
        v.push(FLUSH_EMULATOR);
    }
    v.push(backing(page, old, zero(sc), P::NONE));
    v
}

/// Asserts the page at `addr` is what its alias makes it: the backing and page id, type,
/// allocated, `Disabled`.
fn assert_aliased(sc: &Scenario, addr: u64, page_type: PageType, host: Hpa, page_id: u32) {
    let d = sc.mgr().page(addr).expect("RAM page");
    assert_eq!(
        (d.page_type(), d.host_phys(), d.page_id()),
        (page_type, host, page_id),
        "{addr:#x}"
    );
    assert_eq!(
        (d.state(), d.handler_state()),
        (PageState::Allocated, S::Disabled),
        "{addr:#x}"
    );
}

/// Asserts the page at `addr` is a plain zero-backed MMIO page in handler state `state`.
fn assert_plain_mmio(sc: &Scenario, addr: u64, state: S) {
    let d = sc.mgr().page(addr).expect("RAM page");
    assert_eq!(
        (d.page_type(), d.state(), d.host_phys()),
        (PageType::Mmio, PageState::Zero, zero(sc))
    );
    assert_eq!((d.page_id(), d.handler_state()), (NIL_PAGE_ID, state), "{addr:#x}");
}

fn scenario(title: &str, nem: NemMode) -> Scenario {
    match nem {
        NemMode::Off => Scenario::new(title, alias_world().0),
        _ => Scenario::nem(title, alias_world().0, nem),
    }
}

/// Alias, the same alias again (nothing changes, nothing is called), re-alias (the old alias
/// is reset first and the emulator's TLBs flushed), a host alias (again: any host page is
/// `AlreadyAliased`), the wrong-kind aliases both ways, and `reset` undoing every alias.
fn alias_realias_alias_hc_and_reset(nem: NemMode) -> Scenario {
    let mut sc = scenario("Mmio handler: alias MMIO2, re-alias, alias HC, reset", nem);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let (p0, p2) = (mmio2_page(&sc, 0), mmio2_page(&sc, 2));
    sc.ok(
        "register Mmio 0x10000..=0x13fff",
        Status::Success,
        reg_as(MMIO, 0x13fff, mmio, 0, "dev"),
    );
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x0",
        Status::Success,
        alias(MMIO, 0x11000, 0),
    );
    // No PTE update: the next fault maps the alias.
    sc.expect_events(&[invalidate(0x11000), backing(0x11000, zero(&sc), p0.host_phys(), P::RWX)]);
    assert_aliased(&sc, 0x11000, PageType::Mmio2AliasMmio, p0.host_phys(), p0.page_id());
    already_aliased(
        &mut sc,
        "alias 0x11000 -> MMIO2 #1 offset 0x0 again",
        alias(MMIO, 0x11000, 0),
    );
    let text = "re-alias 0x11000 -> MMIO2 #1 offset 0x2000 (reset first, emulator TLBs flushed)";
    sc.ok(text, Status::Success, alias(MMIO, 0x11000, 0x2000));
    let mut want = alias_reset(&sc, 0x11000, false, p0.host_phys());
    let new_backing = backing(0x11000, zero(&sc), p2.host_phys(), P::RWX);
    want.extend([FLUSH_EMULATOR, invalidate(0x11000), new_backing]);
    sc.expect_events(&want);
    assert_aliased(&sc, 0x11000, PageType::Mmio2AliasMmio, p2.host_phys(), p2.page_id());
    assert_eq!(sc.handler(MMIO).aliased_pages, 1);
    sc.ok(
        "alias 0x12000 -> MMIO2 #1 offset 0x3000",
        Status::Success,
        alias(MMIO, 0x12000, 0x3000),
    );
    alias_hc_then_reset(&mut sc);
    sc
}

/// Runs `call`, which must answer `AlreadyAliased`, call nothing and change nothing.
fn already_aliased(sc: &mut Scenario, text: &str, call: ApiCall) {
    let digest = sc.mgr().state_digest();
    sc.ok(text, Status::AlreadyAliased, call);
    sc.expect_events(&[]);
    assert_eq!(
        sc.mgr().state_digest(),
        digest,
        "{text}: AlreadyAliased changes nothing"
    );
}

/// The second half of [`alias_realias_alias_hc_and_reset`]: a host alias next to the two
/// MMIO2 aliases, the wrong-kind aliases both ways, and `reset` undoing all three.
fn alias_hc_then_reset(sc: &mut Scenario) {
    let (p2, p3, host) = (mmio2_page(sc, 2), mmio2_page(sc, 3), Hpa(0xfee0_0000));
    sc.ok(
        "alias HC 0x13000 -> host 0xfee00000",
        Status::Success,
        alias_hc(MMIO, 0x13000, host.0),
    );
    sc.expect_events(&[invalidate(0x13000), backing(0x13000, zero(sc), host, P::RWX)]);
    assert_aliased(sc, 0x13000, PageType::SpecialAliasMmio, host, NIL_PAGE_ID);
    let text = "alias HC 0x13000 -> host 0xabc000 (already special-aliased, host ignored)";
    already_aliased(sc, text, alias_hc(MMIO, 0x13000, 0xabc000));
    assert_aliased(sc, 0x13000, PageType::SpecialAliasMmio, host, NIL_PAGE_ID);
    sc.fails(
        "alias HC 0x11000 (an MMIO2 alias)",
        Error::NotMmio2,
        alias_hc(MMIO, 0x11000, 0xabc000),
    );
    sc.fails(
        "alias MMIO2 0x13000 (a special alias)",
        Error::NotMmio2,
        alias(MMIO, 0x13000, 0),
    );
    assert_eq!(sc.handler(MMIO).aliased_pages, 3);
    let text = "reset 0x10000 (every alias back to a zero MMIO page in state All)";
    sc.ok(text, Status::Success, ApiCall::Reset { addr: MMIO });
    let mut want = alias_reset(sc, 0x11000, false, p2.host_phys());
    want.extend(alias_reset(sc, 0x12000, false, p3.host_phys()));
    want.extend(alias_reset(sc, 0x13000, false, host));
    // One emulator flush at the end, because an MMIO2 alias was among them.
    want.push(FLUSH_EMULATOR);
    sc.expect_events(&want);
    for i in 0..4 {
        assert_plain_mmio(sc, MMIO + i * 0x1000, S::All);
    }
    assert_eq!(sc.handler(MMIO).aliased_pages, 0);
}

#[test]
fn mmio_alias_realias_alias_hc_and_reset() {
    let mut sc = alias_realias_alias_hc_and_reset(NemMode::Off);
    sc.snapshot("mmio_alias_realias_alias_hc_and_reset");
    // Any address inside the page and any offset inside the same MMIO2 page is the same alias.
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x1000",
        Status::Success,
        alias(MMIO, 0x11000, 0x1000),
    );
    already_aliased(
        &mut sc,
        "the same via 0x11123, offset 0x1abc",
        alias(MMIO, 0x11123, 0x1abc),
    );
    sc.ok(
        "alias HC 0x12000 -> host 0x5000",
        Status::Success,
        alias_hc(MMIO, 0x12000, 0x5000),
    );
    already_aliased(
        &mut sc,
        "alias HC via 0x12010, any host",
        alias_hc(MMIO, 0x12010, 0x1234_5000),
    );
    alias_realias_alias_hc_and_reset(NemMode::Notify);
}

#[test]
fn mmio_reset_with_only_special_alias_skips_emulator_flush() {
    let mut sc = scenario("Mmio reset with only an HC alias: no emulator TLB flush", NemMode::Off);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(MMIO, 0x11fff, mmio, 0),
    );
    sc.ok(
        "alias HC 0x10000 -> host 0xfee00000",
        Status::Success,
        alias_hc(MMIO, MMIO, 0xfee0_0000),
    );
    sc.ok("reset 0x10000", Status::Success, ApiCall::Reset { addr: MMIO });
    sc.expect_events(&alias_reset(&sc, MMIO, false, Hpa(0xfee0_0000)));
    let text = "reset 0x10000 again (nothing aliased: no event)";
    sc.ok(text, Status::Success, ApiCall::Reset { addr: MMIO });
    sc.expect_events(&[]);
    sc.snapshot("mmio_reset_with_only_special_alias_skips_emulator_flush");
}

/// Deregistering an Mmio handler with aliased pages resets each alias (emulator TLBs flushed
/// every time), tells NEM of the backing change of aliased pages and the protection change
/// of the others, and leaves every page exactly as the world started.
fn deregister_with_aliases(nem: NemMode) -> Scenario {
    let mut sc = scenario("Mmio handler deregistered while pages are aliased", nem);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let initial: Vec<PageDescriptor> = (0..4).map(|i| sc.mgr().page(MMIO + i * 0x1000).unwrap()).collect();
    sc.ok(
        "register Mmio 0x10000..=0x12fff",
        Status::Success,
        reg(MMIO, 0x12fff, mmio, 0),
    );
    let text = "register Mmio 0x13000..=0x13fff (neighbour)";
    sc.ok(text, Status::Success, reg(0x13000, 0x13fff, mmio, 0));
    sc.ok(
        "alias 0x10000 -> MMIO2 #1 offset 0x1000",
        Status::Success,
        alias(MMIO, MMIO, 0x1000),
    );
    sc.ok(
        "alias HC 0x12000 -> host 0xfee00000",
        Status::Success,
        alias_hc(MMIO, 0x12000, 0xfee0_0000),
    );
    let text = "deregister 0x10000 (aliases reset with emulator flush, then every page None)";
    sc.ok(text, Status::Success, dereg(MMIO));
    let mut want = alias_reset(&sc, MMIO, true, mmio2_page(&sc, 1).host_phys());
    want.push(prot(0x11000, P::NONE));
    want.extend(alias_reset(&sc, 0x12000, true, Hpa(0xfee0_0000)));
    want.push(nem_dereg(HandlerKind::Mmio, MMIO, 0x3000));
    sc.expect_events(&want);
    for (i, page) in initial.iter().enumerate().take(3) {
        let addr = MMIO + i as u64 * 0x1000;
        assert_plain_mmio(&sc, addr, S::None);
        assert!(!sc.mgr().page(addr).unwrap().not_in_hm());
        assert_eq!(
            sc.mgr().page(addr).unwrap().without_nem_state(),
            page.without_nem_state()
        );
    }
    assert_eq!(sc.mgr().handlers().len(), 1, "the neighbour stays");
    sc
}

#[test]
fn mmio_deregister_with_aliases() {
    deregister_with_aliases(NemMode::Off).snapshot("mmio_deregister_with_aliases");
    deregister_with_aliases(NemMode::Notify);
}

#[test]
fn mmio_alias_failures_leave_state_unchanged() {
    let mut sc = scenario("alias failures change nothing", NemMode::Off);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(MMIO, 0x11fff, mmio, 0),
    );
    sc.ok(
        "register Write 0x2000..=0x2fff",
        Status::Success,
        reg(0x2000, 0x2fff, w, 0),
    );
    let region = |region, offset| ApiCall::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO,
        region,
        offset,
    };
    sc.fails("alias MMIO2 region #9", Error::OutOfRange, region(9, 0));
    sc.fails("alias MMIO2 region #0 (never valid)", Error::OutOfRange, region(0, 0));
    sc.fails(
        "alias MMIO2 #1 offset 0x4000 (past its end)",
        Error::OutOfRange,
        region(1, 0x4000),
    );
    sc.fails(
        "alias via 0x11000 (inside, not the start)",
        Error::NotFound,
        alias(0x11000, 0x11000, 0),
    );
    let text = "alias page 0x12000 of handler 0x10000 (outside it)";
    sc.fails(text, Error::InvalidParameter, alias(MMIO, 0x12000, 0));
    sc.fails(
        "alias MMIO2 into the Write handler",
        Error::AccessDenied,
        alias(0x2000, 0x2000, 0),
    );
    sc.fails(
        "alias HC into the Write handler",
        Error::AccessDenied,
        alias_hc(0x2000, 0x2000, 0xfee0_0000),
    );
    let text = "alias HC host 0x1_0000_0000_0000 (over 48 bits)";
    sc.fails(text, Error::InvalidParameter, alias_hc(MMIO, MMIO, 1 << 48));
    sc.snapshot("mmio_alias_failures_leave_state_unchanged");
    // A RAM page under an Mmio handler is no MMIO page, either way; the failure leaks nothing
    // (the seed leaks its lock there: deliberate difference D2), so later calls still work.
    sc.ok(
        "register Mmio over RAM 0x4000..=0x4fff",
        Status::Success,
        reg(0x4000, 0x4fff, mmio, 0),
    );
    sc.fails("alias MMIO2 onto a RAM page", Error::NotMmio2, alias(0x4000, 0x4000, 0));
    sc.fails(
        "alias HC onto a RAM page",
        Error::NotMmio2,
        alias_hc(0x4000, 0x4000, 0x1000),
    );
    sc.ok("deregister 0x4000", Status::Success, dereg(0x4000));
    sc.ok(
        "alias 0x10000 -> MMIO2 #1 offset 0x0",
        Status::Success,
        alias(MMIO, MMIO, 0),
    );
}

/// `reset_aliased_page` with accounting keeps the count right: the page goes back to a zero
/// MMIO page in state `All`; a page no longer aliased, a RAM page and an address in no RAM
/// range are refused.
fn reset_aliased_with_accounting(nem: NemMode) -> Scenario {
    let mut sc = scenario("reset_aliased_page with accounting keeps the count right", nem);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Mmio 0x10000..=0x13fff",
        Status::Success,
        reg(MMIO, 0x13fff, mmio, 0),
    );
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x0",
        Status::Success,
        alias(MMIO, 0x11000, 0),
    );
    sc.ok(
        "alias HC 0x12000 -> host 0xfee00000",
        Status::Success,
        alias_hc(MMIO, 0x12000, 0xfee0_0000),
    );
    let text = "reset aliased page 0x11abc, accounting";
    sc.ok(text, Status::Success, reset_aliased(0x11abc, true));
    sc.expect_events(&alias_reset(&sc, 0x11000, true, mmio2_page(&sc, 0).host_phys()));
    assert_plain_mmio(&sc, 0x11000, S::All);
    assert_eq!(sc.handler(MMIO).aliased_pages, 1);
    let text = "reset aliased page 0x12000, accounting";
    sc.ok(text, Status::Success, reset_aliased(0x12000, true));
    assert_eq!(sc.handler(MMIO).aliased_pages, 0);
    let text = "reset aliased page 0x12000 again (no longer aliased)";
    sc.fails(text, Error::WrongType, reset_aliased(0x12000, true));
    sc.fails(
        "reset aliased page 0x3000 (RAM)",
        Error::WrongType,
        reset_aliased(0x3000, true),
    );
    let text = "reset aliased page 0x80000 (no RAM range)";
    sc.fails(text, Error::InvalidParameter, reset_aliased(0x80000, false));
    sc
}

#[test]
fn reset_aliased_page_with_accounting() {
    reset_aliased_with_accounting(NemMode::Off).snapshot("reset_aliased_page_with_accounting");
    reset_aliased_with_accounting(NemMode::Notify);
}

#[test]
fn reset_aliased_page_without_accounting_leaves_stale_count() {
    let mut sc = scenario(
        "reset_aliased_page without accounting: the caller owns the count",
        NemMode::Off,
    );
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let stale = |kept, found| {
        vec![Mismatch::AliasedCount {
            handler: MMIO,
            kept,
            found,
        }]
    };
    sc.ok(
        "register Mmio 0x10000..=0x13fff",
        Status::Success,
        reg(MMIO, 0x13fff, mmio, 0),
    );
    sc.ok(
        "alias 0x11000 -> MMIO2 #1 offset 0x1000",
        Status::Success,
        alias(MMIO, 0x11000, 0x1000),
    );
    let text = "reset aliased page 0x11000, no accounting (aliased count stays 1)";
    sc.ok(text, Status::Success, reset_aliased(0x11000, false));
    assert_eq!(sc.handler(MMIO).aliased_pages, 1);
    assert_eq!(sc.mgr().check_sync(), stale(1, 0), "the caller owns the count");
    // Reset zeroes the count (the seed's gate is the count, so it runs and finds nothing).
    let text = "reset 0x10000 (zeroes the counts; no alias left to reset)";
    sc.ok(text, Status::Success, ApiCall::Reset { addr: MMIO });
    sc.expect_events(&[]);
    assert_eq!(sc.mgr().check_sync(), vec![]);
    sc.snapshot("reset_aliased_page_without_accounting_leaves_stale_count");
    // Re-aliasing and VM reset move the count with the aliases, keeping the stale part.
    sc.ok("alias 0x10000", Status::Success, alias(MMIO, MMIO, 0));
    sc.ok("alias 0x11000", Status::Success, alias(MMIO, 0x11000, 0x1000));
    sc.ok(
        "reset aliased page 0x10010, accounting",
        Status::Success,
        reset_aliased(0x10010, true),
    );
    sc.fails("again", Error::WrongType, reset_aliased(MMIO, true));
    sc.ok(
        "reset aliased page 0x11000, no accounting",
        Status::Success,
        reset_aliased(0x11000, false),
    );
    assert_eq!(sc.mgr().check_sync(), stale(1, 0));
    sc.ok("alias HC 0x12000", Status::Success, alias_hc(MMIO, 0x12000, 0x5000));
    assert_eq!(sc.handler(MMIO).aliased_pages, 2);
    sc.ok("VM reset", Status::Success, ApiCall::VmReset);
    assert_eq!(sc.mgr().check_sync(), stale(1, 0));
    sc.ok("reset", Status::Success, ApiCall::Reset { addr: MMIO });
    sc.expect_events(&[]);
    assert_eq!(sc.mgr().check_sync(), vec![]);
}

/// VM reset undoes every alias of every Mmio handler with accounting, flushing the
/// emulator's TLBs once at the end, and leaves other handlers alone.
fn vm_reset_every_alias(nem: NemMode) -> Scenario {
    let mut sc = scenario("VM reset: every alias of every Mmio handler, with accounting", nem);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let w = sc.ty(HandlerKind::Write, false, "write");
    sc.ok(
        "register Mmio A 0x10000..=0x11fff",
        Status::Success,
        reg_as(MMIO, 0x11fff, mmio, 0, "A"),
    );
    sc.ok(
        "register Mmio B 0x14000..=0x17fff",
        Status::Success,
        reg_as(0x14000, 0x17fff, mmio, 0, "B"),
    );
    let text = "register Write 0x1000..=0x1fff (untouched by VM reset)";
    sc.ok(text, Status::Success, reg(0x1000, 0x1fff, w, 0));
    sc.ok(
        "temp-off 0x1000",
        Status::Success,
        ApiCall::PageTempOff {
            addr: 0x1000,
            page: 0x1000,
        },
    );
    sc.ok(
        "alias A 0x11000 -> MMIO2 #1 offset 0x0",
        Status::Success,
        alias(MMIO, 0x11000, 0),
    );
    sc.ok(
        "alias B 0x14000 -> MMIO2 #1 offset 0x1000",
        Status::Success,
        alias(0x14000, 0x14000, 0x1000),
    );
    let text = "alias HC B 0x17000 -> host 0xfee00000";
    sc.ok(text, Status::Success, alias_hc(0x14000, 0x17000, 0xfee0_0000));
    sc.ok(
        "VM reset (one emulator TLB flush at the end)",
        Status::Success,
        ApiCall::VmReset,
    );
    let mut want = alias_reset(&sc, 0x11000, false, mmio2_page(&sc, 0).host_phys());
    want.extend(alias_reset(&sc, 0x14000, false, mmio2_page(&sc, 1).host_phys()));
    want.extend(alias_reset(&sc, 0x17000, false, Hpa(0xfee0_0000)));
    want.push(FLUSH_EMULATOR);
    sc.expect_events(&want);
    assert!(sc.mgr().handlers().iter().all(|h| h.aliased_pages == 0));
    for a in [0x11000, 0x14000, 0x17000] {
        assert_plain_mmio(&sc, a, S::All);
    }
    assert_eq!((sc.hs(0x1000), sc.handler(0x1000).temp_off_pages), (S::Disabled, 1));
    sc.ok(
        "VM reset again (nothing aliased: no event)",
        Status::Success,
        ApiCall::VmReset,
    );
    sc.expect_events(&[]);
    sc
}

#[test]
fn vm_reset_resets_every_alias() {
    vm_reset_every_alias(NemMode::Off).snapshot("vm_reset_resets_every_alias");
    vm_reset_every_alias(NemMode::Notify);
}

/// An Mmio node deregistered by `deregister_ex` while aliased loses its aliases and its
/// registration, keeps its node, and registers again with fresh counts.
#[test]
fn deregister_ex_of_mmio_handler_with_aliases_then_re_register() {
    let mut sc = scenario("Mmio node: alias, deregister_ex, register_ex again", NemMode::Notify);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "create",
        Status::Success,
        ApiCall::Create {
            ty: mmio,
            user: 0,
            described: false,
        },
    );
    let register_ex = ApiCall::RegisterEx {
        h: 0,
        first: MMIO,
        last: MMIO + 0xfff,
    };
    sc.ok("register_ex", Status::Success, register_ex);
    sc.ok("alias", Status::Success, alias(MMIO, MMIO, 0));
    sc.ok("deregister_ex", Status::Success, ApiCall::DeregisterEx { h: 0 });
    assert_plain_mmio(&sc, MMIO, S::None);
    let Outcome::Info(Ok(info)) = sc.step("handler_info", ApiCall::HandlerInfo { h: 0 }) else {
        panic!("info")
    };
    assert_eq!(
        info.registered, None,
        "the node is kept, its registration and counts are gone"
    );
    sc.ok("register_ex again", Status::Success, register_ex);
    assert_eq!((sc.hs(MMIO), sc.handler(MMIO).aliased_pages), (S::All, 0));
}
