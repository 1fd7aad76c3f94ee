//! NEM notifications (registration, deregistration, protection and backing changes), the
//! exclusive NEM mode that refuses aliasing, and the page-map rendering.

use pgmsim::{Error, HandlerKind, HandlerState as S, MemoryLayout, NemMode, NemProtection as P, PlatformEvent, Status};
use pgmsim_testkit::{render, ApiCall};

use crate::common::{nem_dereg, nem_reg, prot, upd};
use crate::harness::{dereg, reg, reg_as, Scenario};
use crate::{alias_world, ram};

const W: HandlerKind = HandlerKind::Write;

fn released(sc: &Scenario) -> Vec<&PlatformEvent> {
    let nem_dereg = |e: &&PlatformEvent| matches!(e, PlatformEvent::NemHandlerDeregistered { .. });
    sc.events().iter().filter(nem_dereg).collect()
}

#[test]
fn nem_notify_register_and_deregister() {
    let title = "NEM notifications for registration and deregistration";
    let mut sc = Scenario::nem(title, ram(8), NemMode::Notify);
    let w = sc.ty(W, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register Write A 0x1800..=0x27ff",
        Status::Success,
        reg_as(0x1800, 0x27ff, w, 0, "A"),
    );
    sc.ok(
        "register Write B 0x2800..=0x37ff",
        Status::Success,
        reg_as(0x2800, 0x37ff, w, 0, "B"),
    );
    sc.ok(
        "register All 0x5000..=0x6fff",
        Status::Success,
        reg(0x5000, 0x6fff, a, 0),
    );
    sc.expect_events(&[
        upd(0x5000, S::All, false),
        prot(0x5000, P::NONE),
        upd(0x6000, S::All, false),
        prot(0x6000, P::NONE),
        PlatformEvent::FlushAllTlbs,
        nem_reg(HandlerKind::All, 0x5000, 0x2000),
    ]);
    let text = "deregister A (page 2 still B's: NEM told pages 1 only)";
    sc.ok(text, Status::Success, dereg(0x1800));
    assert_eq!(released(&sc), [&nem_dereg(W, 0x1000, 0x1000)]);
    let text = "deregister B (edge pages free: NEM told pages 2-3)";
    sc.ok(text, Status::Success, dereg(0x2800));
    assert_eq!(released(&sc), [&nem_dereg(W, 0x2000, 0x2000)]);
    sc.ok("deregister All 0x5000", Status::Success, dereg(0x5000));
    let all_released = nem_dereg(HandlerKind::All, 0x5000, 0x2000);
    sc.expect_events(&[prot(0x5000, P::RWX), prot(0x6000, P::RWX), all_released]);
    sc.snapshot("nem_notify_register_and_deregister");
}

#[test]
fn nem_notify_sub_page_handlers_inside_one_page() {
    let title = "NEM: deregistering a handler whose only page is still shared tells NEM nothing";
    let mut sc = Scenario::nem(title, ram(8), NemMode::Notify);
    let w = sc.ty(W, false, "write");
    sc.ok(
        "register A 0x2000..=0x23ff",
        Status::Success,
        reg_as(0x2000, 0x23ff, w, 1, "A"),
    );
    sc.ok(
        "register B 0x2400..=0x27ff",
        Status::Success,
        reg_as(0x2400, 0x27ff, w, 2, "B"),
    );
    // The page is already Write: only NEM hears of the handler.
    sc.expect_events(&[nem_reg(W, 0x2400, 0x400)]);
    let text = "register C 0x2800..=0x3fff (page 3 whole)";
    sc.ok(text, Status::Success, reg_as(0x2800, 0x3fff, w, 3, "C"));
    let text = "deregister B (page 2 still shared: no NEM deregistration)";
    sc.ok(text, Status::Success, dereg(0x2400));
    assert!(released(&sc).is_empty());
    let text = "deregister C (page 2 still A's: NEM told page 3 only)";
    sc.ok(text, Status::Success, dereg(0x2800));
    assert_eq!(released(&sc), [&nem_dereg(W, 0x3000, 0x1000)]);
    let text = "deregister A (page 2 free: NEM told page 2)";
    sc.ok(text, Status::Success, dereg(0x2000));
    assert_eq!(sc.events().last(), Some(&nem_dereg(W, 0x2000, 0x1000)));
    sc.snapshot("nem_notify_sub_page_handlers_inside_one_page");
}

