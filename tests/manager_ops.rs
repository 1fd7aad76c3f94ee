//! Every operation of the production manager: its success path and each of its error paths,
//! errors asserted by variant, plus one test per deliberate difference of SPEC §3.
//!
//! Every expected failure goes through [`W::fails`], which also proves the failure changed
//! nothing (state digest) and told the platform nothing.

mod common;
use common::{prot, upd};
use pgmsim::addr::NIL_GC_PHYS;
use pgmsim::handler::MAX_HANDLER_TYPES;
use pgmsim::page::NIL_PAGE_ID;
use pgmsim::{
    Corruption, Error, HandlerId, HandlerKind, HandlerState, HandlerTypeConfig, HandlerTypeHandle, Manager,
    ManagerConfig, MemoryLayout, Mismatch, Mmio2Handle, NemMode, NemProtection, OpResult, PageState, PageType,
    PhysHandlerApi, PlatformEvent, RecordingPlatform, Status,
};

const RAM: u64 = 0; // 64 pages
const RAM2: u64 = 0x4_0000; // 16 pages, adjacent to RAM
const MMIO: u64 = 0x10_0000; // 16 MMIO pages
const MMIO2_GPA: u64 = 0x20_0000; // region A (8 pages) mapped here
const NOWHERE: u64 = 0x80_0000; // in no RAM range

struct W {
    m: Manager<RecordingPlatform>,
    write: HandlerTypeHandle,
    all: HandlerTypeHandle,
    mmio: HandlerTypeHandle,
    write_nihm: HandlerTypeHandle,
    r2a: Mmio2Handle,
    r2b: Mmio2Handle,
}

fn layout() -> (MemoryLayout, Mmio2Handle, Mmio2Handle) {
    let b = MemoryLayout::builder().ram(RAM, 64).ram(RAM2, 16).mmio(MMIO, 16);
    let (b, a) = b.mmio2_region(8);
    let (b, bb) = b.mmio2_region(4);
    (b.map_mmio2(a, MMIO2_GPA).build().unwrap(), a, bb)
}

fn world_with(nem: NemMode, max_handlers: u32) -> W {
    let (l, r2a, r2b) = layout();
    let cfg = ManagerConfig {
        max_handlers,
        nem,
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
    let mut nihm = HandlerTypeConfig::new(HandlerKind::Write, "write-not-in-hm");
    nihm.not_in_hm = true;
    let write_nihm = m.register_type(nihm).unwrap();
    W {
        m,
        write,
        all,
        mmio,
        write_nihm,
        r2a,
        r2b,
    }
}

/// Asserts a plain success and a clean `check_sync`.
macro_rules! ok {
    ($w:ident, $e:expr) => {{
        let r: OpResult = $e;
        assert_eq!(r, Ok(Status::Success));
        assert_eq!($w.m.check_sync(), vec![]);
    }};
}

fn world() -> W {
    world_with(NemMode::Notify, 64)
}

impl W {
    /// Runs a failing operation: asserts the error, an unchanged digest and no platform call.
    fn fails<T: std::fmt::Debug>(
        &mut self,
        expected: Error,
        f: impl FnOnce(&mut Manager<RecordingPlatform>) -> Result<T, Error>,
    ) {
        self.m.platform_mut().take();
        let before = self.m.state_digest();
        let live = self.m.live_handlers();
        let got = f(&mut self.m);
        assert_eq!(
            got.as_ref().err(),
            Some(&expected),
            "expected {expected:?}, got {got:?}"
        );
        assert_eq!(self.m.state_digest(), before, "failed operation changed the state");
        assert_eq!(self.m.live_handlers(), live);
        assert_eq!(self.m.platform().events, vec![], "failed operation called the platform");
    }

    fn hs(&self, addr: u64) -> HandlerState {
        self.m.memory().page(addr).unwrap().handler_state()
    }

    fn events(&mut self) -> Vec<PlatformEvent> {
        self.m.platform_mut().take()
    }
}

// ---------------------------------------------------------------------------------------------
// register_type
// ---------------------------------------------------------------------------------------------

#[test]
fn register_type_success_and_33rd_is_out_of_resources() {
    let mut w = world();
    let cfg = w.m.type_config(w.all).unwrap();
    assert_eq!(cfg.kind, HandlerKind::All);
    let mut handles = vec![w.write, w.all, w.mmio, w.write_nihm];
    for i in handles.len()..MAX_HANDLER_TYPES {
        handles.push(
            w.m.register_type(HandlerTypeConfig::new(HandlerKind::Write, &format!("t{i}")))
                .unwrap(),
        );
    }
    let mut sorted = handles.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), MAX_HANDLER_TYPES, "handles are distinct");
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(h.slot(), i);
    }
    w.fails(Error::OutOfResources, |m| {
        m.register_type(HandlerTypeConfig::new(HandlerKind::All, "33rd"))
    });
    // The earlier types still work.
    let last = *handles.last().unwrap();
    ok!(w, w.m.register(0x1000, 0x1fff, last, 0, None));
}

// ---------------------------------------------------------------------------------------------
// create / dup
// ---------------------------------------------------------------------------------------------

#[test]
fn create_success_takes_type_description_or_its_own() {
    let mut w = world();
    let a = w.m.create(w.write, 11, None).unwrap();
    let b = w.m.create(w.all, 12, Some("mine")).unwrap();
    let ia = w.m.handler_info(a).unwrap();
    let ib = w.m.handler_info(b).unwrap();
    assert_eq!((ia.key, ia.key_last, ia.page_count), (NIL_GC_PHYS, NIL_GC_PHYS, 0));
    assert_eq!(
        (&*ia.description, ia.user, ia.kind, ia.ty),
        ("write", 11, HandlerKind::Write, w.write)
    );
    assert_eq!((&*ib.description, ib.user, ib.kind), ("mine", 12, HandlerKind::All));
    assert_eq!(w.m.live_handlers(), 2);
    assert!(w.m.handlers().is_empty(), "created handlers are not registered");
    assert_eq!(w.m.check_sync(), vec![]);
}

