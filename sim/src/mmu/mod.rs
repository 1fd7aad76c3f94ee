//! The software MMU: per-vCPU TLBs and shadow page tables, the reverse map, the physical
//! page-map TLB and (in NEM mode) the nested page table.
//!
//! The MMU owns translation. Each step a real machine performs *without* the VMM's lock is
//! its own method, because the concurrent world interleaves exactly these:
//!
//! * [`Mmu::tlb_lookup`]: the TLB lookup of an instruction;
//! * [`Mmu::walk_shadow`] / [`Mmu::walk_nested`]: the hardware walk of the shadow table (or
//!   of guest and nested tables) that fills the TLB;
//! * the memory access itself, with the translation the instruction got (host memory, not
//!   here).
//!
//! What the VMM does under its lock on a fault is here too: [`Mmu::sync_shadow`] installs
//! a shadow PTE with rights = guest PTE ∧ what the page's handler state allows. The
//! manager's side effects arrive through [`platform`] (the production `Platform` trait).

pub mod guest_pt;
pub mod nem;
pub mod page_map;
pub mod platform;
pub mod revmap;
pub mod shadow;
pub mod tlb;

use pgmsim::{Gpa, HandlerState, Hpa, PageDescriptor, PlatformEvent};
use serde::{Deserialize, Serialize};

use crate::op::AccessKind;
use guest_pt::GuestPte;
use nem::{NestedEntry, NestedPt};
use page_map::PageMapTlb;
use revmap::RevMap;
use shadow::{ShadowPte, ShadowTable};
use tlb::{Tlb, TlbEntry};

/// How guest translations are virtualised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Shadow page tables maintained by the VMM.
    Shadow,
    /// Nested paging through a native API (NEM), kept in sync by notifications.
    Nem,
}

/// Where a virtual page goes and what the hardware may do there without trapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translation {
    /// Guest-physical page base.
    pub gp: Gpa,
    /// Host-physical page base the access goes to.
    pub host: Hpa,
    /// Writes allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub exec: bool,
}

impl Translation {
    /// Whether an access of `kind` may use this translation.
    #[inline]
    pub fn allows(&self, kind: AccessKind) -> bool {
        rights_allow(self.write, self.exec, kind)
    }
}

/// Whether rights `write` / `exec` permit an access of `kind` (reads are always permitted).
#[inline]
pub fn rights_allow(write: bool, exec: bool, kind: AccessKind) -> bool {
    match kind {
        AccessKind::Read => true,
        AccessKind::Write => write,
        AccessKind::Exec => exec,
    }
}

/// One vCPU's translation state.
#[derive(Debug, Clone)]
pub struct Vcpu {
    /// Guest-physical address of the current top-level table.
    pub cr3: Gpa,
    /// Index of the current address space.
    pub space: u8,
    /// The TLB (shadow mode: shadow translations; NEM mode: combined translations).
    pub tlb: Tlb,
    /// The shadow table (unused in NEM mode).
    pub shadow: ShadowTable,
}

/// Deliberate platform defects, for proving the checks catch them (tests only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformFaults {
    /// Ignore every `flush_all_tlbs` request.
    pub forget_tlb_flushes: bool,
    /// Poll for flush acknowledgements that never come, up to the poll loop's bound.
    pub flush_never_acknowledged: bool,
    /// Never return from `flush_all_tlbs` (block the thread for good).
    pub flush_stalls: bool,
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
    mode: Mode,
    vcpus: Vec<Vcpu>,
    revmap: RevMap,
    page_map: PageMapTlb,
    nested: NestedPt,
    stats: MmuStats,
    faults: PlatformFaults,
    /// Calls received since the simulator last drained it (for the differential comparison
    /// of the manager's observable side effects with the model's).
    log: Vec<PlatformEvent>,
}

/// The geometry of an MMU.
#[derive(Debug, Clone, Copy)]
pub struct MmuShape {
    /// Shadow paging or NEM.
    pub mode: Mode,
    /// Number of vCPUs.
    pub vcpus: u8,
    /// TLB sets.
    pub tlb_sets: usize,
    /// TLB ways.
    pub tlb_ways: usize,
    /// Pages in the simulated virtual window.
    pub va_pages: u32,
    /// Reverse-map references per guest page.
    pub revmap_capacity: usize,
}

impl Mmu {
    /// An MMU of `shape`, every vCPU on address space 0 rooted at `cr3`.
    pub fn new(shape: MmuShape, cr3: Gpa, faults: PlatformFaults) -> Self {
        Mmu {
            mode: shape.mode,
            vcpus: (0..shape.vcpus)
                .map(|_| Vcpu {
                    cr3,
                    space: 0,
                    tlb: Tlb::new(shape.tlb_sets, shape.tlb_ways),
                    shadow: ShadowTable::new(shape.va_pages),
                })
                .collect(),
            revmap: RevMap::new(shape.revmap_capacity),
            page_map: PageMapTlb::new(64),
            nested: NestedPt::default(),
            stats: MmuStats::default(),
            faults,
            log: Vec::new(),
        }
    }

    /// Shadow paging or NEM.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The vCPUs.
    pub fn vcpus(&self) -> &[Vcpu] {
        &self.vcpus
    }

