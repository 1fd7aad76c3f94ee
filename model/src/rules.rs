//! The model's own statement of the facts the production crate also computes: which layouts
//! are valid, how capacity rounds, what a page looks like when the world starts, which state
//! each handler kind gives its pages, and what type handles look like. Written from the
//! semantics document (`docs/semantics.md`), not from the production code, in the simplest
//! words that state each rule: slow, obviously right, and a second opinion on the
//! production helpers.
// Stated in the plainest arithmetic on purpose: the production helpers use the idiomatic
// forms (`div_ceil`, `is_multiple_of`, exclusive ends), and a rule that reads like the code
// it checks is no second opinion.
#![allow(clippy::manual_div_ceil, clippy::manual_is_multiple_of, clippy::int_plus_one)]

use pgmsim::{
    HandlerKind, HandlerState, HandlerTypeHandle, Hpa, LayoutError, MemoryLayout, Mmio2Handle, PageDescriptor,
    PageState, PageType, RangeKind, SetupError,
};

/// Bytes in a page.
pub const PAGE: u64 = 4096;
/// Largest host-physical address a page descriptor can hold: 48 bits.
pub const MAX_HOST_ADDRESS: u64 = (1 << 48) - 1;
/// Largest guest-physical address: 52 bits.
pub const MAX_GUEST_ADDRESS: u64 = (1 << 52) - 1;
/// The page id of "no page" (zero page, MMIO, host aliases).
pub const NO_PAGE_ID: u32 = u32::MAX;
/// Fewest and most handlers a manager may be configured with.
pub const HANDLER_LIMITS: (u32, u32) = (32, 65536);

/// The capacity a configured handler count gives: within the limits, rounded up to a whole
/// number of 16-node chunks (semantics §2.2).
pub fn capacity(max_handlers: u32) -> Result<u32, SetupError> {
    let (fewest, most) = HANDLER_LIMITS;
    if max_handlers < fewest || max_handlers > most {
        return Err(SetupError::Capacity { max_handlers });
    }
    let chunks = (max_handlers + 15) / 16;
    Ok(chunks * 16)
}

/// The page state a handler of each kind gives the pages it covers.
pub fn state_of_kind(kind: HandlerKind) -> HandlerState {
    match kind {
        HandlerKind::Write => HandlerState::Write,
        HandlerKind::All => HandlerState::All,
        HandlerKind::Mmio => HandlerState::All,
    }
}

/// The model's handle of the `index`-th registered type. Any value unique per index works:
/// tests name types by index, never by handle value.
pub fn type_handle(index: usize) -> HandlerTypeHandle {
    HandlerTypeHandle(0x6d6f_6465_6c00_0000 + index as u64)
}

/// Whether `value` is a multiple of the page size.
fn aligned(value: u64) -> bool {
    value % PAGE == 0
}

/// The last byte of `pages` pages from `first`, if it does not overflow.
fn last_byte(first: u64, pages: u32) -> Option<u64> {
    first.checked_add(pages as u64 * PAGE).map(|end| end - 1)
}

/// Whether a backing of `pages` pages from `base` is aligned and ends at or below the host
/// limit.
fn backing_fits(base: Hpa, pages: u32) -> bool {
    aligned(base.0) && last_byte(base.0, pages).is_some_and(|last| last <= MAX_HOST_ADDRESS)
}