#[test]
fn create_invalid_type_handles() {
    let mut w = world();
    let write = w.write;
    for bad in [
        0,
        u64::MAX,
        write.0 ^ 0x20,
        write.0 ^ (1 << 63),
        31,
        HandlerTypeHandle::derive(0, 1).0,
    ] {
        w.fails(Error::InvalidHandle, |m| m.create(HandlerTypeHandle(bad), 0, None));
    }
    // A slot that is not registered yet (slot 5) with plausible check bits.
    let salt = ManagerConfig::default().type_salt;
    w.fails(Error::InvalidHandle, |m| {
        m.create(HandlerTypeHandle::derive(5, salt), 0, None)
    });
}

#[test]
fn create_out_of_resources_at_capacity() {
    let mut w = world_with(NemMode::Off, 32);
    assert_eq!(w.m.capacity(), 32);
    let ids: Vec<_> = (0..32).map(|i| w.m.create(w.write, i, None).unwrap()).collect();
    let ty = w.write;
    w.fails(Error::OutOfResources, |m| m.create(ty, 0, None));
    w.fails(Error::OutOfResources, |m| m.dup(ids[0]));
    ok!(w, w.m.destroy(ids[3]));
    let again = w.m.create(w.write, 99, None).unwrap();
    assert_eq!(again.slot(), ids[3].slot());
    assert_ne!(again, ids[3]);
}

#[test]
fn dup_success_copies_type_user_description() {
    let mut w = world();
    let src = w.m.create(w.all, 77, Some("src")).unwrap();
    let d = w.m.dup(src).unwrap();
    let (is, id) = (w.m.handler_info(src).unwrap(), w.m.handler_info(d).unwrap());
    assert_eq!(
        (id.ty, id.user, id.description.clone(), id.key),
        (is.ty, is.user, is.description.clone(), NIL_GC_PHYS)
    );
    // From a registered handler: the copy is unregistered.
    ok!(w, w.m.register_ex(src, 0x3000, 0x3fff));
    let d2 = w.m.dup(src).unwrap();
    assert_eq!(w.m.handler_info(d2).unwrap().key, NIL_GC_PHYS);
    assert_eq!(w.m.handler_info(d2).unwrap().user, 77);
    ok!(w, w.m.register_ex(d2, 0x4000, 0x4fff));
}

#[test]
fn dup_invalid_handles() {
    let mut w = world();
    let a = w.m.create(w.write, 0, None).unwrap();
    ok!(w, w.m.destroy(a));
    for bad in [
        a,
        HandlerId(0),
        HandlerId(u64::MAX),
        HandlerId(1 << 32 | 63),
        HandlerId(a.0 ^ (1 << 40)),
    ] {
        w.fails(Error::InvalidHandle, |m| m.dup(bad));
    }
}

// ---------------------------------------------------------------------------------------------
// register_ex / register
// ---------------------------------------------------------------------------------------------

#[test]
fn register_ex_success_raises_pages_and_tells_platform() {
    let mut w = world();
    let id = w.m.create(w.all, 5, None).unwrap();
    w.events();
    ok!(w, w.m.register_ex(id, 0x2000, 0x3fff));
    for a in [0x2000, 0x3fff] {
        assert_eq!(w.hs(a), HandlerState::All);
    }
    assert_eq!(w.hs(0x1fff), HandlerState::None);
    assert_eq!(w.hs(0x4000), HandlerState::None);
    assert_eq!(
        w.events(),
        vec![
            upd(0x2000, HandlerState::All, false),
            prot(0x2000, NemProtection::NONE),
            upd(0x3000, HandlerState::All, false),
            prot(0x3000, NemProtection::NONE),
            PlatformEvent::FlushAllTlbs,
            PlatformEvent::NemHandlerRegistered {
                kind: HandlerKind::All,
                gc_phys: 0x2000,
                len: 0x2000
            },
        ]
    );
    let info = w.m.handler_info(id).unwrap();
    assert_eq!((info.key, info.key_last, info.page_count), (0x2000, 0x3fff, 2));
    assert_eq!(w.m.lookup(0x2abc).unwrap(), info);
}

#[test]
fn register_ex_no_tlb_flush_when_nothing_mapped_and_gc_phys_aliased_on_resync() {
    let mut w = world_with(NemMode::Off, 64);
    w.m.platform_mut().answer.flush_tlbs = false;
    let id = w.m.create(w.write, 0, None).unwrap();
    ok!(w, w.m.register_ex(id, 0x1000, 0x1fff));
    assert_eq!(
        w.events(),
        vec![upd(0x1000, HandlerState::Write, false)],
        "no flush, no NEM in NemMode::Off"
    );
    w.m.platform_mut().answer.resync = true;
    assert_eq!(
        w.m.register(0x5000, 0x6fff, w.write, 0, None),
        Ok(Status::GcPhysAliased)
    );
    assert_eq!(w.m.check_sync(), vec![]);
}

