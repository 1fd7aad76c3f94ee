//! The configured guest-physical world: RAM ranges and MMIO2 regions, as plain data.
//!
//! A layout is configuration, shared verbatim by the production manager, the reference model
//! and the simulator, so all three start from the same pages with the same host backing.

use serde::{Deserialize, Serialize};

use crate::addr::{PAGE_OFFSET_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::error::Error;
use crate::page::{page_id_for, PageDescriptor, PageState, PageType, MAX_HOST_PHYS, NIL_PAGE_ID};

/// Opaque, 1-based handle of an MMIO2 region (0 is never valid, as in the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mmio2Handle(pub u32);

/// What a RAM range's pages are when the world starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeKind {
    /// Allocated RAM backed by consecutive host pages from `host_base`.
    Ram {
        /// Host-physical address of the first page's backing.
        host_base: u64,
    },
    /// MMIO pages: no backing (the shared zero page), every access traps once a handler exists.
    Mmio,
    /// A mapping of an MMIO2 region: the pages share the region's backing.
    Mmio2 {
        /// The region mapped here; the range has exactly the region's page count.
        region: Mmio2Handle,
    },
}

/// One guest-physical RAM range (the seed's `PGMRAMRANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RamRangeSpec {
    /// First guest-physical address (page aligned).
    pub first: u64,
    /// Number of pages (at least one).
    pub pages: u32,
    /// What the pages are.
    pub kind: RangeKind,
}

impl RamRangeSpec {
    /// Last guest-physical byte of the range (inclusive).
    pub const fn last(&self) -> u64 {
        self.first + ((self.pages as u64) << PAGE_SHIFT) - 1
    }

    /// Whether `addr` lies in the range.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.first && addr <= self.last()
    }
}

/// One MMIO2 region: device memory with its own consecutive host backing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mmio2RegionSpec {
    /// Number of pages (at least one).
    pub pages: u32,
    /// Host-physical address of the first page's backing.
    pub host_base: u64,
}

/// The whole guest-physical world: RAM ranges sorted by address, MMIO2 regions, the zero page.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryLayout {
    /// RAM ranges, sorted by `first`, non-overlapping.
    pub ram_ranges: Vec<RamRangeSpec>,
    /// MMIO2 regions; handle `n` is `mmio2_regions[n - 1]`.
    pub mmio2_regions: Vec<Mmio2RegionSpec>,
    /// Host-physical address of the shared zero page.
    pub zero_page: u64,
}

/// Largest guest-physical address a layout may use (52-bit guest-physical space).
pub const MAX_GUEST_PHYS: u64 = (1 << 52) - 1;

impl MemoryLayout {
    /// Starts a layout whose host backing is handed out consecutively, after the zero page.
    pub fn builder() -> LayoutBuilder {
        LayoutBuilder::default()
    }

    /// Checks the layout: aligned, non-empty, sorted, non-overlapping ranges inside the
    /// guest-physical space; host backing inside what a descriptor holds; MMIO2 mappings that
    /// name an existing region with the same size, each region mapped at most once.
    pub fn validate(&self) -> Result<(), Error> {
        if self.zero_page & PAGE_OFFSET_MASK != 0 || self.zero_page > MAX_HOST_PHYS {
            return Err(Error::InvalidParameter);
        }
        for region in &self.mmio2_regions {
            if region.pages == 0 || region.host_base & PAGE_OFFSET_MASK != 0 {
                return Err(Error::InvalidParameter);
            }
            let end = region.host_base.checked_add((region.pages as u64) << PAGE_SHIFT);
            if end.is_none_or(|e| e - 1 > MAX_HOST_PHYS) {
                return Err(Error::InvalidParameter);
            }
        }
        let mut mapped = vec![false; self.mmio2_regions.len()];
        let mut prev_last: Option<u64> = None;
        for range in &self.ram_ranges {
            if range.pages == 0 || range.first & PAGE_OFFSET_MASK != 0 {
                return Err(Error::InvalidParameter);
            }
            let Some(end) = range.first.checked_add((range.pages as u64) << PAGE_SHIFT) else {
                return Err(Error::InvalidParameter);
            };
            if end - 1 > MAX_GUEST_PHYS {
                return Err(Error::InvalidParameter);
            }
            if prev_last.is_some_and(|p| range.first <= p) {
                return Err(Error::InvalidParameter);
            }
            prev_last = Some(end - 1);
            match range.kind {
                RangeKind::Ram { host_base } => {
                    let host_end = host_base.checked_add((range.pages as u64) << PAGE_SHIFT);
                    if host_base & PAGE_OFFSET_MASK != 0 || host_end.is_none_or(|e| e - 1 > MAX_HOST_PHYS) {
                        return Err(Error::InvalidParameter);
                    }
                }
                RangeKind::Mmio => {}
                RangeKind::Mmio2 { region } => {
                    let idx = (region.0 as usize).wrapping_sub(1);
                    let Some(spec) = self.mmio2_regions.get(idx) else {
                        return Err(Error::OutOfRange);
                    };
                    if spec.pages != range.pages || mapped[idx] {
                        return Err(Error::InvalidParameter);
                    }
                    mapped[idx] = true;
                }
            }
        }
        Ok(())
    }

