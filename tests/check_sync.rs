//! `check_sync` sees every kind of injected corruption (feature `testing`) and reports it,
//! with the exact figures, without ever panicking; and an operation that meets a broken
//! internal invariant is loud about it: in debug and test builds it panics where the
//! invariant breaks, in release builds it fails with `Internal` having changed nothing.

mod common;
use common::{nem_reg, ok, prot, upd};
use pgmsim::handler::TreeFault;
use pgmsim::testing::Corruption;
use pgmsim::{
    Error, HandlerKind, HandlerState, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig, MemoryLayout,
    Mismatch, Mmio2Handle, NemMode, NemProtection, OpResult, PlatformEvent, Status,
};
use pgmsim_testkit::RecordingPlatform;

const MMIO: u64 = 0x10_0000; // 16 MMIO pages
const MMIO2_GPA: u64 = 0x20_0000; // region A (8 pages)
const NOWHERE: u64 = 0x80_0000;

struct W {
    m: Manager<RecordingPlatform>,
    write: HandlerTypeHandle,
    all: HandlerTypeHandle,
    mmio: HandlerTypeHandle,
    r2a: Mmio2Handle,
}

/// RAM (64 pages), MMIO (16 pages), MMIO2 region A mapped; NEM notifications on.
fn world() -> W {
    let b = MemoryLayout::builder().ram(0, 64).mmio(MMIO, 16);
    let (b, r2a) = b.mmio2_region(8);
    let l = b.map_mmio2(r2a, MMIO2_GPA).build().unwrap();
    let cfg = ManagerConfig {
        max_handlers: 64,
        nem: NemMode::Notify,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(l, cfg, RecordingPlatform::mapped()).unwrap();
    let mut ty = |kind, name| m.register_type(HandlerTypeConfig::new(kind, name)).unwrap();
    let (write, all, mmio) = (
        ty(HandlerKind::Write, "write"),
        ty(HandlerKind::All, "all"),
        ty(HandlerKind::Mmio, "mmio"),
    );
    W {
        m,
        write,
        all,
        mmio,
        r2a,
    }
}

/// A world with one handler of every shape, in sync: two sub-page Write handlers sharing page
/// 1, an All handler with a temp-off page, an Mmio handler with an aliased page, and a
/// one-page Write handler.
fn populated() -> W {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x17ff, w.write, 0, None));
    ok!(w, w.m.register(0x1800, 0x2fff, w.write, 0, None));
    ok!(w, w.m.register(0x4000, 0x5fff, w.all, 0, None));
    ok!(w, w.m.page_temp_off(0x4000, 0x5000));
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0));
    ok!(w, w.m.register(0x8000, 0x8fff, w.write, 0, None));
    w
}

fn corrupt(c: Corruption) -> Vec<Mismatch> {
    let mut w = populated();
    w.m.inject(c).unwrap();
    w.m.check_sync()
}

fn has_tree_fault(m: &[Mismatch], fault: fn(&TreeFault) -> bool) -> bool {
    m.iter().any(|x| matches!(x, Mismatch::Tree(f) if fault(f)))
}

#[test]
fn check_sync_reports_page_state_corruptions() {
    let state = |page, state| corrupt(Corruption::PageState { page, state });
    assert_eq!(
        state(0x4000, HandlerState::Write),
        vec![Mismatch::PageState {
            page: 0x4000,
            expected: HandlerState::All,
            actual: HandlerState::Write
        }]
    );
    // Disabled is always acceptable on a handled page, but not for the temp-off count.
    assert_eq!(
        state(0x2000, HandlerState::Disabled),
        vec![Mismatch::TempOffCount {
            handler: 0x1800,
            kept: 0,
            found: 1
        }]
    );
    let missing = |page, handler| vec![Mismatch::MissingState { page, handler }];
    assert_eq!(state(0x4000, HandlerState::None), missing(0x4000, 0x4000));
    // The shared sub-page page.
    assert_eq!(state(0x1000, HandlerState::None), missing(0x1000, 0x1000));
    let stray = |page, actual| vec![Mismatch::StrayState { page, actual }];
    assert_eq!(
        state(0x9000, HandlerState::Disabled),
        stray(0x9000, HandlerState::Disabled)
    );
    assert_eq!(state(0x3f000, HandlerState::All), stray(0x3f000, HandlerState::All));
    // An alias that is no longer Disabled.
    assert_eq!(
        state(MMIO + 0x1000, HandlerState::All),
        vec![Mismatch::Alias { page: MMIO + 0x1000 }]
    );
}

