//! Sub-page Write handlers sharing pages, only-upgrade registration, the not-in-HM flag, and
//! the lookup hint of a shared page.

use pgmsim::{HandlerKind, HandlerState as S, NemMode, NemProtection as P, PlatformEvent, Status};
use pgmsim_testkit::{ApiCall, Outcome};

use crate::common::{nem_dereg, nem_reg, prot, upd};
use crate::harness::{dereg, reg, reg_as, Scenario};
use crate::ram;

const FLUSH: PlatformEvent = PlatformEvent::FlushAllTlbs;
const W: HandlerKind = HandlerKind::Write;

/// Which handler of a pair goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    LowFirst,
    HighFirst,
}

/// One handler of [`two_handlers_share_a_page`]: its start, its two pages, the page only it
/// uses, and its step text when it goes first and when it goes second.
struct Half {
    start: u64,
    pages: [u64; 2],
    own: u64,
    first: &'static str,
    second: &'static str,
}

const A: Half = Half {
    start: 0x1800,
    pages: [0x1000, 0x2000],
    own: 0x1000,
    first: "deregister A 0x1800 (page 2 reset, then recalculated from B above)",
    second: "deregister A 0x1800",
};

const B: Half = Half {
    start: 0x2800,
    pages: [0x2000, 0x3000],
    own: 0x3000,
    first: "deregister B 0x2800 (page 2 reset, then recalculated from A below)",
    second: "deregister B 0x2800 (nothing left on page 2)",
};

/// Two sub-page Write handlers, A over pages 1-2 and B over pages 2-3, share page 2; they are
/// deregistered in `order`. Registering B leaves the shared page alone (only upgrade); the
/// first deregistration resets page 2 to `None`, then recalculates it from the neighbour
/// and updates its PTEs; the second touches no PTE at all. NEM hears only of pages no other
/// handler uses.
fn two_handlers_share_a_page(order: Order, nem: NemMode) -> Scenario {
    let title = match order {
        Order::LowFirst => "two sub-page Write handlers share page 2; deregister A then B",
        Order::HighFirst => "two sub-page Write handlers share page 2; deregister B then A",
    };
    let mut sc = match nem {
        NemMode::Off => Scenario::new(title, ram(8)),
        _ => Scenario::nem(title, ram(8), nem),
    };
    let w = sc.ty(W, false, "write");
    sc.ok(
        "register A 0x1800..=0x27ff Write",
        Status::Success,
        reg_as(0x1800, 0x27ff, w, 0xa, "A"),
    );
    sc.expect_events(&[
        upd(0x1000, S::Write, false),
        prot(0x1000, P::RX),
        upd(0x2000, S::Write, false),
        prot(0x2000, P::RX),
        FLUSH,
        nem_reg(W, 0x1800, 0x1000),
    ]);
    let text = "register B 0x2800..=0x37ff Write (page 2 already W: no PTE update)";
    sc.ok(text, Status::Success, reg_as(0x2800, 0x37ff, w, 0xb, "B"));
    sc.expect_events(&[
        upd(0x3000, S::Write, false),
        prot(0x3000, P::RX),
        FLUSH,
        nem_reg(W, 0x2800, 0x1000),
    ]);
    let (first, second) = match order {
        Order::LowFirst => (A, B),
        Order::HighFirst => (B, A),
    };
    sc.ok(first.first, Status::Success, dereg(first.start));
    // The page the other handler still covers is not told a transient RWX (D15): NEM hears
    // only the released page and the shared page's recalculated protection.
    let recalculated = [upd(0x2000, S::Write, false), FLUSH, prot(0x2000, P::RX)];
    let released = nem_dereg(W, first.own, 0x1000);
    sc.expect_events(&[&[prot(first.own, P::RWX)][..], &recalculated, &[released]].concat());
    let pages = [0x1000, 0x2000, 0x3000];
    assert!(pages
        .iter()
        .all(|&p| sc.hs(p) == if p == first.own { S::None } else { S::Write }));
    sc.ok(second.second, Status::Success, dereg(second.start));
    // Deregistration never touches PTEs by itself: only the recalculation of a shared page does.
    let [p0, p1] = second.pages;
    sc.expect_events(&[prot(p0, P::RWX), prot(p1, P::RWX), nem_dereg(W, p0, 0x2000)]);
    assert!(pages.iter().all(|&p| sc.hs(p) == S::None));
    sc
}

