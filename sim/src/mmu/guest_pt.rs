//! Guest page tables stored in guest RAM (x86-64 style, 4 levels, 4 KiB pages) and the
//! guest kernel's edits to them.
//!
//! Tables live in a pool of RAM pages reserved at the start of the first RAM range; the
//! simulator never maps pool pages into the guest's address spaces, so only the guest kernel
//! (these functions) writes them. The walker is cache-free: it is the reference translation
//! every TLB entry and shadow PTE is checked against.

use pgmsim::{Gpa, Gva, Hpa};

use crate::memory::HostMemory;

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Writable.
pub const PTE_RW: u64 = 1 << 1;
/// User.
pub const PTE_US: u64 = 1 << 2;
/// No-execute.
pub const PTE_NX: u64 = 1 << 63;
/// Frame address bits.
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// First guest-virtual address of the simulated window.
pub const VA_BASE: u64 = 0x0000_0040_0000_0000;

/// Guest-virtual address of page index `vpi`.
pub const fn va_of(vpi: u32) -> Gva {
    Gva(VA_BASE + ((vpi as u64) << 12))
}

/// Page index of `va` inside a window of `pages` pages.
pub fn vpi_of(va: Gva, pages: u32) -> Option<u32> {
    let i = va.0.checked_sub(VA_BASE)? >> 12;
    (i < pages as u64).then_some(i as u32)
}

/// What the guest's tables say about one virtual page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestPte {
    /// Guest-physical page base.
    pub gp: Gpa,
    /// Writable at every level.
    pub write: bool,
    /// Executable (no NX at any level).
    pub exec: bool,
}

/// The pool of RAM pages that hold page tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtPool {
    gp_first: Gpa,
    host_first: Hpa,
    pages: u32,
    used: u32,
}

impl PtPool {
    /// A pool of `pages` pages at guest-physical `gp_first`, backed from `host_first`.
    pub fn new(gp_first: Gpa, host_first: Hpa, pages: u32) -> Self {
        PtPool {
            gp_first,
            host_first,
            pages,
            used: 0,
        }
    }

    /// Guest-physical range `[first, last]` of the pool.
    pub fn range(&self) -> (Gpa, Gpa) {
        (self.gp_first, self.gp_first.offset(((self.pages as u64) << 12) - 1))
    }

    /// Host page of a pool page.
    #[inline]
    pub fn host_of(&self, gp: Gpa) -> Option<Hpa> {
        let i = gp.0.checked_sub(self.gp_first.0)? >> 12;
        (i < self.pages as u64).then(|| self.host_first.offset(i << 12))
    }

    /// A fresh zeroed table page, if the pool has one left.
    pub fn alloc(&mut self, mem: &mut HostMemory) -> Option<Gpa> {
        if self.used >= self.pages {
            return None;
        }
        let i = self.used as u64;
        self.used += 1;
        mem.zero_page(self.host_first.offset(i << 12));
        Some(self.gp_first.offset(i << 12))
    }
}

#[inline]
fn index(va: Gva, level: u32) -> u64 {
    (va.0 >> (12 + 9 * level)) & 511
}

/// Walks the guest tables rooted at `cr3` for `va`; `None` when not present at some level.
pub fn walk(mem: &HostMemory, pool: &PtPool, cr3: Gpa, va: Gva) -> Option<GuestPte> {
    let mut table = cr3;
    let (mut write, mut exec) = (true, true);
    for level in (0..4).rev() {
        let host = pool.host_of(table)?;
        let e = mem.read(host.offset(index(va, level) * 8), 8);
        if e & PTE_P == 0 {
            return None;
        }
        write &= e & PTE_RW != 0;
        exec &= e & PTE_NX == 0;
        if level == 0 {
            return Some(GuestPte {
                gp: Gpa(e & PTE_ADDR),
                write,
                exec,
            });
        }
        table = Gpa(e & PTE_ADDR);
    }
    None
}

/// Host address of the leaf PTE for `va`, creating intermediate tables when `create`.
fn leaf_slot(mem: &mut HostMemory, pool: &mut PtPool, cr3: Gpa, va: Gva, create: bool) -> Option<Hpa> {
    let mut table = cr3;
    for level in (1..4).rev() {
        let host = pool.host_of(table)?;
        let slot = host.offset(index(va, level) * 8);
        let e = mem.read(slot, 8);
        if e & PTE_P != 0 {
            table = Gpa(e & PTE_ADDR);
            continue;
        }
        if !create {
            return None;
        }
        let next = pool.alloc(mem)?;
        mem.write(slot, 8, next.0 | PTE_P | PTE_RW | PTE_US);
        table = next;
    }
    Some(pool.host_of(table)?.offset(index(va, 0) * 8))
}

/// Why a guest-kernel edit failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KernelError {
    /// The page-table pool is exhausted.
    PoolExhausted,
    /// The virtual page is not mapped.
    NotMapped,
}

/// Maps `va` to guest-physical page `gp` with the given rights.
pub fn map(
    mem: &mut HostMemory,
    pool: &mut PtPool,
    cr3: Gpa,
    va: Gva,
    gp: Gpa,
    write: bool,
    exec: bool,
) -> Result<(), KernelError> {
    let slot = leaf_slot(mem, pool, cr3, va, true).ok_or(KernelError::PoolExhausted)?;
    let mut e = (gp.0 & PTE_ADDR) | PTE_P | PTE_US;
    if write {
        e |= PTE_RW;
    }
    if !exec {
        e |= PTE_NX;
    }
    mem.write(slot, 8, e);
    Ok(())
}

/// Clears the leaf PTE of `va`.
pub fn unmap(mem: &mut HostMemory, pool: &mut PtPool, cr3: Gpa, va: Gva) -> Result<(), KernelError> {
    let slot = leaf_slot(mem, pool, cr3, va, false).ok_or(KernelError::NotMapped)?;
    if mem.read(slot, 8) & PTE_P == 0 {
        return Err(KernelError::NotMapped);
    }
    mem.write(slot, 8, 0);
    Ok(())
}

/// Changes the rights of a present leaf PTE.
pub fn protect(
    mem: &mut HostMemory,
    pool: &mut PtPool,
    cr3: Gpa,
    va: Gva,
    write: bool,
    exec: bool,
) -> Result<(), KernelError> {
    let slot = leaf_slot(mem, pool, cr3, va, false).ok_or(KernelError::NotMapped)?;
    let e = mem.read(slot, 8);
    if e & PTE_P == 0 {
        return Err(KernelError::NotMapped);
    }
    let mut n = e & !(PTE_RW | PTE_NX);
    if write {
        n |= PTE_RW;
    }
    if !exec {
        n |= PTE_NX;
    }
    mem.write(slot, 8, n);
    Ok(())
}