#[test]
fn register_ex_errors_in_validation_order() {
    let mut w = world();
    let id = w.m.create(w.write, 0, None).unwrap();
    let all = w.m.create(w.all, 0, None).unwrap();
    let mmio = w.m.create(w.mmio, 0, None).unwrap();
    let nihm = w.m.create(w.write_nihm, 0, None).unwrap();
    let stale = w.m.create(w.write, 0, None).unwrap();
    ok!(w, w.m.destroy(stale));
    // InvalidHandle first, even with a bad range.
    w.fails(Error::InvalidHandle, |m| m.register_ex(stale, 5, 4));
    w.fails(Error::InvalidHandle, |m| m.register_ex(HandlerId(u64::MAX), 0, 0xfff));
    // first > last.
    w.fails(Error::InvalidParameter, |m| m.register_ex(id, 0x2000, 0x1fff));
    // Longer than 4 GiB comes before alignment and the RAM range.
    w.fails(Error::InvalidParameter, |m| m.register_ex(id, 0, 1 << 32));
    // Whole-page kinds.
    w.fails(Error::InvalidParameter, |m| m.register_ex(all, 0x1000, 0x1ffe));
    w.fails(Error::InvalidParameter, |m| m.register_ex(all, 0x1001, 0x1fff));
    w.fails(Error::InvalidParameter, |m| {
        m.register_ex(mmio, MMIO + 0x800, MMIO + 0xfff)
    });
    w.fails(Error::InvalidParameter, |m| m.register_ex(nihm, 0x1000, 0x17ff));
    // Alignment comes before the RAM-range check.
    w.fails(Error::InvalidParameter, |m| {
        m.register_ex(all, NOWHERE + 1, NOWHERE + 0xfff)
    });
    // NoRamRange: nowhere, crossing into the adjacent range, past the end of a range.
    w.fails(Error::NoRamRange, |m| m.register_ex(id, NOWHERE, NOWHERE + 0xfff));
    w.fails(Error::NoRamRange, |m| m.register_ex(id, RAM2 - 0x1000, RAM2 + 0xfff));
    w.fails(Error::NoRamRange, |m| m.register_ex(id, MMIO + 0xf000, MMIO + 0x10fff));
    w.fails(Error::NoRamRange, |m| m.register_ex(id, u64::MAX, u64::MAX));
    // Conflict: a single shared byte.
    ok!(w, w.m.register_ex(id, 0x1000, 0x1fff));
    w.fails(Error::Conflict, |m| m.register_ex(all, 0x0, 0x1fff));
    let id2 = w.m.create(w.write, 0, None).unwrap();
    w.fails(Error::Conflict, |m| m.register_ex(id2, 0x1fff, 0x2100));
    w.fails(Error::Conflict, |m| m.register_ex(id2, 0x0, 0x1000));
    // Adjacent is fine.
    ok!(w, w.m.register_ex(id2, 0x2000, 0x2000));
    // WrongOrder: already registered, before any range check.
    w.fails(Error::WrongOrder, |m| m.register_ex(id, 5, 4));
    w.fails(Error::WrongOrder, |m| m.register_ex(id, 0x9000, 0x9fff));
}

#[test]
fn register_success_and_errors() {
    let mut w = world_with(NemMode::Notify, 32);
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 1, Some("d")));
    assert_eq!(&*w.m.lookup(0x1000).unwrap().description, "d");
    let write = w.write;
    w.fails(Error::InvalidHandle, |m| {
        m.register(0x3000, 0x3fff, HandlerTypeHandle(0), 0, None)
    });
    w.fails(Error::InvalidHandle, |m| {
        m.register(0x3000, 0x3fff, HandlerTypeHandle::NIL, 0, None)
    });
    w.fails(Error::InvalidParameter, |m| m.register(0x3000, 0x2fff, write, 0, None));
    w.fails(Error::NoRamRange, |m| m.register(NOWHERE, NOWHERE + 1, write, 0, None));
    w.fails(Error::Conflict, |m| m.register(0x1800, 0x2fff, write, 0, None));
    // A failed register leaks no node (fails() checks the live count too).
    for i in 0..31u64 {
        ok!(
            w,
            w.m.register(0x2000 + i * 0x1000, 0x2fff + i * 0x1000, write, 0, None)
        );
    }
    // Allocator full: OutOfResources before the range is even looked at.
    w.fails(Error::OutOfResources, |m| m.register(5, 4, write, 0, None));
    w.fails(Error::OutOfResources, |m| {
        m.register(RAM2, RAM2 + 0xfff, write, 0, None)
    });
    // but InvalidHandle still first.
    w.fails(Error::InvalidHandle, |m| {
        m.register(RAM2, RAM2 + 0xfff, HandlerTypeHandle(7), 0, None)
    });
    ok!(w, w.m.deregister(0x1000));
    ok!(w, w.m.register(RAM2, RAM2 + 0xfff, write, 0, None));
}

// ---------------------------------------------------------------------------------------------
// deregister_ex / destroy / deregister
// ---------------------------------------------------------------------------------------------

#[test]
fn deregister_ex_keeps_node_and_allows_re_register() {
    let mut w = world();
    let id = w.m.create(w.write, 3, None).unwrap();
    ok!(w, w.m.register_ex(id, 0x1000, 0x2fff));
    w.events();
    ok!(w, w.m.deregister_ex(id));
    let info = w.m.handler_info(id).unwrap();
    assert_eq!((info.key, info.key_last, info.user), (NIL_GC_PHYS, NIL_GC_PHYS, 3));
    assert_eq!(w.hs(0x1000), HandlerState::None);
    assert_eq!(w.hs(0x2000), HandlerState::None);
    assert_eq!(
        w.events(),
        vec![
            prot(0x1000, NemProtection::RWX),
            prot(0x2000, NemProtection::RWX),
            PlatformEvent::NemHandlerDeregistered {
                kind: HandlerKind::Write,
                gc_phys: 0x1000,
                len: 0x2000
            },
        ],
        "deregistration touches no PTE and flushes no TLB"
    );
    assert!(!w.m.is_registered(0x1000));
    assert_eq!(w.m.live_handlers(), 1);
    ok!(w, w.m.register_ex(id, 0x5000, 0x5fff));
}

#[test]
fn deregister_ex_errors() {
    let mut w = world();
    let id = w.m.create(w.write, 0, None).unwrap();
    w.fails(Error::NotFound, |m| m.deregister_ex(id));
    ok!(w, w.m.register_ex(id, 0x1000, 0x1fff));
    ok!(w, w.m.deregister_ex(id));
    w.fails(Error::NotFound, |m| m.deregister_ex(id));
    ok!(w, w.m.destroy(id));
    w.fails(Error::InvalidHandle, |m| m.deregister_ex(id));
    w.fails(Error::InvalidHandle, |m| m.deregister_ex(HandlerId(0)));
    w.fails(Error::InvalidHandle, |m| m.deregister_ex(HandlerId(u64::MAX)));
}

#[test]
fn destroy_success_and_errors() {
    let mut w = world();
    let id = w.m.create(w.write, 0, None).unwrap();
    ok!(w, w.m.register_ex(id, 0x1000, 0x1fff));
    w.fails(Error::WrongOrder, |m| m.destroy(id));
    ok!(w, w.m.deregister_ex(id));
    ok!(w, w.m.destroy(id));
    assert_eq!(w.m.live_handlers(), 0);
    w.fails(Error::InvalidHandle, |m| m.destroy(id));
    w.fails(Error::InvalidHandle, |m| m.handler_info(id));
    w.fails(Error::InvalidHandle, |m| m.destroy(HandlerId(0xdead_beef_0000_0001)));
}