    /// The MMIO2 region behind a handle.
    pub fn mmio2_region(&self, handle: Mmio2Handle) -> Option<&Mmio2RegionSpec> {
        self.mmio2_regions.get((handle.0 as usize).wrapping_sub(1))
    }

    /// Descriptor of page `index` of MMIO2 region `region` when the world starts.
    pub fn initial_mmio2_page(&self, region: &Mmio2RegionSpec, index: u32) -> PageDescriptor {
        let hc = region.host_base + ((index as u64) << PAGE_SHIFT);
        PageDescriptor::new(PageType::Mmio2, PageState::Allocated, hc, page_id_for(hc))
    }

    /// Descriptor of page `index` of `range` when the world starts.
    pub fn initial_page(&self, range: &RamRangeSpec, index: u32) -> PageDescriptor {
        match range.kind {
            RangeKind::Ram { host_base } => {
                let hc = host_base + ((index as u64) << PAGE_SHIFT);
                PageDescriptor::new(PageType::Ram, PageState::Allocated, hc, page_id_for(hc))
            }
            RangeKind::Mmio => PageDescriptor::new(PageType::Mmio, PageState::Zero, self.zero_page, NIL_PAGE_ID),
            RangeKind::Mmio2 { region } => match self.mmio2_region(region) {
                Some(spec) => self.initial_mmio2_page(spec, index),
                None => PageDescriptor::new(PageType::Invalid, PageState::Zero, self.zero_page, NIL_PAGE_ID),
            },
        }
    }

    /// Total guest pages over all RAM ranges.
    pub fn total_pages(&self) -> u64 {
        self.ram_ranges.iter().map(|r| r.pages as u64).sum()
    }
}

/// Builds a [`MemoryLayout`], handing out host backing consecutively.
#[derive(Debug, Clone)]
pub struct LayoutBuilder {
    layout: MemoryLayout,
    next_host: u64,
}

impl Default for LayoutBuilder {
    fn default() -> Self {
        LayoutBuilder {
            layout: MemoryLayout {
                ram_ranges: Vec::new(),
                mmio2_regions: Vec::new(),
                zero_page: PAGE_SIZE,
            },
            next_host: 0x10_0000,
        }
    }
}

impl LayoutBuilder {
    fn take_host(&mut self, pages: u32) -> u64 {
        let base = self.next_host;
        // One guard page between backings so off-by-one backing bugs show as wrong frames.
        self.next_host += ((pages as u64) + 1) << PAGE_SHIFT;
        base
    }

    /// Adds a RAM range of allocated pages.
    pub fn ram(mut self, first: u64, pages: u32) -> Self {
        let host_base = self.take_host(pages);
        self.layout.ram_ranges.push(RamRangeSpec {
            first,
            pages,
            kind: RangeKind::Ram { host_base },
        });
        self
    }

    /// Adds an MMIO range.
    pub fn mmio(mut self, first: u64, pages: u32) -> Self {
        self.layout.ram_ranges.push(RamRangeSpec {
            first,
            pages,
            kind: RangeKind::Mmio,
        });
        self
    }

    /// Adds an MMIO2 region, unmapped; returns the builder and the region's handle.
    pub fn mmio2_region(mut self, pages: u32) -> (Self, Mmio2Handle) {
        let host_base = self.take_host(pages);
        self.layout.mmio2_regions.push(Mmio2RegionSpec { pages, host_base });
        let handle = Mmio2Handle(self.layout.mmio2_regions.len() as u32);
        (self, handle)
    }

    /// Maps a whole MMIO2 region at `first` as a RAM range of MMIO2 pages.
    pub fn map_mmio2(mut self, region: Mmio2Handle, first: u64) -> Self {
        let pages = self.layout.mmio2_region(region).map_or(0, |r| r.pages);
        self.layout.ram_ranges.push(RamRangeSpec {
            first,
            pages,
            kind: RangeKind::Mmio2 { region },
        });
        self
    }

    /// Sorts the ranges and validates the layout.
    pub fn build(mut self) -> Result<MemoryLayout, Error> {
        self.layout.ram_ranges.sort_by_key(|r| r.first);
        self.layout.validate()?;
        Ok(self.layout)
    }
}
