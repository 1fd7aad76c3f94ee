//! The NEM side of deregistration and the NEM state bits, which the simulator cannot judge:
//! its reference model keeps no NEM state and its platform ignores the byte range a
//! deregistration reports. So the rules are pinned here.
//!
//! - **Released range.** When a handler goes, NEM hears of the bytes `[start, end]` of its
//!   pages that no remaining handler touches: a partial first page is dropped when another
//!   handler still touches it and widened to the page's first byte when none does; a partial
//!   last page likewise (dropped, or widened to its last byte) — except a handler whose last
//!   byte is the first byte of a page keeps that byte as the end (the original tests the
//!   offset of the last byte, not of the byte after it). Nothing left, no notification.
//! - **Edge pages.** A page the handler shared stays Write-monitored for the handlers still
//!   on it, and NEM never sees it transiently writable (D15).
//! - **NEM state.** What the platform answers is stored in the released pages; a platform
//!   that keeps the trait's defaults leaves the state bits as they were.
//!
//! The grid test enumerates handler placements at page boundaries, one byte off them and
//! mid-page, with zero, one or two neighbours sharing each edge page.

use pgmsim::{
    Gpa, HandlerKind, HandlerState, HandlerTypeConfig, HandlerTypeHandle, Manager, ManagerConfig, MemoryLayout,
    NemMode, NemProtection, NoopPlatform, PageDescriptor, Platform, PlatformEvent, ShadowUpdate, Status,
};
use pgmsim_testkit::RecordingPlatform;

const PAGE: u64 = 0x1000;
const OFFSET_MASK: u64 = PAGE - 1;
const RAM_PAGES: u32 = 8;

fn page_base(addr: u64) -> u64 {
    addr & !OFFSET_MASK
}

/// A Write handler by its bytes (only Write types may share a page: every other kind covers
/// whole pages).
#[derive(Debug, Clone, Copy)]
struct Placed {
    first: u64,
    last: u64,
}

impl Placed {
    fn touches(&self, page: u64) -> bool {
        self.first <= page + OFFSET_MASK && self.last >= page
    }
}

/// Who shares the first (or last) page of the handler under test.
#[derive(Debug, Clone, Copy)]
enum Neighbours {
    None,
    /// One handler right next to it.
    Adjacent,
    /// One byte at the far end of the page, not adjacent.
    FarByte,
    /// Two: the adjacent one and a byte at the far end of the page.
    Two,
}

const NEIGHBOURS: [Neighbours; 4] = [
    Neighbours::None,
    Neighbours::Adjacent,
    Neighbours::FarByte,
    Neighbours::Two,
];

fn placed(first: u64, last: u64) -> Placed {
    Placed { first, last }
}

/// The handlers below `first` on its page, or `None` if the shape does not fit.
fn below(first: u64, shape: Neighbours) -> Option<Vec<Placed>> {
    let base = page_base(first);
    let room = first - base;
    match shape {
        Neighbours::None => Some(vec![]),
        Neighbours::Adjacent if room >= 1 => Some(vec![placed(base, first - 1)]),
        Neighbours::FarByte if room >= 2 => Some(vec![placed(base, base)]),
        Neighbours::Two if room >= 2 => Some(vec![placed(base, base), placed(base + 1, first - 1)]),
        _ => None,
    }
}

/// The handlers above `last` on its page, or `None` if the shape does not fit.
fn above(last: u64, shape: Neighbours) -> Option<Vec<Placed>> {
    let end = page_base(last) + OFFSET_MASK;
    let room = end - last;
    match shape {
        Neighbours::None => Some(vec![]),
        Neighbours::Adjacent if room >= 1 => Some(vec![placed(last + 1, end)]),
        Neighbours::FarByte if room >= 2 => Some(vec![placed(end, end)]),
        Neighbours::Two if room >= 2 => Some(vec![placed(last + 1, end - 1), placed(end, end)]),
        _ => None,
    }
}

/// The bytes NEM must hear were released when `gone` is deregistered and `left` remain.
fn expected_release(gone: Placed, left: &[Placed]) -> Option<(u64, u64)> {
    let touched = |page: u64| left.iter().any(|h| h.touches(page));
    let (first_page, last_page) = (page_base(gone.first), page_base(gone.last));
    let start = if gone.first & OFFSET_MASK == 0 || !touched(first_page) {
        first_page
    } else {
        first_page + PAGE
    };
    let end = if gone.last & OFFSET_MASK == 0 {
        gone.last
    } else if touched(last_page) {
        last_page.checked_sub(1)?
    } else {
        last_page + OFFSET_MASK
    };
    (start <= end).then_some((start, end))
}

