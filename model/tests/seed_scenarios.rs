//! Seed cross-check: the tricky paths of `PGMAllHandler.cpp`, run on the model and the
//! production manager in lock-step (`Pair::run` asserts identical outcome, platform events,
//! page descriptors, handler list, live count and `check_sync` after every step), plus the
//! values the seed itself dictates, asserted explicitly, so that agreement on a wrong answer
//! does not pass either.

mod common;

use common::{Op, Outcome, Pair, MMIO, MMIO2_MAPPED, RAM0};
use pgmsim::api::NemMode;
use pgmsim::{
    Error, HandlerState, Manager, ManagerConfig, Mismatch, PageType, PhysHandlerApi, PlatformEvent, RecordingPlatform,
    Status,
};
use pgmsim_model::Model;

const WRITE: usize = 0;
const WRITE_NOT_IN_HM: usize = 1;
const ALL: usize = 2;
const MMIO_TY: usize = 3;

fn reg(first: u64, last: u64, ty: usize) -> Op {
    Op::Register {
        first,
        last,
        ty,
        user: 0,
        described: false,
    }
}

fn upd(gc_phys: u64, state: HandlerState, flush_ptes: bool) -> PlatformEvent {
    PlatformEvent::UpdateShadowPtes {
        gc_phys,
        state,
        flush_ptes,
    }
}

/// The events of one alias reset, as the seed's `pgmHandlerPhysicalResetAliasedPage` does it.
fn alias_reset(page: u64, flush_emulator: bool) -> Vec<PlatformEvent> {
    let mut v = vec![
        upd(page, HandlerState::Disabled, true),
        PlatformEvent::FlushAllTlbs,
        PlatformEvent::InvalidatePageMapEntry { gc_phys: page },
    ];
    if flush_emulator {
        v.push(PlatformEvent::FlushEmulatorPhysTlbs);
    }
    v
}

impl Pair {
    /// Runs `op`, which must succeed plainly.
    fn ok(&mut self, op: Op) {
        let what = format!("{op:?}");
        assert_eq!(self.op(op), Ok(Status::Success), "{what}");
    }