#[test]
fn sub_page_two_write_handlers_deregister_low_first() {
    two_handlers_share_a_page(Order::LowFirst, NemMode::Off)
        .snapshot("sub_page_two_write_handlers_deregister_low_first");
    two_handlers_share_a_page(Order::LowFirst, NemMode::Notify);
}

#[test]
fn sub_page_two_write_handlers_deregister_high_first() {
    two_handlers_share_a_page(Order::HighFirst, NemMode::Off)
        .snapshot("sub_page_two_write_handlers_deregister_high_first");
    two_handlers_share_a_page(Order::HighFirst, NemMode::Notify);
}

/// A 0x2000..=0x23ff, B 0x2400..=0x27ff, C 0x2800..=0x2fff: three Write handlers inside page 2.
const THREE: [(u64, u64, &str); 3] = [(0x2000, 0x23ff, "A"), (0x2400, 0x27ff, "B"), (0x2800, 0x2fff, "C")];

/// The step texts of the two orders the snapshots show; the other orders get plain ones.
fn deregistration_texts(order: [usize; 3]) -> [String; 3] {
    let fixed: [&str; 3] = match order {
        [1, 0, 2] => [
            "deregister B (both neighbours still on page 2)",
            "deregister A (C still on page 2)",
            "deregister C (page 2 free)",
        ],
        [2, 0, 1] => [
            "deregister C (walks below: B, then A)",
            "deregister A (walks above: B)",
            "deregister B (page 2 free)",
        ],
        _ => return order.map(|i| format!("deregister {}", THREE[i].2)),
    };
    fixed.map(String::from)
}

/// Three Write handlers inside page 2, deregistered in `order`: each deregistration but the
/// last recalculates the page once (the second neighbour finds it already Write) and tells NEM
/// nothing, the last leaves it `None` without a PTE update and tells NEM the page is free.
/// After every step each page is Write exactly when a remaining handler touches it. (The
/// registrations are [`assert_three_registrations`].)
fn three_handlers_in_one_page(order: [usize; 3], nem: NemMode) -> Scenario {
    let names = order.map(|i| THREE[i].2).join(", ");
    let title = format!("three Write handlers inside page 2; deregister {names}");
    let mut sc = match nem {
        NemMode::Off => Scenario::new(&title, ram(8)),
        _ => Scenario::nem(&title, ram(8), nem),
    };
    let w = sc.ty(W, false, "write");
    for (user, (first, last, name)) in (1..).zip(THREE) {
        sc.ok(
            &format!("register {name} {first:#x}..={last:#x}"),
            Status::Success,
            reg_as(first, last, w, user, name),
        );
    }
    let mut left: Vec<(u64, u64, &str)> = THREE.to_vec();
    for (n, (i, text)) in order.into_iter().zip(deregistration_texts(order)).enumerate() {
        sc.ok(&text, Status::Success, dereg(THREE[i].0));
        left.retain(|h| h.0 != THREE[i].0);
        if n < 2 {
            // Page 2 goes to None, then the neighbours raise it again: one PTE update, and
            // NEM hears of no released page and of no transient RWX (D15).
            sc.expect_events(&[upd(0x2000, S::Write, false), FLUSH, prot(0x2000, P::RX)]);
        } else {
            // No PTE update by itself; NEM hears page 2 is free.
            sc.expect_events(&[prot(0x2000, P::RWX), nem_dereg(W, 0x2000, 0x1000)]);
        }
        for page in [0x1000u64, 0x2000, 0x3000] {
            let touched = left.iter().any(|&(f, l, _)| f <= page + 0xfff && l >= page);
            let want = if touched { S::Write } else { S::None };
            assert_eq!(sc.hs(page), want, "page {page:#x} after {text} ({order:?})");
        }
    }
    sc
}