/// The state a page must have once `left` are the handlers: Write while one touches it.
fn expected_state(page: u64, left: &[Placed]) -> HandlerState {
    if left.iter().any(|h| h.touches(page)) {
        HandlerState::Write
    } else {
        HandlerState::None
    }
}

struct World {
    m: Manager<RecordingPlatform>,
    write: HandlerTypeHandle,
}

fn world() -> World {
    let layout = MemoryLayout::builder().ram(0, RAM_PAGES).build().unwrap();
    let cfg = ManagerConfig {
        nem: NemMode::Notify,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(layout, cfg, RecordingPlatform::mapped()).unwrap();
    let write = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "write"))
        .unwrap();
    World { m, write }
}

impl World {
    fn register(&mut self, h: Placed) {
        let r = self.m.register(h.first, h.last, self.write, 0, None);
        assert_eq!(r, Ok(Status::Success), "register {h:x?}");
    }
}

/// Deregisters `gone` with `left` around it and checks the NEM release, the edge pages'
/// states and that no shared page was ever reported writable.
fn check_case(gone: Placed, left: &[Placed]) {
    let mut w = world();
    for &h in left {
        w.register(h);
    }
    w.register(gone);
    w.m.platform_mut().take();
    assert_eq!(w.m.deregister(gone.first), Ok(Status::Success));
    let events = w.m.platform_mut().take();
    let released: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match *e {
            PlatformEvent::NemHandlerDeregistered { gc_phys, len, .. } => Some((gc_phys.0, gc_phys.0 + len - 1)),
            _ => None,
        })
        .collect();
    let want: Vec<(u64, u64)> = expected_release(gone, left).into_iter().collect();
    assert_eq!(released, want, "NEM release of {gone:x?} beside {left:x?}");
    for page in (page_base(gone.first)..=gone.last).step_by(PAGE as usize) {
        let state = expected_state(page, left);
        assert_eq!(
            w.m.page(page).unwrap().handler_state(),
            state,
            "page {page:#x}: {gone:x?} beside {left:x?}"
        );
        let prots: Vec<NemProtection> = events
            .iter()
            .filter_map(|e| match *e {
                PlatformEvent::NemProtectionChanged { gc_phys, prot } if gc_phys.0 == page => Some(prot),
                _ => None,
            })
            .collect();
        assert_eq!(
            prots.last(),
            Some(&w.m.page(page).unwrap().nem_protection()),
            "page {page:#x}"
        );
        if state != HandlerState::None {
            assert!(
                prots.iter().all(|p| !p.can_write()),
                "shared page {page:#x} reported writable on the way: {prots:?} ({gone:x?} beside {left:x?})"
            );
        }
    }
}