    fn state(&self, addr: u64) -> HandlerState {
        self.model.api.page(addr).expect("RAM page").handler_state()
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 1 {
        return vec![vec![0]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// Two sub-page Write handlers on one page, deregistered in each order: the page stays
/// `Write` while one is left (the seed resets it to `None`, then `RecalcPageState` finds the
/// neighbour above or below and raises it again, updating the PTEs), then goes to `None`.
#[test]
fn two_subpage_write_handlers_sharing_a_page_deregister_each_order() {
    let (a, b) = ((0x3000u64, 0x37ffu64), (0x3800u64, 0x3bffu64));
    for order in permutations(2) {
        let mut p = Pair::default();
        assert_eq!(
            p.events_of(reg(a.0, a.1, WRITE)).1,
            vec![upd(0x3000, HandlerState::Write, false), PlatformEvent::FlushAllTlbs]
        );
        assert_eq!(
            p.events_of(reg(b.0, b.1, WRITE)).1,
            vec![],
            "only upgrade: the page is already Write"
        );
        let handlers = [a, b];
        let (first, second) = (handlers[order[0]], handlers[order[1]]);
        let (r, events) = p.events_of(Op::Deregister { addr: first.0 });
        assert_eq!(r, Outcome::Op(Ok(Status::Success)));
        assert_eq!(
            events,
            vec![upd(0x3000, HandlerState::Write, false), PlatformEvent::FlushAllTlbs]
        );
        assert_eq!(p.state(0x3000), HandlerState::Write);
        let (_, events) = p.events_of(Op::Deregister { addr: second.0 });
        assert_eq!(events, vec![], "deregistration never touches PTEs by itself");
        assert_eq!(p.state(0x3000), HandlerState::None);
    }
}

/// Three sub-page Write handlers around one shared page (two of them reaching into the
/// neighbouring pages), deregistered in all six orders.
#[test]
fn three_subpage_write_handlers_sharing_a_page_deregister_each_order() {
    let hs = [(0x4c00u64, 0x53ffu64), (0x5400, 0x57ff), (0x5800, 0x6400)];
    for order in permutations(3) {
        let mut p = Pair::default();
        for &(f, l) in &hs {
            assert_eq!(p.op(reg(f, l, WRITE)), Ok(Status::Success));
        }
        let mut left: Vec<(u64, u64)> = hs.to_vec();
        for &i in &order {
            assert_eq!(
                p.op(Op::Deregister { addr: hs[i].0 }),
                Ok(Status::Success),
                "order {order:?}"
            );
            left.retain(|h| *h != hs[i]);
            for page in [0x4000u64, 0x5000, 0x6000] {
                let touched = left.iter().any(|&(f, l)| f <= page + 0xfff && l >= page);
                let want = if touched {
                    HandlerState::Write
                } else {
                    HandlerState::None
                };
                assert_eq!(
                    p.state(page),
                    want,
                    "page {page:#x} after removing {:?} (order {order:?})",
                    hs[i]
                );
            }
        }
    }
}

/// A sub-page handler on the first and on the last page of a RAM range, with a neighbour on
/// the same page, and deregistration through `deregister_ex` (the node survives).
#[test]
fn subpage_handlers_on_range_edges_and_deregister_ex() {
    let mut p = Pair::default();
    p.ok(reg(RAM0, RAM0 + 0x0ff, WRITE));
    p.ok(reg(RAM0 + 0x100, RAM0 + 0x1ff, WRITE));
    p.ok(reg(0xf800, 0xffff, WRITE));
    p.ok(reg(0xf000, 0xf7ff, WRITE));
    assert_eq!(
        p.op(reg(0xfffe, 0x1_0001, WRITE)),
        Err(Error::NoRamRange),
        "past the range end"
    );
    p.run(Op::Create {
        ty: WRITE,
        user: 5,
        described: true,
        count: 1,
    });
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 4,
            first: 0xf700,
            last: 0xf7ff
        }),
        Err(Error::Conflict)
    );
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 4,
            first: 0xe800,
            last: 0xefff
        }),
        Ok(Status::Success)
    );
    assert_eq!(p.op(Op::DeregisterEx { h: 4 }), Ok(Status::Success));
    assert_eq!(
        p.op(Op::DeregisterEx { h: 4 }),
        Err(Error::NotFound),
        "double deregister"
    );
    assert_eq!(p.op(Op::DeregisterEx { h: 0 }), Ok(Status::Success));
    assert_eq!(
        p.state(0),
        HandlerState::Write,
        "the neighbour above keeps the first page"
    );
    assert_eq!(p.op(Op::Destroy { h: 0 }), Ok(Status::Success));
    assert_eq!(p.op(Op::Destroy { h: 0 }), Err(Error::InvalidHandle), "double destroy");
    assert_eq!(
        p.op(Op::Destroy { h: 1 }),
        Err(Error::WrongOrder),
        "destroy while registered"
    );
}

/// Temp-off then reset: `Disabled` pages, an idempotent second temp-off, the count, and the
/// re-arm through the only-upgrade loop (PTEs updated, one TLB flush).
#[test]
fn temp_off_then_reset() {
    for ty in [ALL, WRITE, WRITE_NOT_IN_HM] {
        let mut p = Pair::default();
        p.ok(reg(0x8000, 0xbfff, ty));
        let armed = p.state(0x8000);
        assert_eq!(
            p.events_of(Op::PageTempOff {
                addr: 0x8000,
                page: 0x9123
            })
            .1,
            vec![],
            "no PTE change"
        );
        p.ok(Op::PageTempOff {
            addr: 0x8000,
            page: 0xa000,
        });
        assert_eq!(
            p.op(Op::PageTempOff {
                addr: 0x8000,
                page: 0xa800
            }),
            Ok(Status::Success),
            "already off"
        );
        assert_eq!(
            p.op(Op::PageTempOff {
                addr: 0x9000,
                page: 0xa800
            }),
            Err(Error::NotFound),
            "not the start"
        );
        assert_eq!(
            p.op(Op::PageTempOff {
                addr: 0x8000,
                page: 0xc000
            }),
            Err(Error::InvalidParameter)
        );
        assert_eq!(p.state(0x9000), HandlerState::Disabled);
        assert_eq!(p.model.api.lookup(0x8000).map(|h| h.temp_off_pages), Some(2));
        assert_eq!(
            p.model.api.page(0x9000).map(|d| d.not_in_hm()),
            Some(ty == WRITE_NOT_IN_HM),
            "kept by _ONLY"
        );
        let (r, events) = p.events_of(Op::Reset { addr: 0x8000 });
        assert_eq!(r, Outcome::Op(Ok(Status::Success)));
        assert_eq!(
            events,
            vec![
                upd(0x9000, armed, false),
                upd(0xa000, armed, false),
                PlatformEvent::FlushAllTlbs
            ]
        );
        assert_eq!(
            p.events_of(Op::Reset { addr: 0x8000 }).1,
            vec![],
            "nothing left to re-arm"
        );
    }
    let mut p = Pair::default();
    p.ok(reg(0x3100, 0x3fff, WRITE));
    assert_eq!(
        p.op(Op::PageTempOff {
            addr: 0x3100,
            page: 0x3100
        }),
        Err(Error::InvalidParameter),
        "sub-page"
    );
    p.ok(reg(MMIO, MMIO + 0xfff, MMIO_TY));
    assert_eq!(
        p.op(Op::PageTempOff { addr: MMIO, page: MMIO }),
        Err(Error::AccessDenied),
        "Mmio kind"
    );
}

