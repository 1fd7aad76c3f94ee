//! The configured guest-physical world: RAM ranges and MMIO2 regions, as plain data.
//!
//! A layout is configuration, shared verbatim by the production manager, the reference model
//! and the simulator, so all three start from the same pages with the same host backing.

use crate::addr::{Hpa, PAGE_OFFSET_MASK, PAGE_SHIFT, PAGE_SIZE};
use crate::page::{page_id_for, PageDescriptor, PageState, PageType, MAX_HOST_PHYS, NIL_PAGE_ID};

/// Opaque, 1-based handle of an MMIO2 region (0 is never valid, as in the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mmio2Handle(pub u32);

/// What a RAM range's pages are when the world starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RangeKind {
    /// Allocated RAM backed by consecutive host pages from `host_base`.
    Ram {
        /// Host-physical address of the first page's backing.
        host_base: Hpa,
    },
    /// MMIO pages: no backing (the shared zero page), every access traps once a handler exists.
    Mmio,
    /// A mapping of an MMIO2 region: the pages share the region's backing.
    Mmio2 {
        /// The region mapped here; the range has exactly the region's page count.
        region: Mmio2Handle,
    },
}

/// One guest-physical RAM range (the original's `PGMRAMRANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Mmio2RegionSpec {
    /// Number of pages (at least one).
    pub pages: u32,
    /// Host-physical address of the first page's backing.
    pub host_base: Hpa,
}