#[test]
fn deregistration_releases_exactly_the_pages_no_other_handler_touches() {
    const OFFSETS_FIRST: [u64; 4] = [0, 1, 0x7ff, 0xfff];
    const OFFSETS_LAST: [u64; 5] = [0, 1, 0x7ff, 0xffe, 0xfff];
    let mut cases = 0;
    for first_page in 0..3u64 {
        for first_off in OFFSETS_FIRST {
            let first = first_page * PAGE + first_off;
            for last_page in first_page..first_page + 3 {
                for last_off in OFFSETS_LAST {
                    let last = last_page * PAGE + last_off;
                    if last < first {
                        continue;
                    }
                    for b in NEIGHBOURS {
                        for a in NEIGHBOURS {
                            let (Some(mut left), Some(up)) = (below(first, b), above(last, a)) else {
                                continue;
                            };
                            // Both neighbours on the one page of a handler inside it: the byte
                            // shapes may collide; keep only disjoint sets.
                            left.extend(up);
                            let disjoint = left
                                .iter()
                                .enumerate()
                                .all(|(i, x)| left[i + 1..].iter().all(|y| x.last < y.first || y.last < x.first));
                            if !disjoint {
                                continue;
                            }
                            check_case(placed(first, last), &left);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 1197, "the grid changed size");
}

/// A handler in page 0 whose last page is shared: the page before it does not exist, so
/// nothing is released (and nothing wraps around to the top of the address space).
#[test]
fn deregistration_in_page_zero_with_a_shared_last_page_releases_nothing() {
    let gone = placed(0, 0x7ff);
    let left = [placed(0x800, 0xfff)];
    check_case(gone, &left);
    assert_eq!(expected_release(gone, &left), None);
}

/// A platform that gives the released pages a NEM state of its own.
struct NemAnswers(u8);

impl Platform for NemAnswers {
    fn update_shadow_ptes(&mut self, _: Gpa, _: &PageDescriptor, _: bool) -> ShadowUpdate {
        ShadowUpdate::default()
    }
    fn flush_all_tlbs(&mut self) {}
    fn invalidate_page_map_entry(&mut self, _: Gpa) {}
    fn flush_emulator_phys_tlbs(&mut self) {}
    fn nem_handler_deregistered(&mut self, _: HandlerKind, _: Gpa, _: u64) -> Option<u8> {
        Some(self.0)
    }
}

fn manager_on<P: Platform>(platform: P) -> (Manager<P>, HandlerTypeHandle) {
    let layout = MemoryLayout::builder().ram(0, RAM_PAGES).build().unwrap();
    let cfg = ManagerConfig {
        nem: NemMode::Notify,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(layout, cfg, platform).unwrap();
    let ty = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "write"))
        .unwrap();
    (m, ty)
}

#[test]
fn the_nem_state_answered_for_a_deregistration_lands_on_every_released_page() {
    let (mut m, ty) = manager_on(NemAnswers(3));
    assert_eq!(m.register(0x1000, 0x3fff, ty, 0, None), Ok(Status::Success));
    assert_eq!(m.deregister(0x1000), Ok(Status::Success));
    let nem = |m: &Manager<NemAnswers>, a: u64| m.page(a).unwrap().nem_state();
    assert_eq!([nem(&m, 0x1000), nem(&m, 0x2000), nem(&m, 0x3000)], [3, 3, 3]);
    assert_eq!([nem(&m, 0x0), nem(&m, 0x4000)], [0, 0], "only the released pages");
}

/// The trait's default NEM methods keep the state bits the page has: a platform that does
/// not implement NEM never rewrites them.
#[test]
fn default_nem_methods_leave_the_state_bits_alone() {
    let (mut m, ty) = manager_on(NoopPlatform);
    for page in [0x1000, 0x2000] {
        m.set_nem_state(page, 3).unwrap();
    }
    assert_eq!(m.register(0x1000, 0x2fff, ty, 0, None), Ok(Status::Success));
    assert_eq!(m.page(0x1000).unwrap().nem_state(), 3, "after a protection change");
    assert_eq!(m.deregister(0x1000), Ok(Status::Success));
    assert_eq!(m.page(0x2000).unwrap().nem_state(), 3, "after a deregistration");
}

/// A backing change (an MMIO page aliased to MMIO2) under the default methods keeps the bits.
#[test]
fn default_nem_backing_change_leaves_the_state_bits_alone() {
    const MMIO: u64 = 0x10_0000;
    const MMIO2: u64 = 0x20_0000;
    let b = MemoryLayout::builder().ram(0, RAM_PAGES).mmio(MMIO, 4);
    let (b, region) = b.mmio2_region(2);
    let layout = b.map_mmio2(region, MMIO2).build().unwrap();
    let cfg = ManagerConfig {
        nem: NemMode::Notify,
        ..ManagerConfig::default()
    };
    let mut m = Manager::new(layout, cfg, NoopPlatform).unwrap();
    let mmio = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Mmio, "mmio"))
        .unwrap();
    assert_eq!(m.register(MMIO, MMIO + 0x3fff, mmio, 0, None), Ok(Status::Success));
    m.set_nem_state(MMIO + 0x1000, 2).unwrap();
    assert_eq!(m.page_alias_mmio2(MMIO, MMIO + 0x1000, region, 0), Ok(Status::Success));
    let page = m.page(MMIO + 0x1000).unwrap();
    assert_eq!(page.host_phys(), m.page(MMIO2).unwrap().host_phys(), "the alias took");
    assert_eq!(page.nem_state(), 2);
}
