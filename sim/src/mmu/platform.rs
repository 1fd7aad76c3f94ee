//! The MMU as the production manager's [`Platform`]: every side effect the manager requests
//! lands here, and a missing one shows up as a stale translation the checks can see.

use pgmsim::{
    Gpa, HandlerKind, HandlerState, Hpa, NemProtection, PageDescriptor, PageType, Platform, PlatformEvent, ShadowUpdate,
};

use super::nem::{nem_state_for, NestedEntry};
use super::{Mmu, Mode};

impl Mmu {
    fn full_resync(&mut self) {
        for v in &mut self.vcpus {
            v.shadow.clear_all();
        }
        self.revmap.clear();
        self.stats.resyncs += 1;
    }

    /// A NEM notification changed a page's nested entry; `true` when the combined
    /// translations must be invalidated (INVEPT) because the entry changed.
    pub(crate) fn nested_update(&mut self, gp: Gpa, entry: NestedEntry) -> bool {
        self.stats.nem_notifications += 1;
        if self.mode == Mode::Nem {
            self.nested.set(gp, entry);
        }
        self.mode == Mode::Nem
    }

    fn nested_changed(&mut self, gp: Gpa, entry: NestedEntry) {
        // The combined translations may now be too permissive or point at the old backing:
        // a native API invalidates them (INVEPT) as part of the update.
        if self.nested_update(gp, entry) {
            for v in &mut self.vcpus {
                v.tlb.flush();
            }
        }
    }

    /// Records a TLB flush request; `false` when the (deliberately defective) platform
    /// forgets to carry it out.
    pub(crate) fn flush_request(&mut self) -> bool {
        self.stats.tlb_flushes += 1;
        self.log.push(PlatformEvent::FlushAllTlbs);
        if self.faults.flush_never_acknowledged {
            self.await_flush_acknowledgements();
        }
        if self.faults.flush_stalls {
            // A hang no bound covers: only the watchdog sees it. Parked, not spinning, so
            // the abandoned thread costs no CPU.
            loop {
                std::thread::park();
            }
        }
        !self.faults.forget_tlb_flushes
    }

    /// The `flush_never_acknowledged` fault: polls for acknowledgements no vCPU sends.
    /// Bound: [`MAX_FLUSH_POLLS`] polls, asserted as the manager asserts its loops' bounds
    /// (the panic says [`pgmsim::LOOP_BOUND_EXCEEDED`], so the run reports a `hang`).
    fn await_flush_acknowledgements(&self) {
        let acknowledged = |_: u32| std::hint::black_box(false);
        if !(0..MAX_FLUSH_POLLS).any(acknowledged) {
            panic!(
                "{}: no vCPU acknowledged the TLB flush after {MAX_FLUSH_POLLS} polls",
                pgmsim::LOOP_BOUND_EXCEEDED
            );
        }
    }
}

/// Polls a flush waits for its acknowledgements (the `flush_never_acknowledged` fault).
const MAX_FLUSH_POLLS: u32 = 1 << 16;

impl Platform for Mmu {
    fn update_shadow_ptes(&mut self, gc_phys: Gpa, page: &PageDescriptor, flush_ptes: bool) -> ShadowUpdate {
        self.stats.pte_updates += 1;
        let gp = gc_phys.page_base();
        self.log.push(PlatformEvent::UpdateShadowPtes {
            gc_phys: gp,
            state: page.handler_state(),
            flush_ptes,
        });
        let (refs, overflowed) = self.revmap.refs(gp);
        if overflowed {
            self.full_resync();
            return ShadowUpdate {
                flush_tlbs: true,
                resync: true,
            };
        }
        if refs.is_empty() {
            return ShadowUpdate::default();
        }
        let refs = refs.to_vec();
        let unmappable = page.handler_state() == HandlerState::All || page.page_type() == PageType::Mmio;
        for (v, vpi) in refs {
            let table = &mut self.vcpus[v as usize].shadow;
            if flush_ptes || unmappable {
                table.clear(vpi);
                self.revmap.remove(gp, (v, vpi));
            } else if let Some(pte) = table.get_mut(vpi) {
                pte.t.write = match page.handler_state() {
                    HandlerState::Write | HandlerState::All => false,
                    HandlerState::None | HandlerState::Disabled => pte.guest_write,
                };
            }
        }
        ShadowUpdate {
            flush_tlbs: true,
            resync: false,
        }
    }

    fn flush_all_tlbs(&mut self) {
        if !self.flush_request() {
            return;
        }
        for v in &mut self.vcpus {
            v.tlb.flush();
        }
    }

    fn invalidate_page_map_entry(&mut self, gc_phys: Gpa) {
        self.log.push(PlatformEvent::InvalidatePageMapEntry { gc_phys });
        self.page_map.invalidate(gc_phys.page_base());
    }

    fn flush_emulator_phys_tlbs(&mut self) {
        self.log.push(PlatformEvent::FlushEmulatorPhysTlbs);
        self.page_map.flush();
    }

    fn nem_handler_registered(&mut self, _kind: HandlerKind, _gc_phys: Gpa, _len: u64) {
        self.stats.nem_notifications += 1;
    }

    fn nem_handler_deregistered(&mut self, _kind: HandlerKind, _gc_phys: Gpa, _len: u64) -> Option<u8> {
        self.stats.nem_notifications += 1;
        None
    }

    fn nem_page_protection_changed(&mut self, gc_phys: Gpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        let entry = NestedEntry {
            host: page.host_phys(),
            prot,
        };
        self.nested_changed(gc_phys.page_base(), entry);
        nem_state_for(prot)
    }

    fn nem_page_backing_changed(&mut self, gc_phys: Gpa, _old: Hpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        let entry = NestedEntry {
            host: page.host_phys(),
            prot,
        };
        self.nested_changed(gc_phys.page_base(), entry);
        nem_state_for(prot)
    }
}
