//! Host memory: the bytes behind every host page (RAM, MMIO2, aliases, page tables).
//!
//! One store serves both sides of the differential run: the production path and the model's
//! prediction must *resolve* an access to the same host address, so only one copy of the
//! bytes is needed. Pages are created on first write; unwritten pages read as zeros.
//!
//! Pages are shared between clones and copied on the first write after a clone, so cloning a
//! world (once per fuzz input) copies no page bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use pgmsim::{Hpa, PAGE_OFFSET_MASK, PAGE_SIZE};

/// Sparse host-physical memory.
#[derive(Debug, Clone, Default)]
pub struct HostMemory {
    pages: BTreeMap<Hpa, Arc<[u8; PAGE_SIZE as usize]>>,
}

impl HostMemory {
    /// Reads `size` (1, 2, 4 or 8) little-endian bytes at `addr`; the bytes never cross a page.
    pub fn read(&self, addr: Hpa, size: u8) -> u64 {
        let base = addr.page_base();
        let off = (addr.0 & PAGE_OFFSET_MASK) as usize;
        let Some(page) = self.pages.get(&base) else { return 0 };
        let mut v = 0u64;
        for i in (0..size as usize).rev() {
            v = (v << 8) | page[(off + i) & (PAGE_SIZE as usize - 1)] as u64;
        }
        v
    }

    /// Writes the low `size` bytes of `value` at `addr`, little-endian, within one page.
    pub fn write(&mut self, addr: Hpa, size: u8, value: u64) {
        let base = addr.page_base();
        let off = (addr.0 & PAGE_OFFSET_MASK) as usize;
        let page = Arc::make_mut(
            self.pages
                .entry(base)
                .or_insert_with(|| Arc::new([0u8; PAGE_SIZE as usize])),
        );
        for i in 0..size as usize {
            page[(off + i) & (PAGE_SIZE as usize - 1)] = (value >> (8 * i)) as u8;
        }
    }

    /// The bytes of the page at `base` (`None`: never written, all zeros).
    pub fn page(&self, base: Hpa) -> Option<&[u8; PAGE_SIZE as usize]> {
        self.pages.get(&base.page_base()).map(|p| &**p)
    }

    /// Zeroes a whole page (fresh page-table pages).
    pub fn zero_page(&mut self, base: Hpa) {
        self.pages.remove(&base.page_base());
    }

    /// Number of materialised pages.
    pub fn resident_pages(&self) -> usize {
        self.pages.len()
    }
}
