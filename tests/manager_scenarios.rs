//! The seed's trickiest paths, end to end: shared sub-page pages, only-upgrade, temp-off and
//! re-arm, MMIO aliasing and its undoing, the dirty bitmap, allocator exhaustion, and
//! `check_sync` seeing every kind of injected corruption.

mod common;
use common::{prot, upd};
use pgmsim::handler::TreeFault;
use pgmsim::page::NIL_PAGE_ID;
use pgmsim::{
    Corruption, Error, HandlerKind, HandlerState, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig,
    MemoryLayout, Mismatch, Mmio2Handle, NemMode, NemProtection, OpResult, PageState, PageType, PhysHandlerApi,
    PlatformEvent, RecordingPlatform, Status,
};

const MMIO: u64 = 0x10_0000; // 16 MMIO pages
const MMIO2_GPA: u64 = 0x20_0000; // region A (8 pages)
const HIGH: u64 = 0x1_2340_0000; // region C (100 pages), above 4 GiB

struct W {
    m: Manager<RecordingPlatform>,
    write: HandlerTypeHandle,
    all: HandlerTypeHandle,
    mmio: HandlerTypeHandle,
    r2a: Mmio2Handle,
    r2b: Mmio2Handle,
}

fn world_with(max_handlers: u32) -> W {
    let b = MemoryLayout::builder().ram(0, 64).mmio(MMIO, 16);
    let (b, r2a) = b.mmio2_region(8);
    let (b, r2b) = b.mmio2_region(4);
    let (b, r2c) = b.mmio2_region(100);
    let l = b.map_mmio2(r2a, MMIO2_GPA).map_mmio2(r2c, HIGH).build().unwrap();
    let cfg = ManagerConfig {
        max_handlers,
        nem: NemMode::Notify,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(l, cfg, RecordingPlatform::mapped()).unwrap();
    let write = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "write"))
        .unwrap();
    let all = m
        .register_type(HandlerTypeConfig::new(HandlerKind::All, "all"))
        .unwrap();
    let mmio = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Mmio, "mmio"))
        .unwrap();
    W {
        m,
        write,
        all,
        mmio,
        r2a,
        r2b,
    }
}

fn world() -> W {
    world_with(64)
}

macro_rules! ok {
    ($w:ident, $e:expr) => {{
        let r: OpResult = $e;
        assert_eq!(r, Ok(Status::Success));
        assert_eq!($w.m.check_sync(), vec![]);
    }};
}

impl W {
    fn hs(&self, addr: u64) -> HandlerState {
        self.m.memory().page(addr).unwrap().handler_state()
    }
    fn events(&mut self) -> Vec<PlatformEvent> {
        self.m.platform_mut().take()
    }
}

// ---------------------------------------------------------------------------------------------
// Sub-page Write handlers sharing a page
// ---------------------------------------------------------------------------------------------

#[test]
fn two_sub_page_writes_deregister_lower_restores_upper_on_shared_page() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x17ff, w.write, 0, None));
    ok!(w, w.m.register(0x1800, 0x27ff, w.write, 0, None));
    assert_eq!(w.hs(0x1000), HandlerState::Write);
    w.events();
    ok!(w, w.m.deregister(0x1000));
    assert_eq!(w.hs(0x1000), HandlerState::Write);
    assert_eq!(w.hs(0x2000), HandlerState::Write);
    assert_eq!(
        w.events(),
        vec![
            prot(0x1000, NemProtection::RWX),
            upd(0x1000, HandlerState::Write, false),
            PlatformEvent::FlushAllTlbs,
            prot(0x1000, NemProtection::RX),
            // The only page was shared: NEM is told nothing was released (the seed returns early).
        ]
    );
}