#[test]
fn check_sync_reports_not_in_hm_corruptions() {
    assert_eq!(
        corrupt(Corruption::NotInHm { page: 0x8000 }),
        vec![Mismatch::NotInHm {
            page: 0x8000,
            expected: false
        }]
    );
    // A flag on a page no handler touches is a stray.
    assert_eq!(
        corrupt(Corruption::NotInHm { page: 0xa000 }),
        vec![Mismatch::StrayState {
            page: 0xa000,
            actual: HandlerState::None
        }]
    );
}

#[test]
fn check_sync_reports_count_corruptions() {
    assert_eq!(
        corrupt(Corruption::AliasedCount {
            handler: MMIO + 0x2000,
            count: 3
        }),
        vec![Mismatch::AliasedCount {
            handler: MMIO,
            kept: 3,
            found: 1
        }]
    );
    assert_eq!(
        corrupt(Corruption::TempOffCount {
            handler: 0x4000,
            count: 0
        }),
        vec![Mismatch::TempOffCount {
            handler: 0x4000,
            kept: 0,
            found: 1
        }]
    );
    assert_eq!(
        corrupt(Corruption::PageCount {
            handler: 0x1800,
            count: 1
        }),
        vec![Mismatch::PageCount { handler: 0x1800 }]
    );
}

#[test]
fn check_sync_reports_tree_corruptions() {
    let range = |key, last| {
        corrupt(Corruption::TreeRange {
            handler: 0x8000,
            key,
            last,
        })
    };
    // The node no longer agrees with its record.
    let m = range(0x8000, 0x8ffe);
    assert!(m.contains(&Mismatch::HandlerRange { handler: 0x8000 }), "{m:?}");
    // Out of order / overlapping with its neighbour.
    let m = range(0x5000, 0x8fff);
    assert!(has_tree_fault(&m, |f| matches!(f, TreeFault::Order { .. })), "{m:?}");
    // Inverted.
    let m = range(0x8fff, 0x8000);
    assert!(has_tree_fault(&m, |f| matches!(f, TreeFault::Inverted { .. })), "{m:?}");
    // Height and balance, including a height whose arithmetic would overflow.
    for height in [9, u8::MAX] {
        let m = corrupt(Corruption::TreeHeight {
            handler: 0x8000,
            height,
        });
        assert!(has_tree_fault(&m, |f| matches!(f, TreeFault::Balance { .. })), "{m:?}");
    }
    // Count.
    assert_eq!(
        corrupt(Corruption::TreeCount { count: 99 }),
        vec![Mismatch::Tree(TreeFault::Count)]
    );
}

#[test]
fn check_sync_reports_allocator_corruption_with_its_figures() {
    // Five nodes live; flipping one live slot's free bit makes the bitmap count 64 - 5 + 1.
    assert_eq!(
        corrupt(Corruption::FreeBit { handler: 0x4000 }),
        vec![Mismatch::Allocator {
            live: 5,
            free: 60,
            capacity: 64
        }]
    );
}