#[test]
fn deregister_success_and_errors() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x1fff, w.all, 0, None));
    w.fails(Error::NotFound, |m| m.deregister(0x2000));
    w.fails(Error::NotFound, |m| m.deregister(NOWHERE));
    w.fails(Error::NotFound, |m| m.deregister(u64::MAX));
    ok!(w, w.m.deregister(0x1000));
    assert_eq!(w.m.live_handlers(), 0);
    assert_eq!(w.hs(0x1000), HandlerState::None);
    w.fails(Error::NotFound, |m| m.deregister(0x1000));
}

// ---------------------------------------------------------------------------------------------
// change_user_arg
// ---------------------------------------------------------------------------------------------

#[test]
fn change_user_arg_success_and_not_found() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 1, None));
    w.events();
    ok!(w, w.m.change_user_arg(0x1000, 0xfeed));
    assert_eq!(w.m.lookup(0x1800).unwrap().user, 0xfeed);
    assert_eq!(w.events(), vec![]);
    w.fails(Error::NotFound, |m| m.change_user_arg(0x3000, 1));
    w.fails(Error::NotFound, |m| m.change_user_arg(u64::MAX, 1));
}

// ---------------------------------------------------------------------------------------------
// reset
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_write_and_all_re_arm_temp_off_pages() {
    for (ty, state) in [(0, HandlerState::Write), (1, HandlerState::All)] {
        let mut w = world();
        let ty = [w.write, w.all][ty];
        ok!(w, w.m.register(0x1000, 0x4fff, ty, 0, None));
        // No temp-off pages: nothing to do, no platform call.
        w.events();
        ok!(w, w.m.reset(0x1000));
        assert_eq!(w.events(), vec![]);
        ok!(w, w.m.page_temp_off(0x1000, 0x2000));
        ok!(w, w.m.page_temp_off(0x1000, 0x4000));
        assert_eq!(w.m.lookup(0x1000).unwrap().temp_off_pages, 2);
        w.events();
        ok!(w, w.m.reset(0x1000));
        assert_eq!(w.m.lookup(0x1000).unwrap().temp_off_pages, 0);
        for a in [0x1000, 0x2000, 0x3000, 0x4000] {
            assert_eq!(w.hs(a), state);
        }
        let ev = w.events();
        assert_eq!(ev[0], upd(0x2000, state, false));
        assert!(ev.contains(&upd(0x4000, state, false)));
        assert_eq!(ev.last(), Some(&PlatformEvent::FlushAllTlbs));
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, PlatformEvent::UpdateShadowPtes { .. }))
                .count(),
            2
        );
    }
}

#[test]
fn reset_mmio_undoes_every_alias() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0));
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x3000, 0x7777_0000));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 2);
    w.events();
    ok!(w, w.m.reset(MMIO));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 0);
    for a in [MMIO + 0x1000, MMIO + 0x3000] {
        let p = *w.m.memory().page(a).unwrap();
        assert_eq!(
            (p.page_type(), p.state(), p.handler_state()),
            (PageType::Mmio, PageState::Zero, HandlerState::All)
        );
        assert_eq!((p.host_phys(), p.page_id()), (w.m.layout().zero_page, NIL_PAGE_ID));
    }
    let ev = w.events();
    assert_eq!(ev[0], upd(MMIO + 0x1000, HandlerState::Disabled, true));
    assert_eq!(ev[1], PlatformEvent::FlushAllTlbs);
    assert_eq!(
        ev.last(),
        Some(&PlatformEvent::FlushEmulatorPhysTlbs),
        "an MMIO2 alias was reset"
    );
    assert_eq!(
        ev.iter()
            .filter(|e| **e == PlatformEvent::FlushEmulatorPhysTlbs)
            .count(),
        1
    );

    // Only a special (HC) alias: no emulator flush.
    ok!(w, w.m.page_alias_hc(MMIO, MMIO, 0x7777_0000));
    w.events();
    ok!(w, w.m.reset(MMIO));
    assert!(!w.events().contains(&PlatformEvent::FlushEmulatorPhysTlbs));
}

#[test]
fn reset_not_found() {
    let mut w = world();
    w.fails(Error::NotFound, |m| m.reset(0x1000));
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    w.fails(Error::NotFound, |m| m.reset(0x1004));
    w.fails(Error::NotFound, |m| m.reset(u64::MAX));
}

// ---------------------------------------------------------------------------------------------
// reset_mmio2_with_bitmap
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_mmio2_with_bitmap_success_and_errors() {
    let mut w = world();
    ok!(w, w.m.register(MMIO2_GPA, MMIO2_GPA + 0x7fff, w.write, 0, None));
    ok!(w, w.m.register(0x1000, 0x1fff, w.all, 0, None));
    let mut bm = vec![0u64; 1];
    // Nothing dirty: success, no bit.
    ok!(w, w.m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut bm, 3));
    assert_eq!(bm, vec![0]);
    ok!(w, w.m.page_temp_off(MMIO2_GPA, MMIO2_GPA + 0x2000));
    ok!(w, w.m.page_temp_off(MMIO2_GPA, MMIO2_GPA + 0x7000));
    ok!(w, w.m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut bm, 3));
    assert_eq!(bm, vec![(1 << 5) | (1 << 10)]);
    assert_eq!(w.hs(MMIO2_GPA + 0x2000), HandlerState::Write);

    w.fails(Error::NotFound, |m| {
        m.reset_mmio2_with_bitmap(0x5000, &mut [0u64; 4], 0)
    });
    w.fails(Error::NotFound, |m| {
        m.reset_mmio2_with_bitmap(MMIO2_GPA + 0x1000, &mut [0u64; 4], 0)
    });
    w.fails(Error::WrongType, |m| {
        m.reset_mmio2_with_bitmap(0x1000, &mut [0u64; 4], 0)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [], 0)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [0u64; 1], 57)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [0u64; 4], u32::MAX)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [0u64; 4], u32::MAX - 7)
    });
    // Exactly enough bits is fine.
    ok!(w, w.m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut [0u64; 1], 56));
}