#[test]
fn two_sub_page_writes_deregister_upper_restores_lower_on_shared_page() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x17ff, w.write, 0, None));
    ok!(w, w.m.register(0x1800, 0x27ff, w.write, 0, None));
    w.events();
    ok!(w, w.m.deregister(0x1800));
    assert_eq!(w.hs(0x1000), HandlerState::Write);
    assert_eq!(w.hs(0x2000), HandlerState::None);
    assert_eq!(
        w.events(),
        vec![
            prot(0x1000, NemProtection::RWX),
            prot(0x2000, NemProtection::RWX),
            upd(0x1000, HandlerState::Write, false),
            PlatformEvent::FlushAllTlbs,
            prot(0x1000, NemProtection::RX),
            PlatformEvent::NemHandlerDeregistered {
                kind: HandlerKind::Write,
                gc_phys: 0x2000,
                len: 0x1000
            },
        ]
    );
}

#[test]
fn three_sub_page_writes_sharing_a_page_every_deregistration_order() {
    let ranges = [(0x1000u64, 0x13ffu64), (0x1400, 0x17ff), (0x1800, 0x1bff)];
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for order in orders {
        let mut w = world();
        for (k, l) in ranges {
            ok!(w, w.m.register(k, l, w.write, 0, None));
        }
        assert_eq!(w.hs(0x1000), HandlerState::Write);
        for (n, &i) in order.iter().enumerate() {
            w.events();
            ok!(w, w.m.deregister(ranges[i].0));
            let ev = w.events();
            let last = n == 2;
            assert_eq!(
                w.hs(0x1000),
                if last { HandlerState::None } else { HandlerState::Write },
                "{order:?}"
            );
            let updates: Vec<_> = ev
                .iter()
                .filter(|e| matches!(e, PlatformEvent::UpdateShadowPtes { .. }))
                .collect();
            if last {
                assert!(updates.is_empty());
                assert_eq!(
                    ev.last(),
                    Some(&PlatformEvent::NemHandlerDeregistered {
                        kind: HandlerKind::Write,
                        gc_phys: 0x1000,
                        len: 0x1000
                    })
                );
            } else {
                // Recomputed once (the second neighbour finds the page already Write).
                assert_eq!(updates, vec![&upd(0x1000, HandlerState::Write, false)], "{order:?}");
                assert!(!ev
                    .iter()
                    .any(|e| matches!(e, PlatformEvent::NemHandlerDeregistered { .. })));
            }
        }
    }
}

#[test]
fn sub_page_write_next_to_temp_off_whole_page_neighbour_is_recomputed_from_neighbours_only() {
    // [0x1000,0x1fff] whole page with page 0x1000 off; [0x2000,0x27ff] sub-page: no sharing.
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    ok!(w, w.m.page_temp_off(0x1000, 0x1000));
    ok!(w, w.m.register(0x2000, 0x27ff, w.write, 0, None));
    ok!(w, w.m.deregister(0x2000));
    assert_eq!(
        w.hs(0x1000),
        HandlerState::Disabled,
        "the neighbour page is not touched"
    );
    assert_eq!(w.hs(0x2000), HandlerState::None);
}

// ---------------------------------------------------------------------------------------------
// Only upgrade
// ---------------------------------------------------------------------------------------------