/// The registrations of [`three_handlers_in_one_page`]: only the first raises page 2 (only
/// upgrade: the page is already Write for the others, which only tell NEM).
fn assert_three_registrations(nem: NemMode) {
    let mut sc = match nem {
        NemMode::Off => Scenario::new("three Write handlers inside page 2: registrations", ram(8)),
        _ => Scenario::nem("three Write handlers inside page 2: registrations", ram(8), nem),
    };
    let w = sc.ty(W, false, "write");
    let [(a, a_last, _), (b, b_last, _), (c, c_last, _)] = THREE;
    sc.ok("register A", Status::Success, reg(a, a_last, w, 1));
    sc.expect_events(&[
        upd(0x2000, S::Write, false),
        prot(0x2000, P::RX),
        FLUSH,
        nem_reg(W, a, 0x400),
    ]);
    sc.ok("register B", Status::Success, reg(b, b_last, w, 2));
    sc.expect_events(&[nem_reg(W, b, 0x400)]);
    sc.ok("register C", Status::Success, reg(c, c_last, w, 3));
    sc.expect_events(&[nem_reg(W, c, 0x800)]);
}

#[test]
fn sub_page_three_handlers_one_page_deregister_middle_low_high() {
    three_handlers_in_one_page([1, 0, 2], NemMode::Off)
        .snapshot("sub_page_three_handlers_one_page_deregister_middle_low_high");
}

#[test]
fn sub_page_three_handlers_one_page_deregister_high_low_middle() {
    three_handlers_in_one_page([2, 0, 1], NemMode::Off)
        .snapshot("sub_page_three_handlers_one_page_deregister_high_low_middle");
}

#[test]
fn sub_page_three_handlers_one_page_every_order_with_and_without_nem() {
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for nem in [NemMode::Off, NemMode::Notify] {
        assert_three_registrations(nem);
        for order in orders {
            three_handlers_in_one_page(order, nem);
        }
    }
}

#[test]
fn sub_page_three_chained_handlers_deregister_middle_first() {
    let title = "three chained Write handlers sharing pages 2 and 4; deregister B, C, A";
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(W, false, "write");
    sc.ok(
        "register A 0x1000..=0x27ff",
        Status::Success,
        reg_as(0x1000, 0x27ff, w, 1, "A"),
    );
    sc.ok(
        "register B 0x2800..=0x47ff",
        Status::Success,
        reg_as(0x2800, 0x47ff, w, 2, "B"),
    );
    sc.ok(
        "register C 0x4800..=0x5fff",
        Status::Success,
        reg_as(0x4800, 0x5fff, w, 3, "C"),
    );
    let text = "deregister B (pages 2 and 4 recalculated from A below and C above)";
    sc.ok(text, Status::Success, dereg(0x2800));
    sc.expect_events(&[upd(0x2000, S::Write, false), FLUSH, upd(0x4000, S::Write, false), FLUSH]);
    assert_eq!(sc.hs(0x3000), S::None);
    sc.ok("deregister C (page 4 free)", Status::Success, dereg(0x4800));
    sc.ok("deregister A", Status::Success, dereg(0x1000));
    sc.snapshot("sub_page_three_chained_handlers_deregister_middle_first");
}

#[test]
fn register_over_pages_already_raised() {
    let title = "only upgrades: registering over pages already in a higher or equal state";
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(W, false, "write");
    sc.ok(
        "register A 0x1000..=0x1bff Write",
        Status::Success,
        reg(0x1000, 0x1bff, w, 1),
    );
    let text = "register B 0x1c00..=0x3fff Write (page 1 already W: only pages 2-3 updated)";
    sc.ok(text, Status::Success, reg(0x1c00, 0x3fff, w, 2));
    sc.expect_events(&[upd(0x2000, S::Write, false), upd(0x3000, S::Write, false), FLUSH]);
    let text = "register C 0x4000..=0x4000 Write (one byte, deliberate difference D3)";
    sc.ok(text, Status::Success, reg(0x4000, 0x4000, w, 3));
    assert_eq!(sc.handler(0x4000).page_count, 1);
    let text = "register D 0x4001..=0x4fff Write (page 4 already W: no event at all)";
    sc.ok(text, Status::Success, reg(0x4001, 0x4fff, w, 4));
    sc.expect_events(&[]);
    sc.snapshot("register_over_pages_already_raised");
}