    /// The reverse map.
    pub fn revmap(&self) -> &RevMap {
        &self.revmap
    }

    /// The physical page-map TLB.
    pub fn page_map(&self) -> &PageMapTlb {
        &self.page_map
    }

    /// The nested page table.
    pub fn nested(&self) -> &NestedPt {
        &self.nested
    }

    /// Counters.
    pub fn stats(&self) -> &MmuStats {
        &self.stats
    }

    /// Takes the platform calls logged since the last call.
    pub fn take_log(&mut self) -> Vec<PlatformEvent> {
        std::mem::take(&mut self.log)
    }

    /// Drops the platform calls logged so far.
    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// Hardware: the TLB lookup of an instruction. A hit only when the entry permits `kind`.
    #[inline]
    pub fn tlb_lookup(&self, vcpu: usize, vpi: u32, kind: AccessKind) -> Option<Translation> {
        let e = self.vcpus[vcpu].tlb.lookup(vpi)?;
        e.t.allows(kind).then_some(e.t)
    }

    /// Hardware (shadow mode): walks the shadow table for `vpi`; when its PTE permits `kind`,
    /// fills the TLB from it and returns the translation, else the access faults to the VMM.
    pub fn walk_shadow(&mut self, vcpu: usize, vpi: u32, kind: AccessKind) -> Option<Translation> {
        let cpu = &mut self.vcpus[vcpu];
        let s = cpu.shadow.get(vpi).copied().filter(|s| s.t.allows(kind))?;
        cpu.tlb.insert(TlbEntry { vpi, t: s.t });
        Some(s.t)
    }

    /// Hardware (NEM mode): combines the guest's translation `g` of `vpi` with the nested
    /// entry of its page; when the nested entry permits `kind`, fills the TLB with the
    /// combined rights and returns the translation, else the access exits to the VMM.
    pub fn walk_nested(&mut self, vcpu: usize, vpi: u32, g: GuestPte, kind: AccessKind) -> Option<Translation> {
        let n = self.nested.get(g.gp).copied()?;
        let nested_allows = match kind {
            AccessKind::Read => n.prot.can_read(),
            AccessKind::Write => n.prot.can_write(),
            AccessKind::Exec => n.prot.can_execute(),
        };
        if !nested_allows {
            return None;
        }
        let t = Translation {
            gp: g.gp,
            host: n.host,
            write: g.write && n.prot.can_write(),
            exec: g.exec && n.prot.can_execute(),
        };
        self.vcpus[vcpu].tlb.insert(TlbEntry { vpi, t });
        Some(t)
    }

    /// VMM, under its lock (shadow mode): syncs the shadow PTE of `vpi` after a fault, with
    /// rights = guest PTE ∧ what the page's handler state allows (a `Write` page read-only).
    pub fn sync_shadow(&mut self, vcpu: usize, vpi: u32, g: GuestPte, page: &PageDescriptor) {
        let pte = ShadowPte {
            t: Translation {
                gp: g.gp,
                host: page.host_phys(),
                write: g.write && page.handler_state() != HandlerState::Write,
                exec: g.exec,
            },
            guest_write: g.write,
        };
        if let Some(old) = self.vcpus[vcpu].shadow.set(vpi, pte) {
            self.revmap.remove(old.t.gp, (vcpu as u8, vpi));
        }
        self.revmap.add(g.gp, (vcpu as u8, vpi));
    }

    /// Where a default access to the page `page` goes, through the physical page-map TLB,
    /// filling it on a miss from `descriptor`.
    pub fn default_target(&mut self, page: Gpa, descriptor: Option<PageDescriptor>) -> page_map::PhysTarget {
        if let Some(t) = self.page_map.lookup(page) {
            return t;
        }
        let t = descriptor.map_or(page_map::PhysTarget::Mmio, |d| page_map::phys_target(&d));
        self.page_map.fill(page, t);
        t
    }

    /// Drops every entry of vCPU `vcpu`'s TLB (its part of a shootdown).
    pub fn flush_tlb(&mut self, vcpu: usize) {
        self.vcpus[vcpu].tlb.flush();
    }

    /// INVLPG on one vCPU: drop the TLB entry and the shadow PTE of `vpi`.
    pub fn invlpg(&mut self, vcpu: usize, vpi: u32) {
        let v = &mut self.vcpus[vcpu];
        v.tlb.invalidate(vpi);
        if let Some(old) = v.shadow.clear(vpi) {
            self.revmap.remove(old.t.gp, (vcpu as u8, vpi));
        }
    }

    /// CR3 load: new address space, empty TLB and shadow table.
    pub fn load_cr3(&mut self, vcpu: usize, space: u8, cr3: Gpa) {
        let v = &mut self.vcpus[vcpu];
        v.cr3 = cr3;
        v.space = space;
        v.tlb.flush();
        v.shadow.clear_all();
        self.revmap.forget_vcpu(vcpu as u8);
    }

    /// Sets a nested entry directly: the native API's initial mapping of RAM.
    pub fn map_nested(&mut self, gp: Gpa, entry: NestedEntry) {
        self.nested.set(gp, entry);
    }
}