fn mmio_pair() -> Pair {
    let mut p = Pair::default();
    assert_eq!(p.op(reg(MMIO, MMIO + 0x3fff, MMIO_TY)), Ok(Status::Success));
    p
}

const R1: u32 = 1;
const R2: u32 = 2;

/// MMIO alias, re-alias to another MMIO2 page, alias to the same page, and the wrong-kind
/// cases; the descriptor takes the MMIO2 page's backing and id.
#[test]
fn mmio_alias_realias_and_same_page() {
    let mut p = mmio_pair();
    let page = MMIO + 0x1000;
    let alias = |region, offset| Op::PageAliasMmio2 {
        addr: MMIO,
        page,
        region,
        offset,
    };
    let (r, events) = p.events_of(alias(R2, 0x1000));
    assert_eq!(r, Outcome::Op(Ok(Status::Success)));
    assert_eq!(events, vec![PlatformEvent::InvalidatePageMapEntry { gc_phys: page }]);
    let layout = p.model.api.layout().clone();
    let backing = layout.initial_mmio2_page(&layout.mmio2_regions[1], 1);
    let d = p.model.api.page(page).expect("page");
    assert_eq!(
        (d.page_type(), d.host_phys(), d.page_id()),
        (PageType::Mmio2AliasMmio, backing.host_phys(), backing.page_id())
    );
    assert_eq!(d.handler_state(), HandlerState::Disabled);

    assert_eq!(
        p.events_of(alias(R2, 0x1fff)),
        (Outcome::Op(Ok(Status::AlreadyAliased)), vec![]),
        "same page"
    );
    let (r, events) = p.events_of(alias(R1, 0x7000));
    assert_eq!(r, Outcome::Op(Ok(Status::Success)));
    let mut want = alias_reset(page, false);
    want.push(PlatformEvent::FlushEmulatorPhysTlbs);
    want.push(PlatformEvent::InvalidatePageMapEntry { gc_phys: page });
    assert_eq!(
        events, want,
        "re-alias resets the old alias first and flushes the emulator TLBs"
    );
    assert_eq!(p.model.api.lookup(MMIO).map(|h| h.aliased_pages), Some(1));

    assert_eq!(p.op(alias(R1, 0x8000)), Err(Error::OutOfRange));
    assert_eq!(p.op(alias(3, 0)), Err(Error::OutOfRange));
    assert_eq!(p.op(alias(0, 0)), Err(Error::OutOfRange));
    assert_eq!(
        p.op(Op::PageAliasMmio2 {
            addr: MMIO,
            page: MMIO + 0x4000,
            region: R1,
            offset: 0
        }),
        Err(Error::InvalidParameter)
    );
    p.ok(reg(0x8000, 0x8fff, ALL));
    assert_eq!(
        p.op(Op::PageAliasMmio2 {
            addr: 0x8000,
            page: 0x8000,
            region: R1,
            offset: 0
        }),
        Err(Error::AccessDenied)
    );
    p.ok(reg(0x9000, 0x9fff, MMIO_TY));
    assert_eq!(
        p.op(Op::PageAliasMmio2 {
            addr: 0x9000,
            page: 0x9000,
            region: R1,
            offset: 0
        }),
        Err(Error::NotMmio2),
        "RAM page"
    );
}