#[test]
fn not_in_hm_write_handler_sets_and_clears_flag() {
    let title = "not-in-HM Write handler: whole pages only, flag set and cleared";
    let mut sc = Scenario::new(title, ram(8));
    let w = sc.ty(W, true, "write-nohm");
    let text = "register 0x1000..=0x17ff (not-in-HM Write must be whole pages)";
    sc.fails(text, pgmsim::Error::InvalidParameter, reg(0x1000, 0x17ff, w, 0));
    sc.ok("register 0x1000..=0x2fff", Status::Success, reg(0x1000, 0x2fff, w, 0));
    let flags = |sc: &Scenario| [0x1000, 0x2000, 0x3000].map(|a| sc.mgr().page(a).is_some_and(|p| p.not_in_hm()));
    assert_eq!(flags(&sc), [true, true, false]);
    let temp_off = ApiCall::PageTempOff {
        addr: 0x1000,
        page: 0x2000,
    };
    sc.ok("temp-off page 0x2000 (flag kept)", Status::Success, temp_off);
    assert_eq!((sc.hs(0x2000), flags(&sc)), (S::Disabled, [true, true, false]));
    sc.ok(
        "deregister 0x1000 (state and flag cleared)",
        Status::Success,
        dereg(0x1000),
    );
    assert_eq!(flags(&sc), [false; 3]);
    sc.snapshot("not_in_hm_write_handler_sets_and_clears_flag");
}

/// A sub-page handler next to a whole-page neighbour with a temp-off page shares no page with
/// it, so deregistering it recomputes nothing there.
#[test]
fn sub_page_write_next_to_temp_off_whole_page_neighbour_is_left_alone() {
    let mut sc = Scenario::new("sub-page handler next to a temp-off whole-page handler", ram(8));
    let w = sc.ty(W, false, "write");
    sc.ok("register 0x1000..=0x1fff", Status::Success, reg(0x1000, 0x1fff, w, 0));
    sc.ok(
        "temp-off 0x1000",
        Status::Success,
        ApiCall::PageTempOff {
            addr: 0x1000,
            page: 0x1000,
        },
    );
    sc.ok("register 0x2000..=0x27ff", Status::Success, reg(0x2000, 0x27ff, w, 0));
    sc.ok("deregister 0x2000", Status::Success, dereg(0x2000));
    assert_eq!(sc.hs(0x1000), S::Disabled, "the neighbour page is not touched");
    assert_eq!(sc.hs(0x2000), S::None);
}