#[test]
fn inject_not_found_for_missing_targets() {
    let mut w = populated();
    let missing = [
        Corruption::PageState {
            page: NOWHERE,
            state: HandlerState::All,
        },
        Corruption::NotInHm { page: NOWHERE },
        Corruption::AliasedCount {
            handler: 0x3000,
            count: 1,
        },
        Corruption::TreeHeight {
            handler: 0x3000,
            height: 1,
        },
        Corruption::TreeRange {
            handler: 0x3000,
            key: 0,
            last: 0,
        },
        Corruption::FreeBit { handler: u64::MAX },
    ];
    let digest = w.m.state_digest();
    for c in missing {
        assert_eq!(w.m.inject(c), Err(Error::NotFound), "{c:?}");
    }
    assert_eq!(w.m.state_digest(), digest, "a refused injection changes nothing");
}

/// Only upgrade, seen through an injected state: a Write handler registered over a page
/// already `All` leaves it `All` and gives it no PTE update (and `check_sync` reports the
/// page, which no handler state explains); deregistration puts every page back to `None`.
#[test]
#[cfg_attr(
    feature = "paranoid",
    ignore = "paranoid builds reject the injected page state inside the operation"
)]
fn write_over_page_already_all_is_not_downgraded_and_gets_no_pte_update() {
    let mut w = world();
    let state = HandlerState::All;
    w.m.inject(Corruption::PageState { page: 0x3000, state }).unwrap();
    assert_eq!(w.m.register(0x2000, 0x4fff, w.write, 0, None), Ok(Status::Success));
    assert_eq!(w.m.page(0x3000).unwrap().handler_state(), HandlerState::All);
    assert_eq!(w.m.page(0x2000).unwrap().handler_state(), HandlerState::Write);
    assert_eq!(
        w.m.platform_mut().take(),
        vec![
            upd(0x2000, HandlerState::Write, false),
            prot(0x2000, NemProtection::RX),
            upd(0x4000, HandlerState::Write, false),
            prot(0x4000, NemProtection::RX),
            PlatformEvent::FlushAllTlbs,
            nem_reg(HandlerKind::Write, 0x2000, 0x3000),
        ]
    );
    assert_eq!(
        w.m.check_sync(),
        vec![Mismatch::PageState {
            page: 0x3000,
            expected: HandlerState::Write,
            actual: HandlerState::All
        }]
    );
    ok!(w, w.m.deregister(0x2000));
}

/// Regression: check_sync treated the stretch before a handler starting on the last byte of
/// a RAM range as handler-free up to the end of the range, so the handler's page was
/// reported as a stray.
#[test]
fn regression_check_sync_handler_starting_on_last_byte_of_a_ram_range() {
    let mut w = world();
    ok!(w, w.m.register(0x3ffff, 0x3ffff, w.write, 0, None));
    ok!(w, w.m.register(0x3e000, 0x3efff, w.write, 0, None));
    ok!(w, w.m.deregister(0x3e000));
    // And the page is still checked: a corruption there is reported.
    w.m.inject(Corruption::PageState {
        page: 0x3f000,
        state: HandlerState::None,
    })
    .unwrap();
    assert_eq!(
        w.m.check_sync(),
        vec![Mismatch::MissingState {
            page: 0x3f000,
            handler: 0x3ffff
        }]
    );
}

/// An alias whose handler the tree no longer finds: with accounting there is no handler to
/// account to (`NotFound`); nothing validated is broken, so nothing panics.
#[test]
fn alias_reset_with_accounting_needs_a_handler_the_tree_finds() {
    let mut w = populated();
    let (key, last) = (NOWHERE, NOWHERE + 0x3fff);
    w.m.inject(Corruption::TreeRange {
        handler: MMIO,
        key,
        last,
    })
    .unwrap();
    let digest = w.m.state_digest();
    assert_eq!(w.m.reset_aliased_page(MMIO + 0x1000, true), Err(Error::NotFound));
    assert_eq!(w.m.state_digest(), digest);
}

// ---------------------------------------------------------------------------------------------
// Broken internal invariants: loud where they break (debug / test builds), `Internal` and no
// change in release builds.
// ---------------------------------------------------------------------------------------------