#[test]
fn write_over_page_already_all_is_not_downgraded_and_gets_no_pte_update() {
    let mut w = world();
    w.m.inject(Corruption::PageState {
        page: 0x3000,
        state: HandlerState::All,
    })
    .unwrap();
    w.events();
    assert_eq!(w.m.register(0x2000, 0x4fff, w.write, 0, None), Ok(Status::Success));
    assert_eq!(w.hs(0x3000), HandlerState::All);
    assert_eq!(w.hs(0x2000), HandlerState::Write);
    assert_eq!(
        w.events(),
        vec![
            upd(0x2000, HandlerState::Write, false),
            prot(0x2000, NemProtection::RX),
            upd(0x4000, HandlerState::Write, false),
            prot(0x4000, NemProtection::RX),
            PlatformEvent::FlushAllTlbs,
            PlatformEvent::NemHandlerRegistered {
                kind: HandlerKind::Write,
                gc_phys: 0x2000,
                len: 0x3000
            },
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
    // Deregistration puts the page back to None regardless.
    ok!(w, w.m.deregister(0x2000));
}

#[test]
fn write_sharing_a_page_with_a_write_leaves_the_shared_page_alone() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x17ff, w.write, 0, None));
    w.events();
    ok!(w, w.m.register(0x1800, 0x1fff, w.write, 0, None));
    assert_eq!(
        w.events(),
        vec![PlatformEvent::NemHandlerRegistered {
            kind: HandlerKind::Write,
            gc_phys: 0x1800,
            len: 0x800
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Temp-off and re-arm
// ---------------------------------------------------------------------------------------------

#[test]
fn temp_off_then_reset_re_arms_with_pte_update_and_tlb_flush() {
    let mut w = world();
    ok!(w, w.m.register(0x4000, 0x7fff, w.all, 0, None));
    ok!(w, w.m.page_temp_off(0x4000, 0x5000));
    ok!(w, w.m.page_temp_off(0x4000, 0x7fff));
    assert_eq!(w.hs(0x5000), HandlerState::Disabled);
    w.events();
    ok!(w, w.m.reset(0x4000));
    assert_eq!(
        w.events(),
        vec![
            upd(0x5000, HandlerState::All, false),
            prot(0x5000, NemProtection::NONE),
            upd(0x7000, HandlerState::All, false),
            prot(0x7000, NemProtection::NONE),
            PlatformEvent::FlushAllTlbs,
        ]
    );
    assert_eq!(w.hs(0x5000), HandlerState::All);
    assert_eq!(w.m.lookup(0x4000).unwrap().temp_off_pages, 0);
}

// ---------------------------------------------------------------------------------------------
// MMIO aliasing
// ---------------------------------------------------------------------------------------------

#[test]
fn re_alias_to_another_mmio2_page_resets_the_old_alias_first() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x2000, w.r2a, 0x1000));
    let first = *w.m.memory().mmio2_page(w.r2a, 0x1000).unwrap();
    let second = *w.m.memory().mmio2_page(w.r2b, 0x3000).unwrap();
    let zero = w.m.layout().zero_page;
    w.events();
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x2000, w.r2b, 0x3000));
    let g = MMIO + 0x2000;
    assert_eq!(
        w.events(),
        vec![
            upd(g, HandlerState::Disabled, true),
            PlatformEvent::FlushAllTlbs,
            PlatformEvent::InvalidatePageMapEntry { gc_phys: g },
            PlatformEvent::NemBackingChanged {
                gc_phys: g,
                old_host_phys: first.host_phys(),
                new_host_phys: zero,
                prot: NemProtection::NONE
            },
            PlatformEvent::FlushEmulatorPhysTlbs,
            PlatformEvent::InvalidatePageMapEntry { gc_phys: g },
            PlatformEvent::NemBackingChanged {
                gc_phys: g,
                old_host_phys: zero,
                new_host_phys: second.host_phys(),
                prot: NemProtection::RWX
            },
        ]
    );
    let p = *w.m.memory().page(g).unwrap();
    assert_eq!((p.host_phys(), p.page_id()), (second.host_phys(), second.page_id()));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 1);

    // Same page again: AlreadyAliased, nothing changes, nothing is called.
    let d = w.m.state_digest();
    assert_eq!(
        w.m.page_alias_mmio2(MMIO, g + 0x10, w.r2b, 0x3abc),
        Ok(Status::AlreadyAliased)
    );
    assert_eq!(w.m.state_digest(), d);
    assert_eq!(w.events(), vec![]);
    assert_eq!(w.m.check_sync(), vec![]);
}

