//! The manager's self-checks fire: the `paranoid` re-verification after an operation panics at
//! each kind of broken invariant the operation touched (tree, allocator, counts, page states,
//! lookup hints, the pages a deregistration released) and at nothing it did not touch; the
//! alias settlement of the `testing` tooling keeps the aliased count's books; and the state
//! digest sees a difference hashed only as a machine word (an enum discriminant).
//!
//! Without these, a self-check that silently stopped checking would still pass every other
//! test, since those only ever run managers whose invariants hold.

mod common;
use common::ok;
use pgmsim::testing::Corruption;
use pgmsim::{
    Error, HandlerKind, HandlerTypeConfig, HandlerTypeHandle, Manager, MemoryLayout, Mmio2Handle, NoopPlatform, Status,
};

const MMIO: u64 = 0x10_0000; // 16 MMIO pages
const MMIO2_GPA: u64 = 0x20_0000; // the MMIO2 region (8 pages)

#[cfg_attr(not(feature = "paranoid"), allow(dead_code))]
struct W {
    m: Manager<NoopPlatform>,
    write: HandlerTypeHandle,
    all: HandlerTypeHandle,
    mmio: HandlerTypeHandle,
    r2: Mmio2Handle,
}

/// RAM (64 pages), MMIO (16 pages), one MMIO2 region mapped; one type of each kind.
fn world() -> W {
    let b = MemoryLayout::builder().ram(0, 64).mmio(MMIO, 16);
    let (b, r2) = b.mmio2_region(8);
    let layout = b.map_mmio2(r2, MMIO2_GPA).build().unwrap();
    let mut m = Manager::with_layout(layout).unwrap();
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
        r2,
    }
}

/// The paranoid re-verification: each broken invariant an operation touched makes it panic.
#[cfg(feature = "paranoid")]
mod paranoid {
    use super::*;
    use pgmsim::{HandlerState, Mismatch};

    /// An All handler over `[0x4000, 0x5fff]` and a one-page Write handler at 0x8000.
    fn two_handlers() -> W {
        let mut w = world();
        ok!(w, w.m.register(0x4000, 0x5fff, w.all, 0, None));
        ok!(w, w.m.register(0x8000, 0x8fff, w.write, 0, None));
        w
    }

    #[test]
    #[should_panic(expected = "pgmsim paranoid: range tree broken")]
    fn a_tree_node_with_a_wrong_height_fails_the_next_operation() {
        let mut w = two_handlers();
        w.m.inject(Corruption::TreeHeight {
            handler: 0x8000,
            height: 9,
        })
        .unwrap();
        // Temp-off only looks the tree up, which a wrong height does not disturb.
        let _ = w.m.page_temp_off(0x4000, 0x4000);
    }

    #[test]
    #[should_panic(expected = "pgmsim paranoid: allocator live 2 + free 6143 != capacity")]
    fn an_allocator_out_of_balance_fails_the_next_operation() {
        let mut w = two_handlers();
        w.m.inject(Corruption::FreeBit { handler: 0x8000 }).unwrap();
        let _ = w.m.page_temp_off(0x4000, 0x4000);
    }

    #[test]
    #[should_panic(expected = "pgmsim paranoid: handler 0x4000: counts (aliased, temp-off)")]
    fn a_temp_off_count_its_pages_disagree_with_fails_the_next_temp_off() {
        let mut w = two_handlers();
        w.m.inject(Corruption::TempOffCount {
            handler: 0x4000,
            count: 5,
        })
        .unwrap();
        let _ = w.m.page_temp_off(0x4000, 0x5000);
    }

    #[test]
    #[should_panic(expected = "pgmsim paranoid: page 0x5000 is Write, its handlers say All")]
    fn a_page_state_its_handler_does_not_explain_fails_the_next_operation_on_the_handler() {
        let mut w = two_handlers();
        w.m.inject(Corruption::PageState {
            page: 0x5000,
            state: HandlerState::Write,
        })
        .unwrap();
        // Temp-off of the handler's other page: the corrupt page is checked, not written.
        let _ = w.m.page_temp_off(0x4000, 0x4000);
    }

    /// Every page a handler covers entirely hints at it (M8), the last one included: a lookup
    /// hint lost on the handler's last page is reported although the page itself (state,
    /// flag, no hint at all) is fine and `check_sync`, which ignores hints, is clean.
    #[test]
    #[should_panic(expected = "pgmsim paranoid: page 0xb000, wholly inside handler 0x8000")]
    fn a_last_whole_page_no_longer_hinting_at_its_handler_fails_the_next_operation_on_it() {
        let mut w = world();
        ok!(w, w.m.register(0x8000, 0xbfff, w.all, 0, None));
        // Shrink the handler's tree node off its last page, so another handler can be
        // registered there and deregistered again: that clears the page's hint.
        let shrunk = Corruption::TreeRange {
            handler: 0x8000,
            key: 0x8000,
            last: 0xafff,
        };
        w.m.inject(shrunk).unwrap();
        assert_eq!(w.m.register(0xb000, 0xbfff, w.all, 0, None), Ok(Status::Success));
        assert_eq!(w.m.deregister(0xb000), Ok(Status::Success));
        // Put back everything but the hint: the page's state and the node's range.
        let state = HandlerState::All;
        w.m.inject(Corruption::PageState { page: 0xb000, state }).unwrap();
        let whole = Corruption::TreeRange {
            handler: 0x8000,
            key: 0x8000,
            last: 0xbfff,
        };
        w.m.inject(whole).unwrap();
        assert_eq!(w.m.check_sync(), vec![]);
        let _ = w.m.page_temp_off(0x8000, 0x8000);
    }