/// Sub-page handlers on the first and on the last page of a RAM range, each with a neighbour
/// on the same page, and deregistration through `deregister_ex` (the node survives).
#[test]
fn sub_page_handlers_on_range_edges_and_deregister_ex() {
    let mut sc = Scenario::new("sub-page handlers on the edges of a RAM range", ram(16));
    let w = sc.ty(W, false, "write");
    let create = |user| ApiCall::Create {
        ty: w,
        user,
        described: false,
    };
    let register_ex = |h, first, last| ApiCall::RegisterEx { h, first, last };
    sc.ok("create node 0", Status::Success, create(0));
    sc.ok(
        "register_ex node 0 0x0..=0xff",
        Status::Success,
        register_ex(0, 0, 0xff),
    );
    sc.ok("create node 1", Status::Success, create(1));
    sc.ok(
        "register_ex node 1 0x100..=0x1ff",
        Status::Success,
        register_ex(1, 0x100, 0x1ff),
    );
    sc.ok("register 0xf800..=0xffff", Status::Success, reg(0xf800, 0xffff, w, 2));
    sc.ok("register 0xf000..=0xf7ff", Status::Success, reg(0xf000, 0xf7ff, w, 3));
    sc.fails(
        "register past the range end",
        pgmsim::Error::NoRamRange,
        reg(0xfffe, 0x1_0001, w, 4),
    );
    sc.ok(
        "create node 2",
        Status::Success,
        ApiCall::Create {
            ty: w,
            user: 5,
            described: true,
        },
    );
    sc.fails(
        "register_ex node 2 over a neighbour",
        pgmsim::Error::Conflict,
        register_ex(2, 0xf700, 0xf7ff),
    );
    sc.ok(
        "register_ex node 2 0xe800..=0xefff",
        Status::Success,
        register_ex(2, 0xe800, 0xefff),
    );
    sc.ok("deregister_ex node 2", Status::Success, ApiCall::DeregisterEx { h: 2 });
    sc.fails(
        "deregister_ex node 2 again",
        pgmsim::Error::NotFound,
        ApiCall::DeregisterEx { h: 2 },
    );
    sc.ok("deregister_ex node 0", Status::Success, ApiCall::DeregisterEx { h: 0 });
    assert_eq!(sc.hs(0), S::Write, "the neighbour above keeps the first page");
    sc.ok("destroy node 0", Status::Success, ApiCall::Destroy { h: 0 });
    sc.fails(
        "destroy node 0 again",
        pgmsim::Error::InvalidHandle,
        ApiCall::Destroy { h: 0 },
    );
    sc.fails(
        "destroy node 1 while registered",
        pgmsim::Error::WrongOrder,
        ApiCall::Destroy { h: 1 },
    );
}

/// The user argument of the handler containing `addr`, through the API and through the
/// hinted fast path, which must agree.
fn user_at(sc: &mut Scenario, addr: u64) -> Option<u64> {
    let Outcome::Lookup(found) = sc.step("lookup", ApiCall::Lookup { addr }) else {
        panic!("lookup")
    };
    let fast = sc.mgr().lookup_range(addr).map(|r| r.3);
    assert_eq!(found.map(|h| h.user), fast, "lookup({addr:#x}): API and fast path");
    fast
}

/// The per-page lookup hint must never hide a handler: after the hinted handler of a shared
/// page goes, lookups on that page still find the others (through the tree), on the hinted
/// fast path (`lookup_range`) as well as through the API.
#[test]
fn lookup_hint_on_shared_page_survives_deregistration_of_either_handler() {
    let mut sc = Scenario::new("three handlers on one page; the hinted one goes", ram(8));
    let w = sc.ty(W, false, "write");
    sc.ok("register 0x1000..=0x13ff", Status::Success, reg(0x1000, 0x13ff, w, 1));
    sc.ok("register 0x1400..=0x17ff", Status::Success, reg(0x1400, 0x17ff, w, 2));
    sc.ok("register 0x1800..=0x1fff", Status::Success, reg(0x1800, 0x1fff, w, 3));
    for (addr, user) in [
        (0x1000, 1),
        (0x13ff, 1),
        (0x1400, 2),
        (0x17ff, 2),
        (0x1800, 3),
        (0x1fff, 3),
    ] {
        assert_eq!(user_at(&mut sc, addr), Some(user));
    }
    sc.ok(
        "deregister the last registered: the page's hint",
        Status::Success,
        dereg(0x1800),
    );
    assert_eq!(user_at(&mut sc, 0x1000), Some(1));
    assert_eq!(user_at(&mut sc, 0x17ff), Some(2));
    assert_eq!(user_at(&mut sc, 0x1800), None);
    assert_eq!(
        sc.step("is_registered", ApiCall::IsRegistered { addr: 0x1fff }),
        Outcome::Registered(false)
    );
    sc.ok("deregister 0x1000", Status::Success, dereg(0x1000));
    assert_eq!(
        sc.step("is_all", ApiCall::IsAll { addr: 0x1400 }),
        Outcome::IsAll(Ok(false))
    );
    sc.ok(
        "register 0x1800..=0x1fff again",
        Status::Success,
        reg(0x1800, 0x1fff, w, 4),
    );
    assert_eq!(user_at(&mut sc, 0x1abc), Some(4));
    assert_eq!(user_at(&mut sc, 0x1500), Some(2));
}