#[test]
fn reset_mmio2_with_bitmap_sync_cr3_on_resync() {
    let mut w = world();
    ok!(w, w.m.register(MMIO2_GPA, MMIO2_GPA + 0x7fff, w.write, 0, None));
    ok!(w, w.m.page_temp_off(MMIO2_GPA, MMIO2_GPA));
    w.m.platform_mut().answer.resync = true;
    let mut bm = [0u64; 1];
    assert_eq!(w.m.reset_mmio2_with_bitmap(MMIO2_GPA, &mut bm, 0), Ok(Status::SyncCr3));
    assert_eq!(bm, [1]);
    assert_eq!(w.m.check_sync(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// page_temp_off
// ---------------------------------------------------------------------------------------------

#[test]
fn page_temp_off_success_and_already_off_noop() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x3fff, w.write, 0, None));
    w.events();
    ok!(w, w.m.page_temp_off(0x1000, 0x2abc));
    assert_eq!(w.hs(0x2000), HandlerState::Disabled);
    assert_eq!(w.m.lookup(0x1000).unwrap().temp_off_pages, 1);
    assert_eq!(
        w.events(),
        vec![prot(0x2000, NemProtection::RWX)],
        "no PTE, no TLB flush"
    );
    let d = w.m.state_digest();
    ok!(w, w.m.page_temp_off(0x1000, 0x2000));
    assert_eq!(w.m.state_digest(), d, "already off: no-op");
    assert_eq!(w.events(), vec![]);
    assert_eq!(w.m.lookup(0x1000).unwrap().temp_off_pages, 1);
}

#[test]
fn page_temp_off_errors() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x3fff, w.all, 0, None));
    ok!(w, w.m.register(MMIO, MMIO + 0xfff, w.mmio, 0, None));
    w.fails(Error::NotFound, |m| m.page_temp_off(0x5000, 0x5000));
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(0x1000, 0x4000));
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(0x1000, 0xfff));
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(0x1000, u64::MAX));
    w.fails(Error::AccessDenied, |m| m.page_temp_off(MMIO, MMIO));
    // The page check comes before the kind check.
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(MMIO, MMIO + 0x1000));
}

// ---------------------------------------------------------------------------------------------
// page_alias_mmio2
// ---------------------------------------------------------------------------------------------

#[test]
fn page_alias_mmio2_success() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    let remap = *w.m.memory().mmio2_page(w.r2a, 0x2000).unwrap();
    let old = w.m.memory().page(MMIO + 0x1000).unwrap().host_phys();
    w.events();
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1234, w.r2a, 0x2000));
    let p = *w.m.memory().page(MMIO + 0x1000).unwrap();
    assert_eq!(p.page_type(), PageType::Mmio2AliasMmio);
    assert_eq!(
        (p.state(), p.handler_state()),
        (PageState::Allocated, HandlerState::Disabled)
    );
    assert_eq!((p.host_phys(), p.page_id()), (remap.host_phys(), remap.page_id()));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 1);
    assert_eq!(
        w.events(),
        vec![
            PlatformEvent::InvalidatePageMapEntry { gc_phys: MMIO + 0x1000 },
            PlatformEvent::NemBackingChanged {
                gc_phys: MMIO + 0x1000,
                old_host_phys: old,
                new_host_phys: remap.host_phys(),
                prot: NemProtection::RWX
            },
        ],
        "no PTE update: the next fault maps the alias"
    );
    // Unmapped region B works as a source too.
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x3000, w.r2b, 0x3fff));
}

#[test]
fn page_alias_mmio2_errors() {
    let mut w = world();
    let (r2a, mmio) = (w.r2a, w.mmio);
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, mmio, 0, None));
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    ok!(w, w.m.register(0x4000, 0x4fff, mmio, 0, None)); // an Mmio handler over RAM pages
    w.fails(Error::OutOfRange, |m| m.page_alias_mmio2(MMIO, MMIO, Mmio2Handle(0), 0));
    w.fails(Error::OutOfRange, |m| m.page_alias_mmio2(MMIO, MMIO, Mmio2Handle(3), 0));
    w.fails(Error::OutOfRange, |m| {
        m.page_alias_mmio2(MMIO, MMIO, Mmio2Handle(u32::MAX), 0)
    });
    w.fails(Error::OutOfRange, |m| m.page_alias_mmio2(MMIO, MMIO, r2a, 0x8000));
    w.fails(Error::OutOfRange, |m| m.page_alias_mmio2(MMIO, MMIO, r2a, u64::MAX));
    // The region is checked before the handler.
    w.fails(Error::OutOfRange, |m| m.page_alias_mmio2(NOWHERE, MMIO, r2a, 0x8000));
    w.fails(Error::NotFound, |m| m.page_alias_mmio2(NOWHERE, NOWHERE, r2a, 0));
    w.fails(Error::NotFound, |m| {
        m.page_alias_mmio2(MMIO + 0x1000, MMIO + 0x1000, r2a, 0)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.page_alias_mmio2(MMIO, MMIO + 0x4000, r2a, 0)
    });
    w.fails(Error::InvalidParameter, |m| m.page_alias_mmio2(MMIO, MMIO - 1, r2a, 0));
    w.fails(Error::AccessDenied, |m| m.page_alias_mmio2(0x1000, 0x1000, r2a, 0));
    // Not an MMIO page (RAM under an Mmio handler).
    w.fails(Error::NotMmio2, |m| m.page_alias_mmio2(0x4000, 0x4000, r2a, 0));
    // A special (HC) alias cannot be re-aliased to MMIO2.
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x2000, 0x5555_0000));
    w.fails(Error::NotMmio2, |m| m.page_alias_mmio2(MMIO, MMIO + 0x2000, r2a, 0));
}

// ---------------------------------------------------------------------------------------------
// page_alias_hc
// ---------------------------------------------------------------------------------------------