#[test]
fn alias_hc_on_special_alias_is_already_aliased_and_on_mmio2_alias_is_not_mmio2() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x1fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_hc(MMIO, MMIO, 0x5_0000));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0));
    let d = w.m.state_digest();
    w.events();
    assert_eq!(w.m.page_alias_hc(MMIO, MMIO, 0x6_0000), Ok(Status::AlreadyAliased));
    assert_eq!(w.m.page_alias_hc(MMIO, MMIO + 0x1000, 0x6_0000), Err(Error::NotMmio2));
    assert_eq!(w.m.state_digest(), d);
    assert_eq!(w.events(), vec![]);
    assert_eq!(w.m.memory().page(MMIO).unwrap().host_phys(), 0x5_0000);
}

#[test]
fn deregistering_mmio_handler_with_aliases_restores_mmio_zero_pages() {
    let mut w = world();
    let initial: Vec<_> = (0..4).map(|i| *w.m.memory().page(MMIO + i * 0x1000).unwrap()).collect();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0x2000));
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x3000, 0xfee0_0000));
    w.events();
    ok!(w, w.m.deregister(MMIO));
    let zero = w.m.layout().zero_page;
    for i in 0..4u64 {
        let p = *w.m.memory().page(MMIO + i * 0x1000).unwrap();
        assert_eq!(p.page_type(), PageType::Mmio);
        assert_eq!(p.state(), PageState::Zero);
        assert_eq!(p.host_phys(), zero);
        assert_eq!(p.page_id(), NIL_PAGE_ID);
        assert_eq!(p.handler_state(), HandlerState::None);
        assert!(!p.not_in_hm());
        assert_eq!(p.without_nem_state(), initial[i as usize].without_nem_state());
    }
    let ev = w.events();
    for g in [MMIO + 0x1000, MMIO + 0x3000] {
        assert!(ev.contains(&upd(g, HandlerState::Disabled, true)));
        assert!(ev.contains(&PlatformEvent::InvalidatePageMapEntry { gc_phys: g }));
    }
    assert_eq!(ev.iter().filter(|e| **e == PlatformEvent::FlushAllTlbs).count(), 2);
    assert_eq!(
        ev.iter()
            .filter(|e| **e == PlatformEvent::FlushEmulatorPhysTlbs)
            .count(),
        2
    );
    // NEM: the aliased pages got a backing change, the others a protection change.
    assert!(ev.contains(&prot(MMIO, NemProtection::NONE)));
    assert!(!ev.contains(&prot(MMIO + 0x1000, NemProtection::NONE)));
    assert_eq!(
        ev.last(),
        Some(&PlatformEvent::NemHandlerDeregistered {
            kind: HandlerKind::Mmio,
            gc_phys: MMIO,
            len: 0x4000
        })
    );
}

#[test]
fn deregister_ex_of_mmio_handler_with_aliases_then_re_register() {
    let mut w = world();
    let id = w.m.create(w.mmio, 0, None).unwrap();
    ok!(w, w.m.register_ex(id, MMIO, MMIO + 0xfff));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO, w.r2a, 0));
    ok!(w, w.m.deregister_ex(id));
    assert_eq!(w.m.handler_info(id).unwrap().aliased_pages, 0);
    ok!(w, w.m.register_ex(id, MMIO, MMIO + 0xfff));
    assert_eq!(w.hs(MMIO), HandlerState::All);
}

