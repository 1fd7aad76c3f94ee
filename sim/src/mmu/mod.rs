//! The software MMU: per-vCPU TLBs and shadow page tables, the reverse map, the physical
//! page-map TLB and (in NEM mode) the nested page table. It implements the production
//! manager's [`Platform`], so every side effect the manager requests lands here, and a
//! missing one shows up as a stale translation the checks can see.

pub mod guest_pt;
pub mod nem;
pub mod revmap;
pub mod shadow;
pub mod tlb;

use pgmsim::{
    HandlerKind, HandlerState, NemProtection, PageDescriptor, PageType, Platform, PlatformEvent, ShadowUpdate,
};
use serde::{Deserialize, Serialize};

use nem::{nem_state_for, NestedEntry, NestedPt};
use revmap::RevMap;
use shadow::ShadowTable;
use tlb::Tlb;

/// How guest translations are virtualised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Shadow page tables maintained by the VMM.
    Shadow,
    /// Nested paging through a native API (NEM), kept in sync by notifications.
    Nem,
}

/// One vCPU's translation state.
#[derive(Debug, Clone)]
pub struct Vcpu {
    /// Guest-physical address of the current top-level table.
    pub cr3: u64,
    /// Index of the current address space.
    pub space: u8,
    /// The TLB (shadow mode: shadow translations; NEM mode: combined translations).
    pub tlb: Tlb,
    /// The shadow table (unused in NEM mode).
    pub shadow: ShadowTable,
}

/// What the physical page-map TLB caches about a guest page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhysTarget {
    /// Accesses go to this host page.
    Backing(u64),
    /// An MMIO page with no backing: default reads give zeros, writes are dropped.
    Mmio,
}

/// A direct-mapped cache of guest page → target used by the default-access path of handler
/// dispatch (the seed's physical page-map TLB and the emulator's physical TLB, in one).
#[derive(Debug, Clone)]
pub struct PageMapTlb {
    entries: Vec<Option<(u64, PhysTarget)>>,
}

impl PageMapTlb {
    fn new(size: usize) -> Self {
        PageMapTlb {
            entries: vec![None; size.max(1)],
        }
    }
    #[inline]
    fn slot(&self, gp: u64) -> usize {
        ((gp >> 12) as usize) % self.entries.len()
    }
    /// The cached target of `gp`.
    pub fn lookup(&self, gp: u64) -> Option<PhysTarget> {
        match self.entries[self.slot(gp)] {
            Some((g, t)) if g == gp => Some(t),
            _ => None,
        }
    }
    /// Caches the target of `gp`.
    pub fn fill(&mut self, gp: u64, target: PhysTarget) {
        let s = self.slot(gp);
        self.entries[s] = Some((gp, target));
    }
    fn invalidate(&mut self, gp: u64) {
        let s = self.slot(gp);
        if self.entries[s].is_some_and(|(g, _)| g == gp) {
            self.entries[s] = None;
        }
    }
    fn flush(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = None);
    }
    /// Every cached entry.
    pub fn iter(&self) -> impl Iterator<Item = &(u64, PhysTarget)> {
        self.entries.iter().flatten()
    }
}

/// Where a page's default access goes, from its descriptor.
pub fn phys_target(page: &PageDescriptor) -> PhysTarget {
    if page.page_type() == PageType::Mmio {
        PhysTarget::Mmio
    } else {
        PhysTarget::Backing(page.host_phys())
    }
}

/// Deliberate platform defects, for proving the checks catch them (tests only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformFaults {
    /// Ignore every `flush_all_tlbs` request.
    pub forget_tlb_flushes: bool,
}

/// Counters kept by the MMU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MmuStats {
    /// TLB flushes requested by the manager.
    pub tlb_flushes: u64,
    /// Shadow PTE update requests.
    pub pte_updates: u64,
    /// Full resyncs after a reverse-map overflow.
    pub resyncs: u64,
    /// NEM notifications received.
    pub nem_notifications: u64,
}

/// The simulated MMU of every vCPU.
#[derive(Debug, Clone)]
pub struct Mmu {
    /// Shadow paging or NEM.
    pub mode: Mode,
    /// The vCPUs.
    pub vcpus: Vec<Vcpu>,
    /// Guest page → shadow PTEs.
    pub revmap: RevMap,
    /// Physical page-map TLB.
    pub page_map: PageMapTlb,
    /// Nested page table (NEM mode).
    pub nested: NestedPt,
    /// Counters.
    pub stats: MmuStats,
    /// Injected defects.
    pub faults: PlatformFaults,
    /// Calls received since the simulator last drained it (for the differential comparison
    /// of the manager's observable side effects with the model's).
    pub log: Vec<PlatformEvent>,
}

