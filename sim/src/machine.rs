//! The simulated machine: the vCPUs' MMU and the guest's memory. It is the production
//! manager's [`Platform`], so every side effect the manager asks for lands on the hardware
//! state it describes.

use std::collections::BTreeMap;

use pgmsim::{Gpa, Gva, HandlerKind, Hpa, NemProtection, PageDescriptor, Platform, ShadowUpdate};

use crate::conc::hw::Hw;
use crate::memory::HostMemory;
use crate::mmu::guest_pt::{self, GuestPte, KernelError, PtPool};
use crate::mmu::nem::{nem_state_for, NestedEntry};
use crate::mmu::{Mmu, MmuShape, PlatformFaults};

/// The guest: the bytes behind every host page, the page-table pool, the top-level table
/// of each address space, each vCPU's current space, and what each space maps (the guest
/// kernel's own bookkeeping, which the generator reads).
#[derive(Debug, Clone)]
pub struct Guest {
    mem: HostMemory,
    pool: PtPool,
    spaces: Vec<Gpa>,
    vcpu_space: Vec<u8>,
    mappings: Vec<BTreeMap<u32, Gpa>>,
}

/// A guest-kernel edit of one virtual page's leaf PTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelEdit {
    /// Map the page to `gp` with these rights.
    Map {
        /// Guest-physical page.
        gp: Gpa,
        /// Writable.
        write: bool,
        /// Executable.
        exec: bool,
    },
    /// Unmap the page.
    Unmap,
    /// Change the rights of a mapped page.
    Protect {
        /// Writable.
        write: bool,
        /// Executable.
        exec: bool,
    },
}

impl Guest {
    /// A guest whose page tables live in `pool`, with `spaces` empty address spaces (`None`
    /// when the pool cannot hold their top-level tables) and `vcpus` vCPUs on space 0.
    pub fn new(mut pool: PtPool, spaces: u8, vcpus: usize) -> Option<Guest> {
        let mut mem = HostMemory::default();
        let roots: Option<Vec<Gpa>> = (0..spaces.max(1)).map(|_| pool.alloc(&mut mem)).collect();
        let roots = roots?;
        Some(Guest {
            mappings: vec![BTreeMap::new(); roots.len()],
            spaces: roots,
            vcpu_space: vec![0; vcpus],
            mem,
            pool,
        })
    }

    /// Host memory.
    pub fn mem(&self) -> &HostMemory {
        &self.mem
    }

    /// Host memory, mutably.
    pub fn mem_mut(&mut self) -> &mut HostMemory {
        &mut self.mem
    }

    /// The page-table pool.
    pub fn pool(&self) -> &PtPool {
        &self.pool
    }

    /// Number of address spaces.
    pub fn spaces(&self) -> usize {
        self.spaces.len()
    }

    /// The top-level table of address space `space`.
    pub fn cr3(&self, space: usize) -> Gpa {
        self.spaces[space]
    }

    /// The address space vCPU `vcpu` runs.
    pub fn space_of(&self, vcpu: usize) -> usize {
        self.vcpu_space[vcpu] as usize
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpu_space.len()
    }

    /// The mapped virtual pages of `space` and their guest-physical pages.
    pub fn mappings(&self, space: usize) -> &BTreeMap<u32, Gpa> {
        &self.mappings[space]
    }

    /// Mapped virtual pages over all spaces.
    pub fn mapped_pages(&self) -> usize {
        self.mappings.iter().map(BTreeMap::len).sum()
    }

    /// The cache-free walk of `space`'s tables for `va`: the reference translation.
    pub fn walk(&self, space: usize, va: Gva) -> Option<GuestPte> {
        guest_pt::walk(&self.mem, &self.pool, self.spaces[space], va)
    }

    /// Points vCPU `vcpu` at `space`.
    pub fn switch(&mut self, vcpu: usize, space: usize) {
        self.vcpu_space[vcpu] = space as u8;
    }

    /// Applies a guest-kernel edit to virtual page `vpi` (at `va`) of `space`, keeping the
    /// bookkeeping of what is mapped.
    pub fn edit(&mut self, space: usize, vpi: u32, va: Gva, edit: KernelEdit) -> Result<(), KernelError> {
        let cr3 = self.spaces[space];
        let (mem, pool) = (&mut self.mem, &mut self.pool);
        match edit {
            KernelEdit::Map { gp, write, exec } => {
                guest_pt::map(mem, pool, cr3, va, gp, write, exec)?;
                self.mappings[space].insert(vpi, gp.page_base());
            }
            KernelEdit::Unmap => {
                guest_pt::unmap(mem, pool, cr3, va)?;
                self.mappings[space].remove(&vpi);
            }
            KernelEdit::Protect { write, exec } => guest_pt::protect(mem, pool, cr3, va, write, exec)?,
        }
        Ok(())
    }

    /// Reads `size` bytes of host memory.
    pub fn read(&self, host: Hpa, size: u8) -> u64 {
        self.mem.read(host, size)
    }

    /// The bytes of the host page at `base` (`None`: never written, all zeros).
    pub fn page(&self, base: Hpa) -> Option<&[u8; pgmsim::PAGE_SIZE as usize]> {
        self.mem.page(base)
    }

    /// Writes `size` bytes of host memory.
    pub fn write(&mut self, host: Hpa, size: u8, value: u64) {
        self.mem.write(host, size, value);
    }
}