/// `page_alias_hc` on a page already special-aliased answers AlreadyAliased whatever the
/// host page; across alias kinds it is `NotMmio2` both ways.
#[test]
fn alias_hc_on_special_aliased_page() {
    let mut p = mmio_pair();
    let hc = |page, host_phys| Op::PageAliasHc {
        addr: MMIO,
        page,
        host_phys,
    };
    assert_eq!(p.op(hc(MMIO, 0xfee0_0000)), Ok(Status::Success));
    let d = p.model.api.page(MMIO).expect("page");
    assert_eq!(
        (d.page_type(), d.host_phys(), d.page_id()),
        (PageType::SpecialAliasMmio, 0xfee0_0000, u32::MAX)
    );
    assert_eq!(
        p.events_of(hc(MMIO, 0xfee0_0000)),
        (Outcome::Op(Ok(Status::AlreadyAliased)), vec![])
    );
    assert_eq!(
        p.op(hc(MMIO + 0x10, 0x1234_5000)),
        Ok(Status::AlreadyAliased),
        "any host page"
    );
    assert_eq!(
        p.op(Op::PageAliasMmio2 {
            addr: MMIO,
            page: MMIO,
            region: R1,
            offset: 0
        }),
        Err(Error::NotMmio2)
    );
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO + 0x2000,
        region: R1,
        offset: 0,
    });
    assert_eq!(p.op(hc(MMIO + 0x2000, 0x5000)), Err(Error::NotMmio2));
    assert_eq!(
        p.op(hc(MMIO + 0x3000, 1 << 48)),
        Err(Error::InvalidParameter),
        "does not fit a descriptor"
    );
    assert_eq!(p.model.api.lookup(MMIO).map(|h| h.aliased_pages), Some(2));
    // Reset undoes both; the emulator flush follows because one was an MMIO2 alias.
    let (_, events) = p.events_of(Op::Reset { addr: MMIO });
    let mut want = alias_reset(MMIO, false);
    want.extend(alias_reset(MMIO + 0x2000, false));
    want.push(PlatformEvent::FlushEmulatorPhysTlbs);
    assert_eq!(events, want);
    assert_eq!(p.state(MMIO), HandlerState::All);
}

/// Deregistering an Mmio handler with aliased pages resets each alias (emulator TLBs flushed
/// every time) and leaves plain MMIO pages with no handler state.
#[test]
fn deregister_mmio_handler_with_aliased_pages() {
    let mut p = mmio_pair();
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO + 0x1000,
        region: R2,
        offset: 0,
    });
    p.ok(Op::PageAliasHc {
        addr: MMIO,
        page: MMIO + 0x3000,
        host_phys: 0xfee0_0000,
    });
    let (r, events) = p.events_of(Op::Deregister { addr: MMIO });
    assert_eq!(r, Outcome::Op(Ok(Status::Success)));
    let mut want = alias_reset(MMIO + 0x1000, true);
    want.extend(alias_reset(MMIO + 0x3000, true));
    assert_eq!(events, want);
    let initial = p
        .model
        .api
        .layout()
        .initial_page(&p.model.api.layout().ram_ranges[3], 1);
    assert_eq!(p.model.api.page(MMIO + 0x1000), Some(initial));
    assert_eq!(p.model.api.live_handlers(), 0);
}