impl Mmu {
    /// An MMU with `vcpus` vCPUs, all on address space 0 rooted at `cr3`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: Mode,
        vcpus: u8,
        cr3: u64,
        tlb_sets: usize,
        tlb_ways: usize,
        va_pages: u32,
        revmap_capacity: usize,
    ) -> Self {
        Mmu {
            mode,
            vcpus: (0..vcpus)
                .map(|_| Vcpu {
                    cr3,
                    space: 0,
                    tlb: Tlb::new(tlb_sets, tlb_ways),
                    shadow: ShadowTable::new(va_pages),
                })
                .collect(),
            revmap: RevMap::new(revmap_capacity),
            page_map: PageMapTlb::new(64),
            nested: NestedPt::default(),
            stats: MmuStats::default(),
            faults: PlatformFaults::default(),
            log: Vec::new(),
        }
    }

    /// INVLPG on one vCPU: drop the TLB entry and the shadow PTE of `vpi`.
    pub fn invlpg(&mut self, vcpu: usize, vpi: u32) {
        let v = &mut self.vcpus[vcpu];
        v.tlb.invalidate(vpi);
        if let Some(old) = v.shadow.clear(vpi) {
            self.revmap.remove(old.gp, (vcpu as u8, vpi));
        }
    }

    /// CR3 load: new address space, empty TLB and shadow table.
    pub fn load_cr3(&mut self, vcpu: usize, space: u8, cr3: u64) {
        let v = &mut self.vcpus[vcpu];
        v.cr3 = cr3;
        v.space = space;
        v.tlb.flush();
        v.shadow.clear_all();
        self.revmap.forget_vcpu(vcpu as u8);
    }

    /// Installs a shadow PTE for `vpi` on `vcpu`, keeping the reverse map exact.
    pub fn install_shadow(&mut self, vcpu: usize, vpi: u32, pte: shadow::ShadowPte) {
        if let Some(old) = self.vcpus[vcpu].shadow.set(vpi, pte) {
            self.revmap.remove(old.gp, (vcpu as u8, vpi));
        }
        self.revmap.add(pte.gp, (vcpu as u8, vpi));
    }

    fn full_resync(&mut self) {
        for v in &mut self.vcpus {
            v.shadow.clear_all();
        }
        self.revmap.clear();
        self.stats.resyncs += 1;
    }

    fn nested_changed(&mut self, gp: u64, entry: NestedEntry) {
        self.stats.nem_notifications += 1;
        if self.mode == Mode::Nem {
            self.nested.set(gp, entry);
            // The combined translations may now be too permissive or point at the old
            // backing: a native API invalidates them (INVEPT) as part of the update.
            for v in &mut self.vcpus {
                v.tlb.flush();
            }
        }
    }
}

impl Platform for Mmu {
    fn update_shadow_ptes(&mut self, gc_phys: Gpa, page: &PageDescriptor, flush_ptes: bool) -> ShadowUpdate {
        self.stats.pte_updates += 1;
        let gp = gc_phys & !0xfff;
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
                pte.write = match page.handler_state() {
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
        self.stats.tlb_flushes += 1;
        self.log.push(PlatformEvent::FlushAllTlbs);
        if self.faults.forget_tlb_flushes {
            return;
        }
        for v in &mut self.vcpus {
            v.tlb.flush();
        }
    }

    fn invalidate_page_map_entry(&mut self, gc_phys: Gpa) {
        self.log.push(PlatformEvent::InvalidatePageMapEntry { gc_phys });
        self.page_map.invalidate(gc_phys & !0xfff);
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
        self.nested_changed(
            gc_phys & !0xfff,
            NestedEntry {
                host: page.host_phys(),
                prot,
            },
        );
        nem_state_for(prot)
    }

    fn nem_page_backing_changed(
        &mut self,
        gc_phys: u64,
        _old_host_phys: u64,
        page: &PageDescriptor,
        prot: NemProtection,
    ) -> u8 {
        self.nested_changed(
            gc_phys & !0xfff,
            NestedEntry {
                host: page.host_phys(),
                prot,
            },
        );
        nem_state_for(prot)
    }
}