/// The hardware: MMU and guest, and in a concurrent world the vCPUs' in-flight
/// instructions, the PGM lock and the scheduler. The production manager's platform.
#[derive(Debug, Clone)]
pub struct Machine {
    mmu: Mmu,
    guest: Guest,
    hw: Option<Box<Hw>>,
}

impl Machine {
    /// A machine of `shape` running `guest`, every vCPU on address space 0.
    pub fn new(shape: MmuShape, guest: Guest, faults: PlatformFaults) -> Machine {
        Machine {
            mmu: Mmu::new(shape, guest.cr3(0), faults),
            guest,
            hw: None,
        }
    }

    /// Makes the machine concurrent.
    pub fn set_hw(&mut self, hw: Hw) {
        self.hw = Some(Box::new(hw));
    }

    /// The concurrent half, if the world is concurrent.
    pub fn hw(&self) -> Option<&Hw> {
        self.hw.as_deref()
    }

    /// The concurrent half, mutably.
    pub fn hw_mut(&mut self) -> Option<&mut Hw> {
        self.hw.as_deref_mut()
    }

    /// Runs a platform call's effect between two preemption points (concurrent worlds).
    fn effect<R>(&mut self, f: impl FnOnce(&mut Machine) -> R) -> R {
        self.preempt();
        let r = f(self);
        self.preempt();
        r
    }

    /// The MMU.
    pub fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// The MMU, mutably.
    pub fn mmu_mut(&mut self) -> &mut Mmu {
        &mut self.mmu
    }

    /// The guest.
    pub fn guest(&self) -> &Guest {
        &self.guest
    }

    /// The guest, mutably.
    pub fn guest_mut(&mut self) -> &mut Guest {
        &mut self.guest
    }

    /// MMU and guest at once.
    pub fn parts_mut(&mut self) -> (&mut Mmu, &mut Guest) {
        (&mut self.mmu, &mut self.guest)
    }
}

/// In a sequential world every call takes effect at once (the MMU's own platform
/// behaviour). In a concurrent one each call is two preemption points (before and after its
/// effect), TLB flushes are shootdowns, and the PGM lock is tracked.
impl Platform for Machine {
    fn update_shadow_ptes(&mut self, gc_phys: Gpa, page: &PageDescriptor, flush_ptes: bool) -> ShadowUpdate {
        if self.hw.is_none() {
            return self.mmu.update_shadow_ptes(gc_phys, page, flush_ptes);
        }
        self.effect(|m| m.mmu.update_shadow_ptes(gc_phys, page, flush_ptes))
    }
    fn flush_all_tlbs(&mut self) {
        if self.hw.is_none() {
            return self.mmu.flush_all_tlbs();
        }
        self.effect(|m| {
            if m.mmu.flush_request() {
                m.shootdown();
            }
        });
    }
    fn invalidate_page_map_entry(&mut self, gc_phys: Gpa) {
        if self.hw.is_none() {
            return self.mmu.invalidate_page_map_entry(gc_phys);
        }
        self.effect(|m| m.mmu.invalidate_page_map_entry(gc_phys));
    }
    fn flush_emulator_phys_tlbs(&mut self) {
        if self.hw.is_none() {
            return self.mmu.flush_emulator_phys_tlbs();
        }
        self.effect(|m| m.mmu.flush_emulator_phys_tlbs());
    }
    fn nem_handler_registered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) {
        self.mmu.nem_handler_registered(kind, gc_phys, len);
    }
    fn nem_handler_deregistered(&mut self, kind: HandlerKind, gc_phys: Gpa, len: u64) -> Option<u8> {
        self.mmu.nem_handler_deregistered(kind, gc_phys, len)
    }
    fn nem_page_protection_changed(&mut self, gc_phys: Gpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        if self.hw.is_none() {
            return self.mmu.nem_page_protection_changed(gc_phys, page, prot);
        }
        let entry = NestedEntry {
            host: page.host_phys(),
            prot,
        };
        self.nested_changed(gc_phys.page_base(), entry);
        nem_state_for(prot)
    }
    fn nem_page_backing_changed(&mut self, gc_phys: Gpa, old: Hpa, page: &PageDescriptor, prot: NemProtection) -> u8 {
        if self.hw.is_none() {
            return self.mmu.nem_page_backing_changed(gc_phys, old, page, prot);
        }
        let entry = NestedEntry {
            host: page.host_phys(),
            prot,
        };
        self.nested_changed(gc_phys.page_base(), entry);
        nem_state_for(prot)
    }
    fn pgm_lock(&mut self) {
        if let Some(hw) = self.hw_mut() {
            let current = hw.current;
            assert_eq!(
                hw.lock.owner,
                Some(current),
                "the manager took the PGM lock its caller does not hold"
            );
            hw.lock.depth += 1;
        }
    }
    fn pgm_unlock(&mut self) {
        if let Some(hw) = self.hw_mut() {
            assert!(hw.lock.depth > 1, "the manager released a PGM lock it did not take");
            hw.lock.depth -= 1;
        }
    }
}

impl Machine {
    /// A nested entry changed: update it, then shoot down the combined translations.
    fn nested_changed(&mut self, gp: Gpa, entry: NestedEntry) {
        self.effect(|m| {
            if m.mmu.nested_update(gp, entry) {
                m.shootdown();
            }
        });
    }
}