#[test]
fn page_alias_hc_success_and_errors() {
    let mut w = world();
    let (r2a, mmio) = (w.r2a, w.mmio);
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, mmio, 0, None));
    ok!(w, w.m.register(0x1000, 0x1fff, w.all, 0, None));
    ok!(w, w.m.register(0x4000, 0x4fff, mmio, 0, None));
    let zero = w.m.layout().zero_page;
    w.events();
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x2000, 0xabc_d000));
    let p = *w.m.memory().page(MMIO + 0x2000).unwrap();
    assert_eq!(p.page_type(), PageType::SpecialAliasMmio);
    assert_eq!(
        (p.state(), p.handler_state()),
        (PageState::Allocated, HandlerState::Disabled)
    );
    assert_eq!((p.host_phys(), p.page_id()), (0xabc_d000, NIL_PAGE_ID));
    assert_eq!(
        w.events(),
        vec![
            PlatformEvent::InvalidatePageMapEntry { gc_phys: MMIO + 0x2000 },
            PlatformEvent::NemBackingChanged {
                gc_phys: MMIO + 0x2000,
                old_host_phys: zero,
                new_host_phys: 0xabc_d000,
                prot: NemProtection::RWX
            },
        ]
    );
    // Already special-aliased: AlreadyAliased whatever the host page, nothing changes.
    let d = w.m.state_digest();
    assert_eq!(
        w.m.page_alias_hc(MMIO, MMIO + 0x2000, 0x1234_5000),
        Ok(Status::AlreadyAliased)
    );
    assert_eq!(w.m.state_digest(), d);
    assert_eq!(w.events(), vec![]);

    w.fails(Error::NotFound, |m| m.page_alias_hc(NOWHERE, NOWHERE, 0x1000));
    w.fails(Error::NotFound, |m| {
        m.page_alias_hc(MMIO + 0x1000, MMIO + 0x1000, 0x1000)
    });
    w.fails(Error::InvalidParameter, |m| {
        m.page_alias_hc(MMIO, MMIO + 0x4000, 0x1000)
    });
    w.fails(Error::AccessDenied, |m| m.page_alias_hc(0x1000, 0x1000, 0x1000));
    w.fails(Error::InvalidParameter, |m| m.page_alias_hc(MMIO, MMIO, 1 << 48));
    w.fails(Error::InvalidParameter, |m| m.page_alias_hc(MMIO, MMIO, u64::MAX));
    w.fails(Error::NotMmio2, |m| m.page_alias_hc(0x4000, 0x4000, 0x1000));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x3000, r2a, 0));
    w.fails(Error::NotMmio2, |m| m.page_alias_hc(MMIO, MMIO + 0x3000, 0x1000));
}

// ---------------------------------------------------------------------------------------------
// reset_aliased_page / vm_reset
// ---------------------------------------------------------------------------------------------

#[test]
fn reset_aliased_page_with_accounting() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0x1000));
    let aliased = *w.m.memory().page(MMIO + 0x1000).unwrap();
    let zero = w.m.layout().zero_page;
    w.events();
    ok!(w, w.m.reset_aliased_page(MMIO + 0x1fff, true));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 0);
    let p = *w.m.memory().page(MMIO + 0x1000).unwrap();
    assert_eq!(
        (p.page_type(), p.state(), p.host_phys()),
        (PageType::Mmio, PageState::Zero, zero)
    );
    assert_eq!((p.page_id(), p.handler_state()), (NIL_PAGE_ID, HandlerState::All));
    assert_eq!(
        w.events(),
        vec![
            upd(MMIO + 0x1000, HandlerState::Disabled, true),
            PlatformEvent::FlushAllTlbs,
            PlatformEvent::InvalidatePageMapEntry { gc_phys: MMIO + 0x1000 },
            PlatformEvent::FlushEmulatorPhysTlbs,
            PlatformEvent::NemBackingChanged {
                gc_phys: MMIO + 0x1000,
                old_host_phys: aliased.host_phys(),
                new_host_phys: zero,
                prot: NemProtection::NONE
            },
        ]
    );
}

#[test]
fn reset_aliased_page_without_accounting_leaves_count_to_caller() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x1000, 0x9000_0000));
    assert_eq!(w.m.reset_aliased_page(MMIO + 0x1000, false), Ok(Status::Success));
    assert_eq!(w.m.lookup(MMIO).unwrap().aliased_pages, 1);
    assert_eq!(
        w.m.check_sync(),
        vec![Mismatch::AliasedCount {
            handler: MMIO,
            kept: 1,
            found: 0
        }]
    );
    // The caller fixes the count (as the seed's callers do).
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 0,
    })
    .unwrap();
    assert_eq!(w.m.check_sync(), vec![]);
}

#[test]
fn reset_aliased_page_errors() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    w.fails(Error::InvalidParameter, |m| m.reset_aliased_page(NOWHERE, true));
    w.fails(Error::InvalidParameter, |m| m.reset_aliased_page(u64::MAX, false));
    w.fails(Error::WrongType, |m| m.reset_aliased_page(MMIO, true));
    w.fails(Error::WrongType, |m| m.reset_aliased_page(MMIO, false));
    w.fails(Error::WrongType, |m| m.reset_aliased_page(0x1000, false));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0));
    // Aliased count already zero: Internal with accounting, nothing changed.
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 0,
    })
    .unwrap();
    w.fails(Error::Internal, |m| m.reset_aliased_page(MMIO + 0x1000, true));
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 1,
    })
    .unwrap();
    // An aliased page that is not Disabled.
    w.m.inject(Corruption::PageState {
        page: MMIO + 0x1000,
        state: HandlerState::All,
    })
    .unwrap();
    w.fails(Error::Internal, |m| m.reset_aliased_page(MMIO + 0x1000, false));
    w.m.inject(Corruption::PageState {
        page: MMIO + 0x1000,
        state: HandlerState::Disabled,
    })
    .unwrap();
    // No handler contains the page (tree node moved away).
    w.m.inject(Corruption::TreeRange {
        handler: MMIO,
        key: NOWHERE,
        last: NOWHERE + 0x3fff,
    })
    .unwrap();
    w.fails(Error::NotFound, |m| m.reset_aliased_page(MMIO + 0x1000, true));
}

