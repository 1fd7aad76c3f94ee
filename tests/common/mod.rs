//! Helpers shared by the manager integration tests (`manager_ops`, `check_sync`, the scenario
//! suite): short constructors for expected platform events, and a page's handler state.
#![allow(dead_code)]

use pgmsim::{Gpa, HandlerKind, HandlerState, NemProtection, PhysHandlerApi, PlatformEvent};

/// `UpdateShadowPtes { gc_phys, state, flush_ptes }`.
pub fn upd(gc_phys: u64, state: HandlerState, flush_ptes: bool) -> PlatformEvent {
    PlatformEvent::UpdateShadowPtes {
        gc_phys: Gpa(gc_phys),
        state,
        flush_ptes,
    }
}

/// `NemProtectionChanged { gc_phys, prot }`.
pub fn prot(gc_phys: u64, prot: NemProtection) -> PlatformEvent {
    PlatformEvent::NemProtectionChanged {
        gc_phys: Gpa(gc_phys),
        prot,
    }
}

/// The handler state of the page containing `addr` (which must be a RAM page), on either side.
pub fn hs<A: PhysHandlerApi + ?Sized>(api: &A, addr: u64) -> HandlerState {
    match api.page(addr) {
        Some(page) => page.handler_state(),
        None => panic!("{addr:#x} is in no RAM range"),
    }
}

/// `NemHandlerRegistered { kind, gc_phys, len }`.
pub fn nem_reg(kind: HandlerKind, gc_phys: u64, len: u64) -> PlatformEvent {
    PlatformEvent::NemHandlerRegistered {
        kind,
        gc_phys: Gpa(gc_phys),
        len,
    }
}

/// `NemHandlerDeregistered { kind, gc_phys, len }`.
pub fn nem_dereg(kind: HandlerKind, gc_phys: u64, len: u64) -> PlatformEvent {
    PlatformEvent::NemHandlerDeregistered {
        kind,
        gc_phys: Gpa(gc_phys),
        len,
    }
}

/// `InvalidatePageMapEntry { gc_phys }`.
pub fn invalidate(gc_phys: u64) -> PlatformEvent {
    PlatformEvent::InvalidatePageMapEntry { gc_phys: Gpa(gc_phys) }
}

/// `ok!(w, call)`: asserts that `call` returned plain `Success` and that `w.m.check_sync()` is
/// clean afterwards (`w.m` the manager under test).
#[allow(unused_macros)]
macro_rules! ok {
    ($w:ident, $e:expr) => {{
        let r: pgmsim::OpResult = $e;
        assert_eq!(r, Ok(pgmsim::Status::Success));
        assert_eq!($w.m.check_sync(), vec![]);
    }};
}
#[allow(unused_imports)]
pub(crate) use ok;