/// MMIO2 dirty tracking above 4 GiB: temp-off marks pages dirty, the bitmap reset with an
/// offset sets one bit per re-armed page, and a too-small bitmap or a non-Write handler fail.
#[test]
fn reset_mmio2_with_bitmap_with_offset() {
    let mut p = Pair::default();
    let base = MMIO2_MAPPED;
    p.ok(reg(base, base + 0x7fff, WRITE));
    p.ok(Op::PageTempOff {
        addr: base,
        page: base + 0x2000,
    });
    p.ok(Op::PageTempOff {
        addr: base,
        page: base + 0x5fff,
    });
    assert_eq!(p.state(base + 0x5000), HandlerState::Disabled);
    assert_eq!(
        p.run(Op::ResetMmio2WithBitmap {
            addr: base,
            words: 0,
            offset: 0
        }),
        Outcome::Bitmap(Err(Error::InvalidParameter), vec![])
    );
    let pattern = 0x8000_0000_0000_0001u64;
    assert_eq!(
        p.run(Op::ResetMmio2WithBitmap {
            addr: base,
            words: 1,
            offset: 57
        }),
        Outcome::Bitmap(Err(Error::InvalidParameter), vec![pattern]),
        "57 + 8 pages > 64 bits"
    );
    let (r, events) = p.events_of(Op::ResetMmio2WithBitmap {
        addr: base,
        words: 2,
        offset: 60,
    });
    assert_eq!(
        r,
        Outcome::Bitmap(Ok(Status::Success), vec![pattern | 1 << 62, pattern | 1 << 1])
    );
    assert_eq!(
        events,
        vec![
            upd(base + 0x2000, HandlerState::Write, false),
            upd(base + 0x5000, HandlerState::Write, false),
            PlatformEvent::FlushAllTlbs
        ]
    );
    assert_eq!(
        p.run(Op::ResetMmio2WithBitmap {
            addr: base,
            words: 1,
            offset: 3
        }),
        Outcome::Bitmap(Ok(Status::Success), vec![pattern]),
        "nothing dirty"
    );
    p.ok(reg(0x8000, 0x8fff, ALL));
    assert_eq!(
        p.run(Op::ResetMmio2WithBitmap {
            addr: 0x8000,
            words: 1,
            offset: 0
        }),
        Outcome::Bitmap(Err(Error::WrongType), vec![pattern])
    );
}

/// VM reset undoes every alias of every Mmio handler with accounting, then flushes the
/// emulator TLBs once.
#[test]
fn vm_reset_undoes_all_aliases() {
    let mut p = Pair::default();
    p.ok(reg(MMIO, MMIO + 0x1fff, MMIO_TY));
    p.ok(reg(MMIO + 0x8000, MMIO + 0xffff, MMIO_TY));
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO + 0x1000,
        region: R1,
        offset: 0x2000,
    });
    p.ok(Op::PageAliasHc {
        addr: MMIO + 0x8000,
        page: MMIO + 0x9000,
        host_phys: 0xfee0_0000,
    });
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO + 0x8000,
        page: MMIO + 0xf000,
        region: R2,
        offset: 0x3000,
    });
    let (r, events) = p.events_of(Op::VmReset);
    assert_eq!(r, Outcome::Op(Ok(Status::Success)));
    let mut want = alias_reset(MMIO + 0x1000, false);
    want.extend(alias_reset(MMIO + 0x9000, false));
    want.extend(alias_reset(MMIO + 0xf000, false));
    want.push(PlatformEvent::FlushEmulatorPhysTlbs);
    assert_eq!(events, want);
    assert!(p.model.api.handlers().iter().all(|h| h.aliased_pages == 0));
    assert_eq!(p.events_of(Op::VmReset).1, vec![], "nothing aliased: no flush");
}

/// `reset_aliased_page` with accounting keeps the count right; without, the count stays
/// stale and `check_sync` must report exactly that until `reset` zeroes it.
#[test]
fn reset_aliased_page_with_and_without_accounting() {
    let mut p = mmio_pair();
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO,
        region: R1,
        offset: 0,
    });
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO + 0x1000,
        region: R1,
        offset: 0x1000,
    });
    let (r, events) = p.events_of(Op::ResetAliasedPage {
        page: MMIO + 0x10,
        accounting: true,
    });
    assert_eq!(r, Outcome::Op(Ok(Status::Success)));
    assert_eq!(events, alias_reset(MMIO, true));
    assert_eq!(p.state(MMIO), HandlerState::All);
    assert_eq!(
        p.op(Op::ResetAliasedPage {
            page: MMIO,
            accounting: true
        }),
        Err(Error::WrongType),
        "no longer aliased"
    );
    assert_eq!(
        p.op(Op::ResetAliasedPage {
            page: 0x1_0000,
            accounting: false
        }),
        Err(Error::InvalidParameter),
        "gap"
    );
    assert_eq!(
        p.op(Op::ResetAliasedPage {
            page: MMIO + 0x1000,
            accounting: false
        }),
        Ok(Status::Success)
    );
    let stale = vec![Mismatch::AliasedCount {
        handler: MMIO,
        kept: 1,
        found: 0,
    }];
    assert_eq!(p.mgr.api.check_sync(), stale, "the caller owns the count");
    assert_eq!(p.model.api.expected_sync_mismatches(), stale);
    // Re-aliasing and VM reset move the count with the aliases, keeping the stale part.
    p.ok(Op::PageAliasHc {
        addr: MMIO,
        page: MMIO + 0x2000,
        host_phys: 0x5000,
    });
    assert_eq!(p.model.api.lookup(MMIO).map(|h| h.aliased_pages), Some(2));
    p.ok(Op::VmReset);
    assert_eq!(p.mgr.api.check_sync(), stale);
    // Reset zeroes the count (the seed's gate is the count, so it runs and finds nothing).
    assert_eq!(p.events_of(Op::Reset { addr: MMIO }).1, vec![]);
    assert!(p.mgr.api.check_sync().is_empty());
}