#[test]
fn vm_reset_resets_every_alias_with_accounting() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.register(MMIO + 0x8000, MMIO + 0x8fff, w.mmio, 0, None));
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    // Nothing aliased: no platform call at all.
    w.events();
    ok!(w, w.m.vm_reset());
    assert_eq!(w.events(), vec![]);
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO, w.r2a, 0));
    ok!(w, w.m.page_alias_hc(MMIO, MMIO + 0x3000, 0x4444_0000));
    ok!(w, w.m.page_alias_mmio2(MMIO + 0x8000, MMIO + 0x8000, w.r2b, 0x1000));
    w.events();
    ok!(w, w.m.vm_reset());
    for h in w.m.handlers() {
        assert_eq!(h.aliased_pages, 0);
    }
    for a in [MMIO, MMIO + 0x3000, MMIO + 0x8000] {
        assert_eq!(w.m.memory().page(a).unwrap().page_type(), PageType::Mmio);
    }
    let ev = w.events();
    assert_eq!(
        ev.iter()
            .filter(|e| **e == PlatformEvent::FlushEmulatorPhysTlbs)
            .count(),
        1
    );
    assert_eq!(ev.last(), Some(&PlatformEvent::FlushEmulatorPhysTlbs));
    assert_eq!(ev.iter().filter(|e| **e == PlatformEvent::FlushAllTlbs).count(), 3);
}

#[test]
fn vm_reset_internal_when_count_cannot_account() {
    let mut w = world();
    ok!(w, w.m.register(MMIO, MMIO + 0x3fff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO, w.r2a, 0));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x1000, w.r2a, 0x1000));
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 1,
    })
    .unwrap();
    w.fails(Error::Internal, |m| m.vm_reset());
    w.m.inject(Corruption::AliasedCount {
        handler: MMIO,
        count: 2,
    })
    .unwrap();
    w.m.inject(Corruption::PageState {
        page: MMIO + 0x1000,
        state: HandlerState::All,
    })
    .unwrap();
    w.fails(Error::Internal, |m| m.vm_reset());
}

// ---------------------------------------------------------------------------------------------
// queries
// ---------------------------------------------------------------------------------------------

#[test]
fn is_registered_lookup_any_address_inside() {
    let mut w = world();
    ok!(w, w.m.register(0x1800, 0x27ff, w.write, 9, None));
    for a in [0x1800, 0x1fff, 0x2000, 0x27ff] {
        assert!(w.m.is_registered(a));
        assert_eq!(w.m.lookup(a).unwrap().key, 0x1800);
        assert_eq!(w.m.lookup_range(a), Some((0x1800, 0x27ff, HandlerKind::Write, 9)));
    }
    for a in [0, 0x17ff, 0x2800, NOWHERE, u64::MAX] {
        assert!(!w.m.is_registered(a));
        assert_eq!(w.m.lookup(a), None);
        assert_eq!(w.m.lookup_range(a), None);
    }
}

#[test]
fn is_all_for_each_kind() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    ok!(w, w.m.register(0x2000, 0x2fff, w.all, 0, None));
    ok!(w, w.m.register(MMIO, MMIO + 0xfff, w.mmio, 0, None));
    ok!(w, w.m.register(0x3000, 0x3fff, w.write_nihm, 0, None));
    assert_eq!(w.m.is_all(0x1abc), Ok(false));
    assert_eq!(w.m.is_all(0x2abc), Ok(true));
    assert_eq!(w.m.is_all(MMIO + 0xfff), Ok(true));
    assert_eq!(w.m.is_all(0x3000), Ok(false));
    assert_eq!(w.m.is_all(0x4000), Err(Error::NotFound));
}

#[test]
fn check_sync_is_empty_through_a_full_life_cycle() {
    let mut w = world();
    assert_eq!(w.m.check_sync(), vec![]);
    ok!(w, w.m.register(0x1100, 0x11ff, w.write, 0, None));
    ok!(w, w.m.register(0x1200, 0x2fff, w.write, 0, None));
    ok!(w, w.m.register(0x3000, 0x3fff, w.write_nihm, 0, None));
    ok!(w, w.m.page_temp_off(0x3000, 0x3000));
    ok!(w, w.m.register(MMIO, MMIO + 0xffff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO + 0x5000, w.r2a, 0x7000));
    ok!(w, w.m.deregister(0x1100));
    ok!(w, w.m.deregister(MMIO));
    ok!(w, w.m.deregister(0x1200));
    ok!(w, w.m.deregister(0x3000));
    assert!(w.m.handlers().is_empty());
    let fresh = world();
    assert_eq!(
        w.m.memory()
            .ranges()
            .iter()
            .map(|r| r.pages.iter().map(|p| p.without_nem_state()).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        fresh
            .m
            .memory()
            .ranges()
            .iter()
            .map(|r| r.pages.iter().map(|p| p.without_nem_state()).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        "every page is back to its initial descriptor"
    );
}

// ---------------------------------------------------------------------------------------------
// Deliberate differences (SPEC §3)
// ---------------------------------------------------------------------------------------------

#[test]
fn difference_1_handler_start_only_inside_a_handler_is_not_found() {
    let mut w = world();
    let r2a = w.r2a;
    ok!(w, w.m.register(0x1000, 0x2fff, w.write, 0, None));
    ok!(w, w.m.register(MMIO, MMIO + 0x1fff, w.mmio, 0, None));
    w.fails(Error::NotFound, |m| m.deregister(0x1001));
    w.fails(Error::NotFound, |m| m.deregister(0x2fff));
    w.fails(Error::NotFound, |m| m.change_user_arg(0x2000, 0));
    w.fails(Error::NotFound, |m| m.reset(0x2000));
    w.fails(Error::NotFound, |m| {
        m.reset_mmio2_with_bitmap(0x2000, &mut [0u64; 4], 0)
    });
    w.fails(Error::NotFound, |m| m.page_temp_off(0x2000, 0x2000));
    w.fails(Error::NotFound, |m| {
        m.page_alias_mmio2(MMIO + 0x1000, MMIO + 0x1000, r2a, 0)
    });
    w.fails(Error::NotFound, |m| {
        m.page_alias_hc(MMIO + 0x1000, MMIO + 0x1000, 0x1000)
    });
    // Queries take any address inside.
    assert!(w.m.is_registered(0x2000));
    assert_eq!(w.m.is_all(MMIO + 0x1000), Ok(true));
}

#[test]
fn difference_1_temp_off_on_a_handler_that_is_not_whole_pages_is_invalid_parameter() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x2ffe, w.write, 0, None));
    ok!(w, w.m.register(0x4010, 0x5fff, w.write, 0, None));
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(0x1000, 0x1000));
    w.fails(Error::InvalidParameter, |m| m.page_temp_off(0x4010, 0x5000));
    // Alias needs an Mmio handler, and Mmio handlers are whole pages by construction
    // (registration refuses anything else), so the alias half of this difference cannot be
    // reached through the API: registration is where it is enforced.
    let mmio = w.mmio;
    w.fails(Error::InvalidParameter, |m| {
        m.register(MMIO, MMIO + 0xffe, mmio, 0, None)
    });
}

