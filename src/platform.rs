//! The side effects the manager asks of its host (the original's calls into the page pool,
//! HM, IEM and NEM), as a trait, a no-op implementation, and the events that describe them.
//!
//! The manager never touches translation state itself: it tells the platform which guest
//! page changed and the platform (the simulator's MMU, a real VMM) updates what it caches.
//! A missing call here is exactly the class of bug the simulator's translation-safety check
//! exists to catch.

use crate::addr::{Gpa, Hpa};
use crate::handler::HandlerKind;
use crate::page::{HandlerState, NemProtection, PageDescriptor};

/// What the platform did when asked to update the shadow PTEs of a guest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShadowUpdate {
    /// Some PTE mapped the page, so every vCPU's TLB must be flushed.
    pub flush_tlbs: bool,
    /// The page could not be tracked precisely (reverse map overflowed, zero page): the
    /// platform scheduled a full resync (the original's `VINF_PGM_SYNC_CR3`).
    pub resync: bool,
}

/// The host side of the handler manager (the contract is semantics §4).
///
/// NEM methods are called only when the manager's configuration enables NEM notifications;
/// they return the two NEM state bits the manager stores in the descriptor.
pub trait Platform {
    /// Update or flush every shadow PTE mapping `gc_phys` (the original's
    /// `pgmPoolTrackUpdateGCPhys`; semantics §4.1).
    ///
    /// `page` is the descriptor *after* the handler-state change (when undoing an alias, with
    /// `flush_ptes`, the one before it: semantics §3.3). Without `flush_ptes`, a PTE becomes
    /// read-only for `Write`, not present for `All`, and regains write access (only as far as
    /// the guest PTE allows: deliberate difference D12) for `None` / `Disabled`; with
    /// `flush_ptes` every such PTE is cleared. The manager flushes TLBs itself when told to.
    fn update_shadow_ptes(&mut self, gc_phys: Gpa, page: &PageDescriptor, flush_ptes: bool) -> ShadowUpdate;

    /// Flush every vCPU's TLB (the original's `PGM_INVL_ALL_VCPU_TLBS` / `HMFlushTlbOnAllVCpus`).
    ///
    /// The manager's concurrency contract (semantics §7) requires this to be *synchronous*:
    /// it returns only when no vCPU can still use a translation made before the call.
    fn flush_all_tlbs(&mut self);

    /// Takes the PGM lock (`PGM_LOCK`). Every mutating operation takes it on entry and
    /// releases it with [`Platform::pgm_unlock`] on every return path, errors included
    /// (deliberate difference D2: the original leaks it on one error path). The lock is
    /// recursive: a callback that runs with the lock held may call back into the manager.
    /// A single-threaded platform ignores both calls.
    fn pgm_lock(&mut self) {}

    /// Releases the PGM lock taken by [`Platform::pgm_lock`].
    fn pgm_unlock(&mut self) {}

    /// Drop the physical page-map TLB entry of a guest page (`pgmPhysInvalidatePageMapTLBEntry`).
    fn invalidate_page_map_entry(&mut self, gc_phys: Gpa);

    /// Flush the emulator's physical TLBs on every vCPU (`IEMTlbInvalidateAllPhysicalAllCpus`).
    fn flush_emulator_phys_tlbs(&mut self);

    /// A handler was registered (`NEMHCNotifyHandlerPhysicalRegister`).
    fn nem_handler_registered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) {
        let _ = (kind, gc_phys, len);
    }

    /// A handler was deregistered; `[gc_phys, gc_phys + len)` are the whole pages it no longer
    /// shares with other handlers (`NEMHCNotifyHandlerPhysicalDeregister`). May return a new
    /// NEM state for those pages.
    fn nem_handler_deregistered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) -> Option<u8> {
        let _ = (kind, gc_phys, len);
        None
    }

    /// The protection of a page changed (`NEMHCNotifyPhysPageProtChanged`).
    fn nem_page_protection_changed(&mut self, gc_phys: Gpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        let _ = (gc_phys, prot);
        page.nem_state()
    }

    /// The backing of a page changed (`NEMHCNotifyPhysPageChanged`); `page` is the new descriptor.
    fn nem_page_backing_changed(
        &mut self,
        gc_phys: Gpa,
        old_host: Hpa,
        page: &PageDescriptor,
        prot: NemProtection,
    ) -> u8 {
        let _ = (gc_phys, old_host, prot);
        page.nem_state()
    }
}

/// A platform with nothing to keep in sync: every call is a no-op and nothing is ever mapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoopPlatform;

impl Platform for NoopPlatform {
    #[inline]
    fn update_shadow_ptes(&mut self, _: Gpa, _: &PageDescriptor, _: bool) -> ShadowUpdate {
        ShadowUpdate::default()
    }
    #[inline]
    fn flush_all_tlbs(&mut self) {}
    #[inline]
    fn invalidate_page_map_entry(&mut self, _: Gpa) {}
    #[inline]
    fn flush_emulator_phys_tlbs(&mut self) {}
}

/// One call the manager made on its platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PlatformEvent {
    /// `update_shadow_ptes`.
    UpdateShadowPtes {
        /// Guest page.
        gc_phys: Gpa,
        /// Handler state the page now has.
        state: HandlerState,
        /// Whether PTEs were to be cleared rather than updated.
        flush_ptes: bool,
    },
    /// `flush_all_tlbs`.
    FlushAllTlbs,
    /// `invalidate_page_map_entry`.
    InvalidatePageMapEntry {
        /// Guest page.
        gc_phys: Gpa,
    },
    /// `flush_emulator_phys_tlbs`.
    FlushEmulatorPhysTlbs,
    /// `nem_handler_registered`.
    NemHandlerRegistered {
        /// Kind of the handler.
        kind: HandlerKind,
        /// First byte.
        gc_phys: Gpa,
        /// Length in bytes.
        len: u64,
    },
    /// `nem_handler_deregistered`.
    NemHandlerDeregistered {
        /// Kind of the handler.
        kind: HandlerKind,
        /// First byte of the whole pages released.
        gc_phys: Gpa,
        /// Length in bytes.
        len: u64,
    },
    /// `nem_page_protection_changed`.
    NemProtectionChanged {
        /// Guest page.
        gc_phys: Gpa,
        /// New protection.
        prot: NemProtection,
    },
    /// `nem_page_backing_changed`.
    NemBackingChanged {
        /// Guest page.
        gc_phys: Gpa,
        /// Previous backing.
        old_host_phys: Hpa,
        /// New backing.
        new_host_phys: Hpa,
        /// New protection.
        prot: NemProtection,
    },
}