/// `is_all` for each kind, at any address inside the handler; `NotFound` outside.
#[test]
fn is_all_for_each_kind() {
    let mut p = Pair::default();
    p.ok(reg(0x1000, 0x1fff, ALL));
    p.ok(reg(0x2000, 0x27ff, WRITE));
    p.ok(reg(0x3000, 0x3fff, WRITE_NOT_IN_HM));
    p.ok(reg(MMIO, MMIO + 0xfff, MMIO_TY));
    for (addr, want) in [
        (0x1fff, Ok(true)),
        (0x2100, Ok(false)),
        (0x3000, Ok(false)),
        (MMIO + 0x800, Ok(true)),
        (0x2800, Err(Error::NotFound)),
    ] {
        assert_eq!(p.run(Op::IsAll { addr }), Outcome::IsAll(want), "is_all({addr:#x})");
    }
    assert_eq!(p.model.api.page(0x3000).map(|d| d.not_in_hm()), Some(true));
}

/// Allocator exhaustion and recovery at capacity 32: creation, registration and dup fail
/// with `OutOfResources` and change nothing; one destroy makes room for exactly one node;
/// the destroyed id stays invalid.
#[test]
fn allocator_exhaustion_and_recovery() {
    let mut p = Pair::default();
    p.ok(reg(0x1000, 0x1fff, ALL));
    let r = p.run(Op::Create {
        ty: WRITE,
        user: 0,
        described: false,
        count: 33,
    });
    let Outcome::Ids(ids) = r else { panic!("create outcome") };
    assert_eq!(ids.iter().filter(|r| r.is_ok()).count(), 31);
    assert_eq!(ids.last(), Some(&Err(Error::OutOfResources)));
    assert_eq!(p.op(reg(0x2000, 0x2fff, ALL)), Err(Error::OutOfResources));
    assert_eq!(
        p.op(reg(0x2000, 0x1fff, ALL)),
        Err(Error::OutOfResources),
        "capacity is checked before the range"
    );
    assert_eq!(p.run(Op::Dup { h: 0 }), Outcome::Ids(vec![Err(Error::OutOfResources)]));
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 5,
            first: 0x2000,
            last: 0x2fff
        }),
        Ok(Status::Success),
        "existing nodes still register"
    );
    assert_eq!(p.op(Op::Destroy { h: 7 }), Ok(Status::Success));
    assert_eq!(p.run(Op::Dup { h: 0 }), Outcome::Ids(vec![Ok(())]));
    assert_eq!(p.run(Op::Dup { h: 0 }), Outcome::Ids(vec![Err(Error::OutOfResources)]));
    assert_eq!(p.op(Op::Deregister { addr: 0x1000 }), Ok(Status::Success));
    assert_eq!(p.op(reg(0x3000, 0x3fff, ALL)), Ok(Status::Success));
    assert_eq!(
        p.run(Op::HandlerInfo { h: 7 }),
        Outcome::Info(Err(Error::InvalidHandle)),
        "stale id"
    );
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 7,
            first: 0x4000,
            last: 0x4fff
        }),
        Err(Error::InvalidHandle)
    );
}