#[test]
fn nem_notify_temp_off_alias_and_reset() {
    let title = "NEM notifications for temp-off, aliasing and resets";
    let mut sc = Scenario::nem(title, alias_world().0, NemMode::Notify);
    let w = sc.ty(W, false, "write");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register Write 0x1000..=0x2fff",
        Status::Success,
        reg(0x1000, 0x2fff, w, 0),
    );
    let text = "temp-off 0x2000 (NEM protection back to rwx)";
    sc.ok(
        text,
        Status::Success,
        ApiCall::PageTempOff {
            addr: 0x1000,
            page: 0x2000,
        },
    );
    sc.expect_events(&[prot(0x2000, P::RWX)]);
    sc.ok("reset 0x1000", Status::Success, ApiCall::Reset { addr: 0x1000 });
    sc.expect_events(&[
        upd(0x2000, S::Write, false),
        prot(0x2000, P::RX),
        PlatformEvent::FlushAllTlbs,
    ]);
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(0x10000, 0x11fff, mmio, 0),
    );
    let text = "alias 0x10000 -> MMIO2 #1 offset 0x0 (NEM backing changed)";
    let alias = ApiCall::PageAliasMmio2 {
        addr: 0x10000,
        page: 0x10000,
        region: 1,
        offset: 0,
    };
    sc.ok(text, Status::Success, alias);
    assert!(matches!(
        sc.events().last(),
        Some(PlatformEvent::NemBackingChanged { .. })
    ));
    let alias_hc = ApiCall::PageAliasHc {
        addr: 0x10000,
        page: 0x11000,
        host: pgmsim::Hpa(0xfee0_0000),
    };
    sc.ok("alias HC 0x11000 -> host 0xfee00000", Status::Success, alias_hc);
    sc.ok("reset 0x10000", Status::Success, ApiCall::Reset { addr: 0x10000 });
    sc.ok("deregister 0x10000", Status::Success, dereg(0x10000));
    assert_eq!(sc.events().last(), Some(&nem_dereg(HandlerKind::Mmio, 0x10000, 0x2000)));
    sc.snapshot("nem_notify_temp_off_alias_and_reset");
}

#[test]
fn nem_exclusive_refuses_aliasing() {
    let title = "exclusive NEM mode: aliasing is NotSupportedInNemMode";
    let mut sc = Scenario::nem(title, alias_world().0, NemMode::Exclusive);
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let alias = |addr, page, region, offset| ApiCall::PageAliasMmio2 {
        addr,
        page,
        region,
        offset,
    };
    let alias_hc = |addr, page, host| ApiCall::PageAliasHc {
        addr,
        page,
        host: pgmsim::Hpa(host),
    };
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(0x10000, 0x11fff, mmio, 0),
    );
    let refused = Error::NotSupportedInNemMode;
    sc.fails(
        "alias 0x10000 -> MMIO2 #1 offset 0x0",
        refused,
        alias(0x10000, 0x10000, 1, 0),
    );
    sc.fails(
        "alias HC 0x11000 -> host 0xfee00000",
        refused,
        alias_hc(0x10000, 0x11000, 0xfee0_0000),
    );
    let text = "alias with a bad region (the NEM check comes first)";
    sc.fails(text, refused, alias(0x10000, 0x10000, 9, 0));
    let text = "alias via a non-start address (the NEM check comes first)";
    sc.fails(text, refused, alias_hc(0x11000, 0x11000, 0xfee0_0000));
    sc.ok("deregister 0x10000", Status::Success, dereg(0x10000));
    sc.snapshot("nem_exclusive_refuses_aliasing");
    // Checked first even with garbage arguments; everything else works, with notifications.
    sc.fails("garbage alias", refused, alias(u64::MAX, 0, 0, u64::MAX));
    sc.fails("garbage host alias", refused, alias_hc(u64::MAX, 0, u64::MAX));
    sc.fails("host alias of nothing", refused, alias_hc(0, 0, 0));
    let w = sc.ty(W, false, "write");
    sc.ok(
        "register Write 0x1000..=0x1fff",
        Status::Success,
        reg(0x1000, 0x1fff, w, 0),
    );
    assert_eq!(sc.events().last(), Some(&nem_reg(W, 0x1000, 0x1000)));
}

#[test]
fn render_page_map_wraps_and_marks_types() {
    let (b, region) = MemoryLayout::builder().ram(0, 70).mmio(0x100000, 4).mmio2_region(2);
    let layout = b.map_mmio2(region, 0x200000).build().unwrap();
    let mut sc = Scenario::new("page map wrapping (70 pages) and type rows", layout);
    let w = sc.ty(W, false, "write");
    let a = sc.ty(HandlerKind::All, false, "all");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    let text = "register Write 0x3e000..=0x41fff (crosses the line break)";
    sc.ok(text, Status::Success, reg(0x3e000, 0x41fff, w, 0));
    let text = "register All on MMIO2 0x201000..=0x201fff";
    sc.ok(text, Status::Success, reg(0x201000, 0x201fff, a, 0));
    sc.ok(
        "register Mmio 0x100000..=0x101fff",
        Status::Success,
        reg(0x100000, 0x101fff, mmio, 0),
    );
    let alias = ApiCall::PageAliasMmio2 {
        addr: 0x100000,
        page: 0x101000,
        region: 1,
        offset: 0x1000,
    };
    sc.ok("alias 0x101000 -> MMIO2 #1 offset 0x1000", Status::Success, alias);
    let window = render::page_map_range(sc.mgr(), 0xfe000, 8);
    sc.note(format!("page_map_range(0xfe000, 8):\n{window}"));
    sc.snapshot("render_page_map_wraps_and_marks_types");
}