// ---------------------------------------------------------------------------------------------
// Dirty bitmap
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_mmio2_with_bitmap_sets_exactly_the_re_armed_bits_above_4_gib() {
    let mut w = world();
    ok!(w, w.m.register(HIGH, HIGH + 100 * 0x1000 - 1, w.write, 0, None));
    let dirty = [0u64, 1, 5, 26, 27, 28, 60, 63, 64, 90, 99];
    for &p in &dirty {
        ok!(w, w.m.page_temp_off(HIGH, HIGH + p * 0x1000 + 0x123));
    }
    assert_eq!(w.m.lookup(HIGH).unwrap().temp_off_pages, dirty.len() as u32);
    let offset = 37u32; // not a multiple of 64: bits cross word boundaries
    let mut bm = vec![0u64; 3];
    bm[2] = 1 << 63; // a bit the caller owns stays as it was
    w.events();
    assert_eq!(w.m.reset_mmio2_with_bitmap(HIGH, &mut bm, offset), Ok(Status::Success));
    let mut expected = vec![0u64, 0, 1 << 63];
    for &p in &dirty {
        let bit = offset as u64 + p;
        expected[(bit / 64) as usize] |= 1 << (bit % 64);
    }
    assert_eq!(bm, expected);
    for p in 0..100 {
        assert_eq!(w.hs(HIGH + p * 0x1000), HandlerState::Write);
    }
    let ev = w.events();
    let updated: Vec<u64> = ev
        .iter()
        .filter_map(|e| match e {
            PlatformEvent::UpdateShadowPtes { gc_phys, .. } => Some((gc_phys - HIGH) >> 12),
            _ => None,
        })
        .collect();
    assert_eq!(updated, dirty.to_vec());
    assert_eq!(ev.last(), Some(&PlatformEvent::FlushAllTlbs));
    assert_eq!(w.m.check_sync(), vec![]);
    // A second harvest finds nothing.
    let mut again = vec![0u64; 3];
    assert_eq!(
        w.m.reset_mmio2_with_bitmap(HIGH, &mut again, offset),
        Ok(Status::Success)
    );
    assert_eq!(again, vec![0, 0, 0]);
}