/// Registration validation order and the range rules (one byte, span, alignment, RAM).
#[test]
fn register_validation_order() {
    let mut p = Pair::default();
    assert_eq!(p.op(reg(0x2000, 0x1fff, 9)), Err(Error::InvalidHandle), "handle first");
    assert_eq!(
        p.op(reg(0x2000, 0x1fff, WRITE)),
        Err(Error::InvalidParameter),
        "last < first"
    );
    assert_eq!(
        p.op(reg(0x2000, 0x2000, WRITE)),
        Ok(Status::Success),
        "one byte (deliberate difference 3)"
    );
    assert_eq!(
        p.op(reg(0x3000, 0x37ff, WRITE_NOT_IN_HM)),
        Err(Error::InvalidParameter),
        "not-in-HM needs pages"
    );
    assert_eq!(
        p.op(reg(0x3000, 0x1_0000_3fff, ALL)),
        Err(Error::InvalidParameter),
        "over 4 GiB"
    );
    assert_eq!(
        p.op(reg(0x3000, 0x1_0000_2fff, ALL)),
        Err(Error::NoRamRange),
        "exactly 4 GiB passes the span check"
    );
    assert_eq!(p.op(reg(0x1_0000, 0x1_0fff, ALL)), Err(Error::NoRamRange), "gap");
    assert_eq!(
        p.op(reg(0x2_7000, 0x2_8fff, ALL)),
        Err(Error::NoRamRange),
        "two adjacent RAM ranges"
    );
    assert_eq!(p.op(reg(0x2000, 0x2fff, ALL)), Err(Error::Conflict), "one shared byte");
    assert_eq!(p.op(reg(0x2001, 0x2fff, WRITE)), Ok(Status::Success), "adjacent");
    assert_eq!(p.op(reg(u64::MAX, u64::MAX, WRITE)), Err(Error::NoRamRange));
    p.run(Op::Create {
        ty: ALL,
        user: 1,
        described: false,
        count: 1,
    });
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 2,
            first: 0x8000,
            last: 0x8fff
        }),
        Ok(Status::Success)
    );
    assert_eq!(
        p.op(Op::RegisterEx {
            h: 2,
            first: 0x9000,
            last: 0x9fff
        }),
        Err(Error::WrongOrder)
    );
}

/// With a platform that maps nothing, upgrades update PTEs but never flush TLBs; alias
/// resets still flush unconditionally (the model is told which platform it stands for).
#[test]
fn unmapped_platform_flushes_only_for_alias_resets() {
    let mut model = Model::new(common::layout(), common::config()).expect("model");
    model.set_all_pages_mapped(false);
    let mut p = Pair {
        model: common::Side::new(model),
        mgr: common::Side::new(
            Manager::new(common::layout(), common::config(), RecordingPlatform::default()).expect("manager"),
        ),
    };
    let (_, events) = p.events_of(reg(MMIO, MMIO + 0x1fff, MMIO_TY));
    assert_eq!(
        events,
        vec![
            upd(MMIO, HandlerState::All, false),
            upd(MMIO + 0x1000, HandlerState::All, false)
        ]
    );
    p.ok(Op::PageAliasMmio2 {
        addr: MMIO,
        page: MMIO,
        region: R1,
        offset: 0,
    });
    assert_eq!(
        p.events_of(Op::Reset { addr: MMIO }).1,
        [alias_reset(MMIO, false), vec![PlatformEvent::FlushEmulatorPhysTlbs]].concat()
    );
    p.ok(reg(0x3000, 0x37ff, WRITE));
    p.ok(reg(0x3800, 0x38ff, WRITE));
    assert_eq!(
        p.events_of(Op::Deregister { addr: 0x3000 }).1,
        vec![upd(0x3000, HandlerState::Write, false)]
    );
}

/// In exclusive NEM mode aliasing is refused before anything else is looked at.
#[test]
fn aliasing_not_supported_in_exclusive_nem_mode() {
    let config = ManagerConfig {
        nem: NemMode::Exclusive,
        ..common::config()
    };
    let mut model = Model::new(common::layout(), config).expect("model");
    let mut mgr = Manager::new(common::layout(), config, RecordingPlatform::mapped()).expect("manager");
    for api in [&mut model as &mut dyn PhysHandlerApi, &mut mgr] {
        assert_eq!(
            api.page_alias_mmio2(MMIO, MMIO, pgmsim::Mmio2Handle(9), 0),
            Err(Error::NotSupportedInNemMode)
        );
        assert_eq!(api.page_alias_hc(0, 0, 0), Err(Error::NotSupportedInNemMode));
    }
}