#[test]
fn difference_1_is_all_with_no_handler_is_not_found() {
    let mut w = world();
    assert_eq!(w.m.is_all(0x1000), Err(Error::NotFound));
    assert_eq!(w.m.is_all(u64::MAX), Err(Error::NotFound));
    ok!(w, w.m.register(0x1000, 0x1fff, w.all, 0, None));
    assert_eq!(w.m.is_all(0x2000), Err(Error::NotFound));
}

#[test]
fn difference_1_range_longer_than_4_gib_is_invalid_parameter() {
    // A 4 GiB + 1 page RAM range so the RAM-range check would pass.
    let pages = (1u32 << 20) + 1;
    let l = MemoryLayout::builder().ram(0x1_0000_0000, pages).build().unwrap();
    let mut m = Manager::new(l, ManagerConfig::default(), RecordingPlatform::default()).unwrap();
    let ty = m
        .register_type(HandlerTypeConfig::new(HandlerKind::Write, "w"))
        .unwrap();
    let d = m.state_digest();
    let base = 0x1_0000_0000u64;
    assert_eq!(
        m.register(base, base + (1 << 32), ty, 0, None),
        Err(Error::InvalidParameter)
    );
    assert_eq!(
        m.register(base, base + (1 << 32) + 0xfff, ty, 0, None),
        Err(Error::InvalidParameter)
    );
    assert_eq!(m.register(0, u64::MAX, ty, 0, None), Err(Error::InvalidParameter));
    assert_eq!(m.state_digest(), d);
    // Exactly 4 GiB is accepted.
    assert_eq!(m.register(base, base + (1 << 32) - 1, ty, 0, None), Ok(Status::Success));
    assert_eq!(m.lookup(base).unwrap().page_count, 1 << 20);
    assert_eq!(m.check_sync(), vec![]);
}

#[test]
fn difference_3_one_byte_handlers_are_accepted() {
    let mut w = world();
    ok!(w, w.m.register(0x1000, 0x1000, w.write, 0, None));
    ok!(w, w.m.register(0x1fff, 0x1fff, w.write, 0, None));
    ok!(w, w.m.register(0x1001, 0x1001, w.write, 0, None));
    let id = w.m.create(w.write, 0, None).unwrap();
    ok!(w, w.m.register_ex(id, RAM2 + 0xffff, RAM2 + 0xffff));
    assert_eq!(w.m.lookup(0x1000).unwrap().page_count, 1);
    assert_eq!(w.hs(0x1000), HandlerState::Write);
    assert!(!w.m.is_registered(0x1002));
    ok!(w, w.m.deregister(0x1000));
    assert_eq!(
        w.hs(0x1000),
        HandlerState::Write,
        "the other one-byte handlers keep the page"
    );
    ok!(w, w.m.deregister(0x1001));
    ok!(w, w.m.deregister(0x1fff));
    assert_eq!(w.hs(0x1000), HandlerState::None);
    ok!(w, w.m.deregister_ex(id));
}

#[test]
fn difference_not_supported_in_nem_mode_exclusive() {
    let mut w = world_with(NemMode::Exclusive, 64);
    let r2a = w.r2a;
    ok!(w, w.m.register(MMIO, MMIO + 0xfff, w.mmio, 0, None));
    w.fails(Error::NotSupportedInNemMode, |m| m.page_alias_mmio2(MMIO, MMIO, r2a, 0));
    w.fails(Error::NotSupportedInNemMode, |m| m.page_alias_hc(MMIO, MMIO, 0x1000));
    // Checked first: even with garbage arguments.
    w.fails(Error::NotSupportedInNemMode, |m| {
        m.page_alias_mmio2(u64::MAX, 0, Mmio2Handle(0), u64::MAX)
    });
    w.fails(Error::NotSupportedInNemMode, |m| m.page_alias_hc(u64::MAX, 0, u64::MAX));
    // Everything else works in exclusive mode, with NEM notifications.
    w.events();
    ok!(w, w.m.register(0x1000, 0x1fff, w.write, 0, None));
    assert!(w.events().contains(&PlatformEvent::NemHandlerRegistered {
        kind: HandlerKind::Write,
        gc_phys: 0x1000,
        len: 0x1000
    }));
}

#[test]
fn difference_2_no_resource_leaks_on_alias_error_paths() {
    // The seed leaks its lock on the NotMmio2 path; ours has no lock, so "no leak" means every
    // later operation still works and nothing changed.
    let mut w = world();
    let r2a = w.r2a;
    ok!(w, w.m.register(0x4000, 0x4fff, w.mmio, 0, None));
    w.fails(Error::NotMmio2, |m| m.page_alias_mmio2(0x4000, 0x4000, r2a, 0));
    ok!(w, w.m.deregister(0x4000));
    ok!(w, w.m.register(MMIO, MMIO + 0xfff, w.mmio, 0, None));
    ok!(w, w.m.page_alias_mmio2(MMIO, MMIO, r2a, 0));
}

#[test]
fn difference_4_edge_recalculation_flushes_exactly_when_the_platform_says() {
    for mapped in [false, true] {
        let mut w = world();
        w.m.platform_mut().answer.flush_tlbs = mapped;
        ok!(w, w.m.register(0x1000, 0x17ff, w.write, 0, None));
        ok!(w, w.m.register(0x1800, 0x1fff, w.write, 0, None));
        w.events();
        ok!(w, w.m.deregister(0x1800));
        let ev = w.events();
        assert_eq!(
            ev[..2],
            [
                prot(0x1000, NemProtection::RWX),
                upd(0x1000, HandlerState::Write, false)
            ]
        );
        assert_eq!(ev.contains(&PlatformEvent::FlushAllTlbs), mapped);
    }
}