/// Runs `op` on `w` after `corruption`; in release builds asserts it fails with `Internal`
/// and changes nothing (in debug builds `op` panics first).
fn broken(mut w: W, corruption: &[Corruption], op: impl FnOnce(&mut Manager<RecordingPlatform>) -> OpResult) {
    for &c in corruption {
        w.m.inject(c).unwrap();
    }
    let digest = w.m.state_digest();
    let r = op(&mut w.m);
    assert_eq!(r, Err(Error::Internal));
    assert_eq!(w.m.state_digest(), digest, "a failed operation changed the state");
}

/// The handler's tree node says `[0x8000, 0x8ffe]`, its registration `[0x8000, 0x8fff]`:
/// deregistration validates the handler it names and meets the disagreement.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "internal invariant broken"))]
fn deregister_of_a_handler_whose_tree_range_differs_is_an_invariant_break() {
    let range = Corruption::TreeRange {
        handler: 0x8000,
        key: 0x8000,
        last: 0x8ffe,
    };
    broken(populated(), &[range], |m| m.deregister(0x8000));
}

/// The handler counts no alias, yet a page of it is aliased: an alias reset with
/// accounting cannot account for it.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "internal invariant broken"))]
fn alias_reset_with_accounting_of_an_uncounted_alias_is_an_invariant_break() {
    let count = Corruption::AliasedCount {
        handler: MMIO,
        count: 0,
    };
    broken(populated(), &[count], |m| m.reset_aliased_page(MMIO + 0x1000, true));
}

/// An aliased page must be `Disabled`.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "internal invariant broken"))]
fn alias_reset_of_an_aliased_page_not_disabled_is_an_invariant_break() {
    let page = Corruption::PageState {
        page: MMIO + 0x1000,
        state: HandlerState::All,
    };
    broken(populated(), &[page], |m| m.reset_aliased_page(MMIO + 0x1000, false));
}

/// VM reset validates every alias before resetting any: two aliases, a count of one.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "internal invariant broken"))]
fn vm_reset_with_more_aliases_than_counted_is_an_invariant_break() {
    let mut w = populated();
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x2000, w.r2a, 0x1000));
    let count = Corruption::AliasedCount {
        handler: MMIO,
        count: 1,
    };
    broken(w, &[count], |m| m.vm_reset());
}

/// VM reset validates that every alias is `Disabled` before resetting any.
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "internal invariant broken"))]
fn vm_reset_of_an_aliased_page_not_disabled_is_an_invariant_break() {
    let page = Corruption::PageState {
        page: MMIO + 0x1000,
        state: HandlerState::All,
    };
    broken(populated(), &[page], |m| m.vm_reset());
}

/// The state digest (which proves a failed call changed nothing) sees every kind of injected
/// change, even one that leaves `check_sync` clean elsewhere: one field of one page, one count,
/// one tree node, one allocator bit.
#[test]
fn state_digest_sees_every_corruption() {
    let clean = populated().m.state_digest();
    assert_eq!(populated().m.state_digest(), clean, "the digest is deterministic");
    for c in [
        Corruption::PageState {
            page: 0x8000,
            state: HandlerState::All,
        },
        Corruption::NotInHm { page: 0x8000 },
        Corruption::AliasedCount {
            handler: MMIO,
            count: 2,
        },
        Corruption::TempOffCount {
            handler: 0x4000,
            count: 0,
        },
        Corruption::PageCount {
            handler: 0x8000,
            count: 2,
        },
        Corruption::TreeRange {
            handler: 0x8000,
            key: 0x8000,
            last: 0x87ff,
        },
        Corruption::FreeBit { handler: 0x8000 },
        Corruption::TreeHeight {
            handler: 0x8000,
            height: 7,
        },
        Corruption::TreeCount { count: 9 },
    ] {
        let mut w = populated();
        w.m.inject(c).unwrap();
        assert_ne!(w.m.state_digest(), clean, "{c:?}");
    }
}
