//! Helpers shared by the manager integration tests: short constructors for expected events.

use pgmsim::{HandlerState, NemProtection, PlatformEvent};

/// `UpdateShadowPtes { gc_phys, state, flush_ptes }`.
pub fn upd(gc_phys: u64, state: HandlerState, flush_ptes: bool) -> PlatformEvent {
    PlatformEvent::UpdateShadowPtes {
        gc_phys,
        state,
        flush_ptes,
    }
}

/// `NemProtectionChanged { gc_phys, prot }`.
pub fn prot(gc_phys: u64, prot: NemProtection) -> PlatformEvent {
    PlatformEvent::NemProtectionChanged { gc_phys, prot }
}