#[test]
fn reset_mmio2_with_bitmap_per_chunk_handlers_share_one_bitmap() {
    // Two chunks of the high region, each with its own Write handler, harvested into one bitmap.
    let mut w = world();
    ok!(w, w.m.register(HIGH, HIGH + 0x31fff, w.write, 0, None)); // 50 pages
    ok!(w, w.m.register(HIGH + 0x32000, HIGH + 0x63fff, w.write, 0, None)); // 50 pages
    ok!(w, w.m.page_temp_off(HIGH, HIGH + 49 * 0x1000));
    ok!(w, w.m.page_temp_off(HIGH + 0x32000, HIGH + 0x32000));
    ok!(w, w.m.page_temp_off(HIGH + 0x32000, HIGH + 0x63000));
    let mut bm = vec![0u64; 2];
    assert_eq!(w.m.reset_mmio2_with_bitmap(HIGH, &mut bm, 0), Ok(Status::Success));
    assert_eq!(
        w.m.reset_mmio2_with_bitmap(HIGH + 0x32000, &mut bm, 50),
        Ok(Status::Success)
    );
    assert_eq!(bm, vec![(1 << 49) | (1 << 50), 1 << (99 - 64)]);
    assert_eq!(w.m.check_sync(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Allocator
// ---------------------------------------------------------------------------------------------

#[test]
fn allocator_exhaustion_and_recovery_capacity_32() {
    let mut w = world_with(32);
    assert_eq!(w.m.capacity(), 32);
    for i in 0..32u64 {
        ok!(w, w.m.register(i * 0x1000, i * 0x1000 + 0x7ff, w.write, i, None));
    }
    assert_eq!(w.m.live_handlers(), 32);
    let d = w.m.state_digest();
    assert_eq!(
        w.m.register(0x30000, 0x30fff, w.write, 0, None),
        Err(Error::OutOfResources)
    );
    assert_eq!(w.m.create(w.all, 0, None), Err(Error::OutOfResources));
    assert_eq!(w.m.state_digest(), d);
    for i in (0..32u64).step_by(3) {
        ok!(w, w.m.deregister(i * 0x1000));
    }
    assert_eq!(w.m.live_handlers(), 32 - 11);
    for i in 0..11u64 {
        ok!(
            w,
            w.m.register(
                0x20000 + i * 0x1000 + 0x800,
                0x20000 + i * 0x1000 + 0xfff,
                w.write,
                0,
                None
            )
        );
    }
    assert_eq!(
        w.m.register(0x30000, 0x30fff, w.write, 0, None),
        Err(Error::OutOfResources)
    );
    // Drain completely and refill.
    for h in w.m.handlers() {
        ok!(w, w.m.deregister(h.key));
    }
    assert_eq!(w.m.live_handlers(), 0);
    for i in 0..32u64 {
        ok!(w, w.m.register(i * 0x1000, i * 0x1000 + 0xfff, w.all, 0, None));
    }
    assert_eq!(w.m.check_sync(), vec![]);
}

#[test]
fn capacity_is_validated_and_rounded_up_to_16() {
    let (l, ..) = {
        let b = MemoryLayout::builder().ram(0, 4);
        (b.build().unwrap(), ())
    };
    let cfg = |n| ManagerConfig {
        max_handlers: n,
        ..ManagerConfig::default()
    };
    for (n, cap) in [(32, 32), (33, 48), (47, 48), (6144, 6144), (65536, 65536)] {
        let m = Manager::new(l.clone(), cfg(n), RecordingPlatform::default()).unwrap();
        assert_eq!(m.capacity(), cap);
    }
    for n in [0, 31, 65537, u32::MAX] {
        assert_eq!(
            Manager::new(l.clone(), cfg(n), RecordingPlatform::default()).err(),
            Some(Error::InvalidParameter)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// check_sync sees every injected corruption
// ---------------------------------------------------------------------------------------------

/// A world with one handler of every shape, in sync.
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

#[test]
fn check_sync_reports_page_state_corruptions() {
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x4000,
            state: HandlerState::Write
        }),
        vec![Mismatch::PageState {
            page: 0x4000,
            expected: HandlerState::All,
            actual: HandlerState::Write
        }]
    );
    // Disabled is always acceptable on a handled page, but not for the temp-off count.
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x2000,
            state: HandlerState::Disabled
        }),
        vec![Mismatch::TempOffCount {
            handler: 0x1800,
            kept: 0,
            found: 1
        }]
    );
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x4000,
            state: HandlerState::None
        }),
        vec![Mismatch::MissingState {
            page: 0x4000,
            handler: 0x4000
        }]
    );
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x9000,
            state: HandlerState::Disabled
        }),
        vec![Mismatch::StrayState {
            page: 0x9000,
            actual: HandlerState::Disabled
        }]
    );
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x3f000,
            state: HandlerState::All
        }),
        vec![Mismatch::StrayState {
            page: 0x3f000,
            actual: HandlerState::All
        }]
    );
    // The shared sub-page page.
    assert_eq!(
        corrupt(Corruption::PageState {
            page: 0x1000,
            state: HandlerState::None
        }),
        vec![Mismatch::MissingState {
            page: 0x1000,
            handler: 0x1000
        }]
    );
    // An alias that is no longer Disabled.
    assert_eq!(
        corrupt(Corruption::PageState {
            page: MMIO + 0x1000,
            state: HandlerState::All
        }),
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
    // The node no longer agrees with its record.
    let m = corrupt(Corruption::TreeRange {
        handler: 0x8000,
        key: 0x8000,
        last: 0x8ffe,
    });
    assert!(m.contains(&Mismatch::HandlerRange { handler: 0x8000 }), "{m:?}");
    // Out of order / overlapping with its neighbour.
    let m = corrupt(Corruption::TreeRange {
        handler: 0x8000,
        key: 0x5000,
        last: 0x8fff,
    });
    assert!(
        m.iter().any(|x| matches!(x, Mismatch::Tree(TreeFault::Order { .. }))),
        "{m:?}"
    );
    // Inverted.
    let m = corrupt(Corruption::TreeRange {
        handler: 0x8000,
        key: 0x8fff,
        last: 0x8000,
    });
    assert!(
        m.iter()
            .any(|x| matches!(x, Mismatch::Tree(TreeFault::Inverted { .. }))),
        "{m:?}"
    );
    // Height and balance.
    let m = corrupt(Corruption::TreeHeight {
        handler: 0x8000,
        height: 9,
    });
    assert!(
        m.iter().any(|x| matches!(x, Mismatch::Tree(TreeFault::Balance { .. }))),
        "{m:?}"
    );
    let m = corrupt(Corruption::TreeHeight {
        handler: 0x8000,
        height: u8::MAX,
    });
    assert!(
        m.iter().any(|x| matches!(x, Mismatch::Tree(TreeFault::Balance { .. }))),
        "{m:?}"
    );
    // Count.
    assert_eq!(
        corrupt(Corruption::TreeCount { count: 99 }),
        vec![Mismatch::Tree(TreeFault::Count)]
    );
}

