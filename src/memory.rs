//! Guest-physical memory as the manager keeps it: RAM ranges with their page descriptors and
//! MMIO2 regions with their own backing pages. Internal: callers see pages through
//! `PhysHandlerApi::page`.

use crate::addr::PAGE_SHIFT;
use crate::layout::{MemoryLayout, Mmio2Handle};
use crate::page::PageDescriptor;

/// A RAM range and its descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RamRange {
    /// First guest-physical byte.
    pub first: u64,
    /// Last guest-physical byte (inclusive).
    pub last: u64,
    /// One descriptor per page.
    pub pages: Vec<PageDescriptor>,
}

/// All RAM ranges (sorted) and MMIO2 regions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GuestMemory {
    ranges: Vec<RamRange>,
    mmio2: Vec<Vec<PageDescriptor>>,
}

/// Where a page lives: range index and page index inside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRef {
    /// Index of the RAM range.
    pub range: usize,
    /// Index of the page inside the range.
    pub index: usize,
}

/// Consecutive pages of one RAM range: the pages a registered handler touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSpan {
    /// The first page.
    pub first: PageRef,
    /// Number of pages.
    pub count: u32,
}

impl PageSpan {
    /// The `i`-th page of the span.
    #[inline]
    pub fn nth(self, i: u32) -> PageRef {
        PageRef {
            range: self.first.range,
            index: self.first.index + i as usize,
        }
    }

    /// Every page of the span, in address order.
    pub fn pages(self) -> impl Iterator<Item = PageRef> {
        (0..self.count).map(move |i| self.nth(i))
    }
}

impl GuestMemory {
    /// Builds the descriptors of a validated layout.
    pub fn new(layout: &MemoryLayout) -> Self {
        let ranges = layout
            .ram_ranges
            .iter()
            .map(|spec| RamRange {
                first: spec.first,
                last: spec.last(),
                pages: (0..spec.pages).map(|i| layout.initial_page(spec, i)).collect(),
            })
            .collect();
        let mmio2 = layout
            .mmio2_regions
            .iter()
            .map(|spec| (0..spec.pages).map(|i| layout.initial_mmio2_page(spec, i)).collect())
            .collect();
        GuestMemory { ranges, mmio2 }
    }

    /// The RAM ranges, sorted by address.
    pub fn ranges(&self) -> &[RamRange] {
        &self.ranges
    }

    /// Index of the RAM range containing `addr` (binary search; ranges are few but the guest
    /// may be large, so this stays O(log ranges) and allocation-free).
    #[inline]
    pub fn range_index(&self, addr: u64) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.first <= addr);
        if i == 0 {
            return None;
        }
        let r = &self.ranges[i - 1];
        (addr <= r.last).then_some(i - 1)
    }

    /// Location of the page containing `addr`.
    #[inline]
    pub fn locate(&self, addr: u64) -> Option<PageRef> {
        let range = self.range_index(addr)?;
        let index = ((addr - self.ranges[range].first) >> PAGE_SHIFT) as usize;
        Some(PageRef { range, index })
    }

    /// Descriptor of the page containing `addr`.
    #[inline]
    pub fn page(&self, addr: u64) -> Option<&PageDescriptor> {
        let r = self.locate(addr)?;
        Some(&self.ranges[r.range].pages[r.index])
    }

    /// Descriptor at a known location.
    #[inline]
    pub fn at(&self, r: PageRef) -> &PageDescriptor {
        &self.ranges[r.range].pages[r.index]
    }

    /// Mutable descriptor at a known location.
    #[inline]
    pub fn at_mut(&mut self, r: PageRef) -> &mut PageDescriptor {
        &mut self.ranges[r.range].pages[r.index]
    }

    /// Guest-physical address of a located page.
    #[inline]
    pub fn addr_of(&self, r: PageRef) -> u64 {
        self.ranges[r.range].first + ((r.index as u64) << PAGE_SHIFT)
    }

    /// The `count` pages from the one containing `addr`, if they all lie in its RAM range.
    pub fn span(&self, addr: u64, count: u32) -> Option<PageSpan> {
        let first = self.locate(addr)?;
        let end = first.index.checked_add(count as usize)?;
        (end <= self.ranges[first.range].pages.len()).then_some(PageSpan { first, count })
    }

    /// Descriptor of the MMIO2 page at `offset` bytes into region `handle`, if both exist.
    pub fn mmio2_page(&self, handle: Mmio2Handle, offset: u64) -> Option<&PageDescriptor> {
        let region = self.mmio2.get((handle.0 as usize).wrapping_sub(1))?;
        let index = usize::try_from(offset >> PAGE_SHIFT).ok()?;
        region.get(index)
    }
}
