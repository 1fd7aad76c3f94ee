//! A platform that records every call the manager makes.

use pgmsim::{Gpa, HandlerKind, Hpa, NemProtection, PageDescriptor, Platform, PlatformEvent, ShadowUpdate};

/// A platform that records every call; `update_shadow_ptes` answers with `answer`.
///
/// Tests set `answer.flush_tlbs` to pretend the page is mapped, and `answer.resync` to
/// pretend the reverse map overflowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingPlatform {
    /// Every call, in order.
    pub events: Vec<PlatformEvent>,
    /// What `update_shadow_ptes` returns.
    pub answer: ShadowUpdate,
    /// PGM lock depth: `pgm_lock` minus `pgm_unlock` calls so far (0 between operations).
    pub lock_depth: i64,
}

impl RecordingPlatform {
    /// A recorder that reports every page as mapped (so state upgrades flush TLBs).
    pub fn mapped() -> Self {
        RecordingPlatform {
            events: Vec::new(),
            answer: ShadowUpdate {
                flush_tlbs: true,
                resync: false,
            },
            lock_depth: 0,
        }
    }

    /// Takes the events recorded so far.
    pub fn take(&mut self) -> Vec<PlatformEvent> {
        std::mem::take(&mut self.events)
    }
}

impl Platform for RecordingPlatform {
    fn update_shadow_ptes(&mut self, gc_phys: Gpa, page: &PageDescriptor, flush_ptes: bool) -> ShadowUpdate {
        self.events.push(PlatformEvent::UpdateShadowPtes {
            gc_phys,
            state: page.handler_state(),
            flush_ptes,
        });
        self.answer
    }
    fn flush_all_tlbs(&mut self) {
        self.events.push(PlatformEvent::FlushAllTlbs);
    }
    fn pgm_lock(&mut self) {
        self.lock_depth += 1;
    }
    fn pgm_unlock(&mut self) {
        self.lock_depth -= 1;
    }
    fn invalidate_page_map_entry(&mut self, gc_phys: Gpa) {
        self.events.push(PlatformEvent::InvalidatePageMapEntry { gc_phys });
    }
    fn flush_emulator_phys_tlbs(&mut self) {
        self.events.push(PlatformEvent::FlushEmulatorPhysTlbs);
    }
    fn nem_handler_registered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) {
        self.events
            .push(PlatformEvent::NemHandlerRegistered { kind, gc_phys, len });
    }
    fn nem_handler_deregistered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) -> Option<u8> {
        self.events
            .push(PlatformEvent::NemHandlerDeregistered { kind, gc_phys, len });
        None
    }
    fn nem_page_protection_changed(&mut self, gc_phys: Gpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        self.events.push(PlatformEvent::NemProtectionChanged { gc_phys, prot });
        page.nem_state()
    }
    fn nem_page_backing_changed(
        &mut self,
        gc_phys: Gpa,
        old_host: Hpa,
        page: &PageDescriptor,
        prot: NemProtection,
    ) -> u8 {
        self.events.push(PlatformEvent::NemBackingChanged {
            gc_phys,
            old_host_phys: old_host,
            new_host_phys: page.host_phys(),
            prot,
        });
        page.nem_state()
    }
}
