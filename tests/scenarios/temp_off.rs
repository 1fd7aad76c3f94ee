//! Temporarily turning monitoring off for a page, and re-arming by `reset`.

use pgmsim::{Error, HandlerKind, HandlerState as S, NemMode, NemProtection as P, PlatformEvent, Status};
use pgmsim_testkit::ApiCall;

use crate::common::{prot, upd};
use crate::harness::{dereg, reg, Scenario};
use crate::{alias_world, ram};

const FLUSH: PlatformEvent = PlatformEvent::FlushAllTlbs;

fn temp_off(addr: u64, page: u64) -> ApiCall {
    ApiCall::PageTempOff { addr, page }
}

/// A handler of `kind` (not-in-HM when `not_in_hm`) over pages 2-5: two pages turned off
/// (any address inside a page names it; turning an off page off again changes nothing at
/// all), then `reset` re-arms exactly those, updating their PTEs and flushing TLBs once, and a
/// second `reset` finds nothing to do. Temp-off touches no PTE and keeps the not-in-HM flag.
fn temp_off_then_reset(kind: HandlerKind, not_in_hm: bool, nem: NemMode) -> Scenario {
    let title = format!("{kind:?} handler: temp-off pages, then reset re-arms them");
    let mut sc = match nem {
        NemMode::Off => Scenario::new(&title, ram(8)),
        _ => Scenario::nem(&title, ram(8), nem),
    };
    let (description, armed, armed_prot) = match (kind, not_in_hm) {
        (HandlerKind::Write, false) => ("write", S::Write, P::RX),
        (HandlerKind::Write, true) => ("write-nohm", S::Write, P::RX),
        _ => ("all", S::All, P::NONE),
    };
    let ty = sc.ty(kind, not_in_hm, description);
    sc.ok(
        &format!("register 0x2000..=0x5fff {kind:?}"),
        Status::Success,
        reg(0x2000, 0x5fff, ty, 0),
    );
    sc.ok(
        "temp-off 0x3000 (no PTE update, no TLB flush)",
        Status::Success,
        temp_off(0x2000, 0x3000),
    );
    sc.expect_events(&[prot(0x3000, P::RWX)]);
    assert_eq!((sc.hs(0x3000), sc.handler(0x2000).temp_off_pages), (S::Disabled, 1));
    sc.ok(
        "temp-off 0x5abc (any address in the page)",
        Status::Success,
        temp_off(0x2000, 0x5abc),
    );
    assert_eq!((sc.hs(0x5000), sc.handler(0x2000).temp_off_pages), (S::Disabled, 2));
    let digest = sc.mgr().state_digest();
    sc.ok(
        "temp-off 0x3000 again (already off: no-op)",
        Status::Success,
        temp_off(0x2000, 0x3000),
    );
    sc.expect_events(&[]);
    assert_eq!(sc.mgr().state_digest(), digest, "already off: nothing changes");
    assert_eq!(
        sc.mgr().page(0x3000).map(|p| p.not_in_hm()),
        Some(not_in_hm),
        "kept by _ONLY"
    );
    let text = "reset 0x2000 (re-arms only the off pages, PTEs updated, TLBs flushed)";
    sc.ok(text, Status::Success, ApiCall::Reset { addr: 0x2000 });
    sc.expect_events(&[
        upd(0x3000, armed, false),
        prot(0x3000, armed_prot),
        upd(0x5000, armed, false),
        prot(0x5000, armed_prot),
        FLUSH,
    ]);
    assert_eq!(sc.handler(0x2000).temp_off_pages, 0);
    assert!([0x2000, 0x3000, 0x4000, 0x5000].iter().all(|&a| sc.hs(a) == armed));
    sc.ok(
        "reset 0x2000 again (nothing off: no event)",
        Status::Success,
        ApiCall::Reset { addr: 0x2000 },
    );
    sc.expect_events(&[]);
    sc
}

#[test]
fn temp_off_then_reset_write() {
    temp_off_then_reset(HandlerKind::Write, false, NemMode::Off).snapshot("temp_off_then_reset_write");
    for nem in [NemMode::Off, NemMode::Notify] {
        temp_off_then_reset(HandlerKind::Write, false, nem);
        temp_off_then_reset(HandlerKind::Write, true, nem);
        temp_off_then_reset(HandlerKind::All, false, nem);
    }
}

#[test]
fn temp_off_then_reset_all() {
    let mut sc = Scenario::new("All handler: temp-off, then reset re-arms to All", ram(8));
    let a = sc.ty(HandlerKind::All, false, "all");
    sc.ok(
        "register 0x1000..=0x3fff All",
        Status::Success,
        reg(0x1000, 0x3fff, a, 0),
    );
    sc.ok("temp-off 0x1000", Status::Success, temp_off(0x1000, 0x1000));
    sc.ok("temp-off 0x3000", Status::Success, temp_off(0x1000, 0x3000));
    sc.ok("reset 0x1000", Status::Success, ApiCall::Reset { addr: 0x1000 });
    sc.expect_events(&[upd(0x1000, S::All, false), upd(0x3000, S::All, false), FLUSH]);
    sc.ok("temp-off 0x2000", Status::Success, temp_off(0x1000, 0x2000));
    sc.ok("deregister 0x1000 (PTEs untouched)", Status::Success, dereg(0x1000));
    sc.expect_events(&[]);
    assert!([0x1000, 0x2000, 0x3000].iter().all(|&a| sc.hs(a) == S::None));
    sc.snapshot("temp_off_then_reset_all");
}

#[test]
fn temp_off_failures_leave_state_unchanged() {
    let (layout, _) = alias_world();
    let mut sc = Scenario::new("temp-off failures change nothing", layout);
    let w = sc.ty(HandlerKind::Write, false, "write");
    let mmio = sc.ty(HandlerKind::Mmio, false, "mmio");
    sc.ok(
        "register sub-page Write 0x1000..=0x27ff",
        Status::Success,
        reg(0x1000, 0x27ff, w, 0),
    );
    sc.ok(
        "register Write 0x4000..=0x5fff",
        Status::Success,
        reg(0x4000, 0x5fff, w, 0),
    );
    sc.ok(
        "register Mmio 0x10000..=0x11fff",
        Status::Success,
        reg(0x10000, 0x11fff, mmio, 0),
    );
    sc.fails(
        "temp-off via 0x5000 (inside, not the start)",
        Error::NotFound,
        temp_off(0x5000, 0x5000),
    );
    let text = "temp-off 0x6000 of handler 0x4000 (outside it)";
    sc.fails(text, Error::InvalidParameter, temp_off(0x4000, 0x6000));
    let text = "temp-off on the sub-page handler (not whole pages)";
    sc.fails(text, Error::InvalidParameter, temp_off(0x1000, 0x1000));
    sc.fails(
        "temp-off on the Mmio handler",
        Error::AccessDenied,
        temp_off(0x10000, 0x10000),
    );
    let text = "reset 0x4800 (no handler starts there)";
    sc.fails(text, Error::NotFound, ApiCall::Reset { addr: 0x4800 });
    sc.snapshot("temp_off_failures_leave_state_unchanged");
}