/// Checks a layout, rule by rule, in the order the semantics document lists them (§2.1): the zero
/// page; each MMIO2 region (pages, backing); each RAM range in order (pages, alignment, end,
/// order against the previous range, then its backing or the region it maps).
pub fn validate_layout(layout: &MemoryLayout) -> Result<(), LayoutError> {
    let zero_page = layout.zero_page;
    if !aligned(zero_page.0) || zero_page.0 > MAX_HOST_ADDRESS {
        return Err(LayoutError::ZeroPage { zero_page });
    }
    for (index, region) in layout.mmio2_regions.iter().enumerate() {
        if region.pages == 0 {
            return Err(LayoutError::EmptyRegion { index });
        }
        if !backing_fits(region.host_base, region.pages) {
            return Err(LayoutError::RegionBacking {
                index,
                host_base: region.host_base,
            });
        }
    }
    let mut mapped_regions: Vec<Mmio2Handle> = Vec::new();
    for (index, range) in layout.ram_ranges.iter().enumerate() {
        let (first, pages) = (range.first, range.pages);
        if pages == 0 {
            return Err(LayoutError::EmptyRange { index });
        }
        if !aligned(first) {
            return Err(LayoutError::Misaligned { index, first });
        }
        if last_byte(first, pages).is_none_or(|last| last > MAX_GUEST_ADDRESS) {
            return Err(LayoutError::BeyondGuestSpace { index, first, pages });
        }
        if index > 0 {
            let previous = &layout.ram_ranges[index - 1];
            let prev_last = previous.first + previous.pages as u64 * PAGE - 1;
            if first <= prev_last {
                return Err(LayoutError::Overlap {
                    index,
                    first,
                    prev_last,
                });
            }
        }
        match range.kind {
            RangeKind::Ram { host_base } => {
                if !backing_fits(host_base, pages) {
                    return Err(LayoutError::RangeBacking { index, host_base });
                }
            }
            RangeKind::Mmio => {}
            RangeKind::Mmio2 { region } => {
                let Some(spec) = region_spec(layout, region) else {
                    return Err(LayoutError::UnknownRegion { index, region });
                };
                if spec.pages != pages {
                    return Err(LayoutError::RegionSize {
                        index,
                        region,
                        range_pages: pages,
                        region_pages: spec.pages,
                    });
                }
                if mapped_regions.contains(&region) {
                    return Err(LayoutError::RegionMappedTwice { index, region });
                }
                mapped_regions.push(region);
            }
        }
    }
    Ok(())
}

/// The MMIO2 region behind a 1-based handle.
fn region_spec(layout: &MemoryLayout, region: Mmio2Handle) -> Option<&pgmsim::layout::Mmio2RegionSpec> {
    let index = (region.0 as usize).checked_sub(1)?;
    layout.mmio2_regions.get(index)
}

/// `(first, last)` of the RAM range containing `addr`.
pub fn range_containing(layout: &MemoryLayout, addr: u64) -> Option<(u64, u64)> {
    layout
        .ram_ranges
        .iter()
        .map(|r| (r.first, r.first + r.pages as u64 * PAGE - 1))
        .find(|&(first, last)| first <= addr && addr <= last)
}

/// An allocated page backed by `host`: its page id is its host frame number.
fn allocated(page_type: PageType, host: Hpa) -> PageDescriptor {
    PageDescriptor::new(page_type, PageState::Allocated, host, (host.0 / PAGE) as u32)
}

/// The descriptor of the page at `page` (a page base) when the world starts: RAM pages are
/// allocated from their range's backing, MMIO pages are zero-page backed with no page id,
/// MMIO2 pages share their region's backing.
pub fn initial_descriptor(layout: &MemoryLayout, page: u64) -> Option<PageDescriptor> {
    let range = layout
        .ram_ranges
        .iter()
        .find(|r| r.first <= page && page <= r.first + r.pages as u64 * PAGE - 1)?;
    let offset = page - range.first;
    Some(match range.kind {
        RangeKind::Ram { host_base } => allocated(PageType::Ram, Hpa(host_base.0 + offset)),
        RangeKind::Mmio => PageDescriptor::new(PageType::Mmio, PageState::Zero, layout.zero_page, NO_PAGE_ID),
        RangeKind::Mmio2 { region } => {
            let spec = region_spec(layout, region)?;
            allocated(PageType::Mmio2, Hpa(spec.host_base.0 + offset))
        }
    })
}

/// The descriptor of the MMIO2 page `offset` bytes into `region`, if both exist.
pub fn mmio2_descriptor(layout: &MemoryLayout, region: Mmio2Handle, offset: u64) -> Option<PageDescriptor> {
    let spec = region_spec(layout, region)?;
    let index = offset / PAGE;
    if index >= spec.pages as u64 {
        return None;
    }
    Some(allocated(PageType::Mmio2, Hpa(spec.host_base.0 + index * PAGE)))
}