/// The whole guest-physical world: RAM ranges sorted by address, MMIO2 regions, the zero page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MemoryLayout {
    /// RAM ranges, sorted by `first`, non-overlapping.
    pub ram_ranges: Vec<RamRangeSpec>,
    /// MMIO2 regions; handle `n` is `mmio2_regions[n - 1]`.
    pub mmio2_regions: Vec<Mmio2RegionSpec>,
    /// Host-physical address of the shared zero page.
    pub zero_page: Hpa,
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
    /// name an existing region with the same size, each region mapped at most once. The error
    /// names the field, the range or region index and the limit. The rules and their order are
    /// semantics §2.1.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.zero_page.0 & PAGE_OFFSET_MASK != 0 || self.zero_page.0 > MAX_HOST_PHYS {
            return Err(LayoutError::ZeroPage {
                zero_page: self.zero_page,
            });
        }
        for (index, region) in self.mmio2_regions.iter().enumerate() {
            if region.pages == 0 {
                return Err(LayoutError::EmptyRegion { index });
            }
            check_backing(region.host_base, region.pages)
                .map_err(|host_base| LayoutError::RegionBacking { index, host_base })?;
        }
        let mut mapped = vec![false; self.mmio2_regions.len()];
        let mut prev_last: Option<u64> = None;
        for (index, range) in self.ram_ranges.iter().enumerate() {
            let last = check_range(index, range)?;
            if let Some(prev_last) = prev_last.filter(|&p| range.first <= p) {
                return Err(LayoutError::Overlap {
                    index,
                    first: range.first,
                    prev_last,
                });
            }
            prev_last = Some(last);
            match range.kind {
                RangeKind::Ram { host_base } => {
                    check_backing(host_base, range.pages)
                        .map_err(|host_base| LayoutError::RangeBacking { index, host_base })?;
                }
                RangeKind::Mmio => {}
                RangeKind::Mmio2 { region } => {
                    let r = (region.0 as usize).wrapping_sub(1);
                    let spec = self
                        .mmio2_regions
                        .get(r)
                        .ok_or(LayoutError::UnknownRegion { index, region })?;
                    if spec.pages != range.pages {
                        return Err(LayoutError::RegionSize {
                            index,
                            region,
                            range_pages: range.pages,
                            region_pages: spec.pages,
                        });
                    }
                    if std::mem::replace(&mut mapped[r], true) {
                        return Err(LayoutError::RegionMappedTwice { index, region });
                    }
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
        let hc = region.host_base.offset((index as u64) << PAGE_SHIFT);
        PageDescriptor::new(PageType::Mmio2, PageState::Allocated, hc, page_id_for(hc))
    }

    /// Descriptor of page `index` of `range` when the world starts.
    pub fn initial_page(&self, range: &RamRangeSpec, index: u32) -> PageDescriptor {
        match range.kind {
            RangeKind::Ram { host_base } => {
                let hc = host_base.offset((index as u64) << PAGE_SHIFT);
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
                zero_page: Hpa(PAGE_SIZE),
            },
            next_host: 0x10_0000,
        }
    }
}

impl LayoutBuilder {
    fn take_host(&mut self, pages: u32) -> Hpa {
        let base = Hpa(self.next_host);
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
    pub fn build(mut self) -> Result<MemoryLayout, LayoutError> {
        self.layout.ram_ranges.sort_by_key(|r| r.first);
        self.layout.validate()?;
        Ok(self.layout)
    }
}

/// What is wrong with a [`MemoryLayout`]: the field, the range or region index (into
/// `ram_ranges` / `mmio2_regions`) and the limit broken.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The zero page is not page aligned or not below the descriptor's host limit.
    #[error("zero_page {zero_page} must be page aligned and at most {MAX_HOST_PHYS:#x}")]
    ZeroPage {
        /// The value given.
        zero_page: Hpa,
    },
    /// An MMIO2 region has no pages.
    #[error("mmio2_regions[{index}]: pages must be at least 1")]
    EmptyRegion {
        /// Region index.
        index: usize,
    },
    /// An MMIO2 region's backing is misaligned or ends past the descriptor's host limit.
    #[error("mmio2_regions[{index}]: host_base {host_base} must be page aligned and the backing must end at or below {MAX_HOST_PHYS:#x}")]
    RegionBacking {
        /// Region index.
        index: usize,
        /// The value given.
        host_base: Hpa,
    },
    /// A RAM range has no pages.
    #[error("ram_ranges[{index}]: pages must be at least 1")]
    EmptyRange {
        /// Range index.
        index: usize,
    },
    /// A RAM range does not start on a page boundary.
    #[error("ram_ranges[{index}]: first {first:#x} must be page aligned")]
    Misaligned {
        /// Range index.
        index: usize,
        /// The value given.
        first: u64,
    },
    /// A RAM range ends past the guest-physical address space.
    #[error(
        "ram_ranges[{index}]: the range must end at or below {MAX_GUEST_PHYS:#x} (first {first:#x}, {pages} pages)"
    )]
    BeyondGuestSpace {
        /// Range index.
        index: usize,
        /// The value given.
        first: u64,
        /// The value given.
        pages: u32,
    },
    /// A RAM range starts at or below the end of the previous one (ranges must be sorted and
    /// disjoint).
    #[error("ram_ranges[{index}]: first {first:#x} must be above the previous range's last byte {prev_last:#x}")]
    Overlap {
        /// Range index.
        index: usize,
        /// The value given.
        first: u64,
        /// Last byte of `ram_ranges[index - 1]`.
        prev_last: u64,
    },
    /// A RAM range's backing is misaligned or ends past the descriptor's host limit.
    #[error("ram_ranges[{index}]: host_base {host_base} must be page aligned and the backing must end at or below {MAX_HOST_PHYS:#x}")]
    RangeBacking {
        /// Range index.
        index: usize,
        /// The value given.
        host_base: Hpa,
    },
    /// A range maps an MMIO2 region that does not exist.
    #[error("ram_ranges[{index}]: MMIO2 region {} does not exist (handles are 1-based)", region.0)]
    UnknownRegion {
        /// Range index.
        index: usize,
        /// The handle given.
        region: Mmio2Handle,
    },
    /// A range maps an MMIO2 region with a different page count.
    #[error("ram_ranges[{index}]: maps MMIO2 region {} of {region_pages} pages with {range_pages} pages", region.0)]
    RegionSize {
        /// Range index.
        index: usize,
        /// The handle given.
        region: Mmio2Handle,
        /// The range's pages.
        range_pages: u32,
        /// The region's pages.
        region_pages: u32,
    },
    /// Two ranges map the same MMIO2 region.
    #[error("ram_ranges[{index}]: MMIO2 region {} is already mapped by an earlier range", region.0)]
    RegionMappedTwice {
        /// Range index.
        index: usize,
        /// The handle given.
        region: Mmio2Handle,
    },
}

/// Checks one RAM range's own fields; returns its last byte.
fn check_range(index: usize, range: &RamRangeSpec) -> Result<u64, LayoutError> {
    if range.pages == 0 {
        return Err(LayoutError::EmptyRange { index });
    }
    if range.first & PAGE_OFFSET_MASK != 0 {
        return Err(LayoutError::Misaligned {
            index,
            first: range.first,
        });
    }
    range
        .first
        .checked_add((range.pages as u64) << PAGE_SHIFT)
        .map(|end| end - 1)
        .filter(|&last| last <= MAX_GUEST_PHYS)
        .ok_or(LayoutError::BeyondGuestSpace {
            index,
            first: range.first,
            pages: range.pages,
        })
}

/// Checks a backing of `pages` pages from `host_base`; `Err(host_base)` when it does not fit.
fn check_backing(host_base: Hpa, pages: u32) -> Result<(), Hpa> {
    let end = host_base.0.checked_add((pages as u64) << PAGE_SHIFT);
    if host_base.0 & PAGE_OFFSET_MASK != 0 || end.is_none_or(|e| e - 1 > MAX_HOST_PHYS) {
        return Err(host_base);
    }
    Ok(())
}