    /// The released-page walk reaches the last page of a multi-page handler: with its page
    /// count cut to three, deregistration leaves the fourth page's hint at the freed handler.
    #[test]
    #[should_panic(expected = "pgmsim paranoid: page 0xb000 hints at slot")]
    fn a_released_last_page_still_hinting_at_the_deregistered_handler_fails_the_deregistration() {
        let mut w = world();
        ok!(w, w.m.register(0x8000, 0xbfff, w.all, 0, None));
        w.m.inject(Corruption::PageCount {
            handler: 0x8000,
            count: 3,
        })
        .unwrap();
        // Only the hint is left wrong: the page's state is what a released page has.
        let state = HandlerState::None;
        w.m.inject(Corruption::PageState { page: 0xb000, state }).unwrap();
        let _ = w.m.deregister(0x8000);
    }

    /// The released-page walk starts at the page of the first byte, not at the first byte: a
    /// sub-page handler's second page, left armed by a page count cut to one, is checked.
    #[test]
    #[should_panic(expected = "pgmsim paranoid: page 0x2000")]
    fn a_sub_page_handler_leaving_its_second_page_armed_fails_the_deregistration() {
        let mut w = world();
        ok!(w, w.m.register(0x1800, 0x2fff, w.write, 0, None));
        w.m.inject(Corruption::PageCount {
            handler: 0x1800,
            count: 1,
        })
        .unwrap();
        let _ = w.m.deregister(0x1800);
    }

    /// The released-page walk covers the handler's pages and no more: stray states on the
    /// pages just before and just after are not the deregistration's doing (`check_sync`
    /// still reports them).
    #[test]
    fn stray_pages_beside_the_released_range_are_not_blamed_on_the_deregistration() {
        let mut w = world();
        ok!(w, w.m.register(0x8000, 0x9fff, w.write, 0, None));
        let state = HandlerState::Write;
        for page in [0x7000, 0xa000] {
            w.m.inject(Corruption::PageState { page, state }).unwrap();
        }
        assert_eq!(w.m.deregister(0x8000), Ok(Status::Success));
        let stray = |page| Mismatch::StrayState { page, actual: state };
        assert_eq!(w.m.check_sync(), vec![stray(0x7000), stray(0xa000)]);
    }
}

/// An Mmio handler over four MMIO pages with its second and third pages aliased to MMIO2.
fn two_aliases() -> W {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2, 0));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x2000, w.r2, 0x1000));
    w
}

fn aliased_pages(w: &W) -> u32 {
    w.m.lookup(MMIO).unwrap().aliased_pages
}

#[test]
fn settling_an_unaccounted_alias_lowers_the_aliased_count_once_per_alias() {
    let mut w = two_aliases();
    // Without accounting the caller owns the count: it stays at 2.
    assert_eq!(w.m.reset_aliased_page(MMIO + 0x1000, false), Ok(Status::Success));
    assert_eq!(aliased_pages(&w), 2);
    assert_eq!(w.m.settle_unaccounted_alias(MMIO + 0x3000), Ok(()));
    assert_eq!(aliased_pages(&w), 1);
    assert_eq!(w.m.check_sync(), vec![]);
    // The one unaccounted alias is settled: the alias left is an accounted one.
    let digest = w.m.state_digest();
    assert_eq!(w.m.settle_unaccounted_alias(MMIO), Err(Error::InvalidParameter));
    assert_eq!(w.m.state_digest(), digest);
    ok!(w, w.m.reset_aliased_page(MMIO + 0x2000, true));
    assert_eq!(aliased_pages(&w), 0);
}

#[test]
fn settling_needs_a_handler_an_unaccounted_alias_and_an_aliased_count() {
    let mut w = two_aliases();
    assert_eq!(w.m.settle_unaccounted_alias(0x3000), Err(Error::NotFound));
    // Aliases, all of them accounted.
    let digest = w.m.state_digest();
    assert_eq!(w.m.settle_unaccounted_alias(MMIO), Err(Error::InvalidParameter));
    assert_eq!(w.m.state_digest(), digest);
    // An unaccounted alias, but a count already at zero.
    assert_eq!(w.m.reset_aliased_page(MMIO + 0x1000, false), Ok(Status::Success));
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 0,
    })
    .unwrap();
    let digest = w.m.state_digest();
    assert_eq!(w.m.settle_unaccounted_alias(MMIO), Err(Error::InvalidParameter));
    assert_eq!(w.m.state_digest(), digest);
}

/// A handler type's kind is hashed as an enum discriminant, a machine word (`write_usize`):
/// two managers whose only type differs in kind alone digest differently.
#[test]
fn state_digest_sees_a_handler_type_kind() {
    let digest = |kind| {
        let layout = MemoryLayout::builder().ram(0, 4).build().unwrap();
        let mut m = Manager::with_layout(layout).unwrap();
        m.register_type(HandlerTypeConfig::new(kind, "t")).unwrap();
        m.state_digest()
    };
    assert_eq!(digest(HandlerKind::Write), digest(HandlerKind::Write));
    assert_ne!(digest(HandlerKind::Write), digest(HandlerKind::All));
    assert_ne!(digest(HandlerKind::All), digest(HandlerKind::Mmio));
}