#[test]
fn check_sync_reports_allocator_corruption() {
    let m = corrupt(Corruption::FreeBit { handler: 0x4000 });
    assert!(m.iter().any(|x| matches!(x, Mismatch::Allocator { .. })), "{m:?}");
}

#[test]
fn inject_not_found_for_missing_targets() {
    let mut w = populated();
    assert_eq!(
        w.m.inject(Corruption::PageState {
            page: 0x80_0000,
            state: HandlerState::All
        }),
        Err(Error::NotFound)
    );
    assert_eq!(
        w.m.inject(Corruption::AliasedCount {
            handler: 0x3000,
            count: 1
        }),
        Err(Error::NotFound)
    );
    assert_eq!(
        w.m.inject(Corruption::TreeHeight {
            handler: 0x3000,
            height: 1
        }),
        Err(Error::NotFound)
    );
    assert_eq!(
        w.m.inject(Corruption::FreeBit { handler: u64::MAX }),
        Err(Error::NotFound)
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------------------------

/// check_sync treated the stretch before a handler starting on the last byte of a RAM range as
/// handler-free up to the end of the range, so the handler's page was reported as a stray.
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

/// A corrupted AVL height of 255 overflowed `verify`'s height arithmetic (a panic in debug
/// builds) instead of being reported.
#[test]
fn regression_check_sync_tree_height_255_does_not_panic() {
    let m = corrupt(Corruption::TreeHeight {
        handler: 0x1000,
        height: u8::MAX,
    });
    assert!(
        m.iter().any(|x| matches!(x, Mismatch::Tree(TreeFault::Balance { .. }))),
        "{m:?}"
    );
}

/// The per-page lookup hint must never hide a handler: after the hinted handler of a shared
/// page goes, lookups on that page still find the others (through the tree).
#[test]
fn lookup_hint_on_shared_page_survives_deregistration_of_either_handler() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x13ff, w.write, 1, None));
    ok!(w, w.m.register(0x1400, 0x17ff, w.write, 2, None));
    ok!(w, w.m.register(0x1800, 0x1fff, w.write, 3, None));
    for (a, user) in [
        (0x1000, 1),
        (0x13ff, 1),
        (0x1400, 2),
        (0x17ff, 2),
        (0x1800, 3),
        (0x1fff, 3),
    ] {
        assert_eq!(w.m.lookup_range(a).map(|r| r.3), Some(user));
    }
    ok!(w, w.m.deregister(0x1800)); // the last registered: the page's hint
    assert_eq!(w.m.lookup_range(0x1000).map(|r| r.3), Some(1));
    assert_eq!(w.m.lookup_range(0x17ff).map(|r| r.3), Some(2));
    assert_eq!(w.m.lookup_range(0x1800), None);
    assert!(!w.m.is_registered(0x1fff));
    ok!(w, w.m.deregister(0x1000));
    assert_eq!(w.m.is_all(0x1400), Ok(false));
    ok!(w, w.m.register(0x1800, 0x1fff, w.write, 4, None));
    assert_eq!(w.m.lookup(0x1abc).unwrap().user, 4);
    assert_eq!(w.m.lookup(0x1500).unwrap().user, 2);
}
