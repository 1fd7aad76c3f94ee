//! Setup agreement: the production crate and the model derive layout validation, capacity
//! rounding and the initial page descriptors independently (`pgmsim::layout`,
//! `pgmsim::api` versus `pgmsim_model::rules`), so random, often-invalid layouts and
//! capacities must get exactly the same answer from both: the same `Ok`/`Err` and the same
//! error value from `MemoryLayout::validate` / `rules::validate_layout`,
//! `ManagerConfig::capacity` / `rules::capacity` and `Manager::new` / `Model::new`; and for
//! a valid layout every page descriptor of a fresh manager equals the fresh model's.

use pgmsim::addr::PAGE_SIZE;
use pgmsim::layout::{LayoutError, Mmio2RegionSpec, RamRangeSpec, MAX_GUEST_PHYS};
use pgmsim::page::MAX_HOST_PHYS;
use pgmsim::{Hpa, Manager, ManagerConfig, MemoryLayout, Mmio2Handle, NoopPlatform, PhysHandlerApi, RangeKind};
use pgmsim_model::{rules, Model};
use proptest::prelude::*;
use proptest::sample::select;

/// Largest valid layout (in pages) a case builds a manager for: a random valid layout can
/// describe terabytes, and the production manager allocates a descriptor per page.
const MAX_BUILT_PAGES: u64 = 4096;

/// Pages the production manager allocates descriptors for: every RAM range and every MMIO2
/// region (mapped or not).
fn described_pages(layout: &MemoryLayout) -> u64 {
    layout.total_pages() + layout.mmio2_regions.iter().map(|r| r.pages as u64).sum::<u64>()
}

/// A page count: mostly small, sometimes empty, sometimes large enough to leave the
/// guest-physical or host-physical space from a high start.
fn pages_s() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..=8, 1 => Just(0u32), 1 => select(vec![1u32 << 20, 1 << 28, u32::MAX])]
}

/// How a backing base is chosen: mostly a plain aligned address, sometimes misaligned, or
/// exactly at / one page past the last base whose backing of `pages` pages still fits.
#[derive(Debug, Clone, Copy)]
struct HostChoice {
    tag: u8,
    page: u64,
    offset: u64,
}

impl HostChoice {
    fn base(self, pages: u32) -> Hpa {
        let fits = (MAX_HOST_PHYS + 1).wrapping_sub(pages as u64 * PAGE_SIZE);
        match self.tag {
            0..=5 => Hpa(self.page * PAGE_SIZE),
            6 => Hpa(self.page * PAGE_SIZE + self.offset),
            7 => Hpa(fits),
            8 => Hpa(fits.wrapping_add(PAGE_SIZE)),
            _ => Hpa(!0xfff),
        }
    }
}

fn host_s() -> impl Strategy<Value = HostChoice> {
    (0u8..10, 1u64..0x1000, 1u64..PAGE_SIZE).prop_map(|(tag, page, offset)| HostChoice { tag, page, offset })
}

fn region_s() -> impl Strategy<Value = Mmio2RegionSpec> {
    (pages_s(), host_s()).prop_map(|(pages, host)| Mmio2RegionSpec {
        pages,
        host_base: host.base(pages),
    })
}

/// The random choices behind one RAM range.
#[derive(Debug, Clone, Copy)]
struct RangeChoice {
    pages: u32,
    /// Where it starts relative to the end of the previous range (see [`RangeChoice::first`]).
    placement: u8,
    gap: u64,
    misalign: u64,
    /// 0-2 RAM, 3 MMIO, 4-6 an MMIO2 mapping of `region`.
    kind: u8,
    region: u32,
    host: HostChoice,
    /// Whether an MMIO2 mapping takes its region's page count.
    same_size: bool,
}

impl RangeChoice {
    /// The start, given `prev_end` (one past the previous range's last byte): adjacent,
    /// after a gap, overlapping, misaligned, zero, or exactly where (or one page past where)
    /// the range still ends inside the guest-physical space.
    fn first(&self, prev_end: u64, pages: u32) -> u64 {
        let top = (MAX_GUEST_PHYS + 1).wrapping_sub(pages as u64 * PAGE_SIZE);
        match self.placement {
            0..=3 => prev_end,
            4..=7 => prev_end.wrapping_add(self.gap * PAGE_SIZE),
            8 => prev_end.wrapping_sub(PAGE_SIZE),
            9 => prev_end.wrapping_add(self.misalign),
            10 => 0,
            11 => top,
            _ => top.wrapping_add(PAGE_SIZE),
        }
    }

    fn spec(&self, prev_end: u64, regions: &[Mmio2RegionSpec]) -> RamRangeSpec {
        let region = Mmio2Handle(self.region);
        let (pages, kind) = match self.kind {
            0..=2 => (
                self.pages,
                RangeKind::Ram {
                    host_base: self.host.base(self.pages),
                },
            ),
            3 => (self.pages, RangeKind::Mmio),
            _ if self.same_size => (
                region_pages(regions, region).unwrap_or(self.pages),
                RangeKind::Mmio2 { region },
            ),
            _ => (self.pages, RangeKind::Mmio2 { region }),
        };
        RamRangeSpec {
            first: self.first(prev_end, pages),
            pages,
            kind,
        }
    }
}

fn range_choice_s(regions: usize) -> impl Strategy<Value = RangeChoice> {
    let placement = (0u8..13, 1u64..16, 1u64..PAGE_SIZE);
    // Handles 0 (never valid) to one past the last region.
    let kind = (0u8..7, 0..=regions as u32 + 1, host_s(), any::<bool>());
    (pages_s(), placement, kind).prop_map(|(pages, (placement, gap, misalign), (kind, region, host, same_size))| {
        RangeChoice {
            pages,
            placement,
            gap,
            misalign,
            kind,
            region,
            host,
            same_size,
        }
    })
}

/// Up to four ranges, each placed relative to the one before it.
fn ranges_s(regions: Vec<Mmio2RegionSpec>) -> impl Strategy<Value = Vec<RamRangeSpec>> {
    proptest::collection::vec(range_choice_s(regions.len()), 0..5).prop_map(move |choices| {
        let mut prev_end = PAGE_SIZE;
        let mut ranges = Vec::new();
        for c in choices {
            let spec = c.spec(prev_end, &regions);
            prev_end = spec.first.wrapping_add(spec.pages as u64 * PAGE_SIZE);
            ranges.push(spec);
        }
        ranges
    })
}

fn region_pages(regions: &[Mmio2RegionSpec], region: Mmio2Handle) -> Option<u32> {
    regions.get((region.0 as usize).checked_sub(1)?).map(|r| r.pages)
}

fn zero_page_s() -> impl Strategy<Value = Hpa> {
    prop_oneof![
        6 => Just(Hpa(PAGE_SIZE)),
        1 => select(vec![Hpa(0x1001), Hpa(MAX_HOST_PHYS & !0xfff), Hpa(MAX_HOST_PHYS + 1), Hpa(u64::MAX)]),
    ]
}

fn layout_s() -> impl Strategy<Value = MemoryLayout> {
    (zero_page_s(), proptest::collection::vec(region_s(), 0..3)).prop_flat_map(|(zero_page, regions)| {
        ranges_s(regions.clone()).prop_map(move |ram_ranges| MemoryLayout {
            ram_ranges,
            mmio2_regions: regions.clone(),
            zero_page,
        })
    })
}

fn max_handlers_s() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => select(vec![0u32, 31, 32, 33, 47, 48, 6144, 65535, 65536, 65537, u32::MAX]),
        1 => any::<u32>(),
    ]
}

fn config(max_handlers: u32) -> ManagerConfig {
    ManagerConfig {
        max_handlers,
        ..ManagerConfig::default()
    }
}

/// Every answer of both sides for one layout and capacity; `Err` names the first
/// disagreement.
fn agree(layout: &MemoryLayout, max_handlers: u32) -> Result<(), TestCaseError> {
    let valid = layout.validate();
    prop_assert_eq!(valid, rules::validate_layout(layout), "validate");
    prop_assert_eq!(
        config(max_handlers).capacity(),
        rules::capacity(max_handlers),
        "capacity"
    );
    if valid.is_ok() && described_pages(layout) > MAX_BUILT_PAGES {
        return Ok(());
    }
    let mgr = Manager::new(layout.clone(), config(max_handlers), NoopPlatform);
    let model = Model::new(layout.clone(), config(max_handlers));
    prop_assert_eq!(mgr.as_ref().err(), model.as_ref().err(), "new");
    let (Ok(mgr), Ok(model)) = (mgr, model) else {
        return Ok(());
    };
    prop_assert_eq!(mgr.capacity(), model.capacity());
    for range in &layout.ram_ranges {
        let before = range.first.wrapping_sub(PAGE_SIZE);
        for page in (0..range.pages as u64)
            .map(|i| range.first + i * PAGE_SIZE)
            .chain([before, range.last() + 1])
        {
            prop_assert_eq!(mgr.page(page), model.page(page), "page {:#x}", page);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    /// Random, mostly slightly-wrong layouts and capacities: both sides agree on everything.
    #[test]
    fn production_and_model_agree_on_setup(layout in layout_s(), max_handlers in max_handlers_s()) {
        agree(&layout, max_handlers)?;
    }
}

/// The generator is only as good as what it reaches: every `LayoutError` variant, valid
/// layouts that get built, and both capacity answers, in a deterministic sample.
#[test]
fn generator_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..4096 {
        let layout = layout_s().new_tree(&mut runner).expect("strategy").current();
        let outcome = match layout.validate() {
            Ok(()) if described_pages(&layout) <= MAX_BUILT_PAGES => "built".to_string(),
            Ok(()) => "valid, too large to build".to_string(),
            Err(e) => variant(&e).to_string(),
        };
        seen.insert(outcome);
        let max_handlers = max_handlers_s().new_tree(&mut runner).expect("strategy").current();
        seen.insert(format!("capacity ok: {}", config(max_handlers).capacity().is_ok()));
    }
    let want = [
        "BeyondGuestSpace",
        "EmptyRange",
        "EmptyRegion",
        "Misaligned",
        "Overlap",
        "RangeBacking",
        "RegionBacking",
        "RegionMappedTwice",
        "RegionSize",
        "UnknownRegion",
        "ZeroPage",
        "built",
        "capacity ok: false",
        "capacity ok: true",
    ];
    for w in want {
        assert!(seen.contains(w), "the generator never produced {w}: {seen:?}");
    }
}

fn variant(e: &LayoutError) -> &'static str {
    match e {
        LayoutError::ZeroPage { .. } => "ZeroPage",
        LayoutError::EmptyRegion { .. } => "EmptyRegion",
        LayoutError::RegionBacking { .. } => "RegionBacking",
        LayoutError::EmptyRange { .. } => "EmptyRange",
        LayoutError::Misaligned { .. } => "Misaligned",
        LayoutError::BeyondGuestSpace { .. } => "BeyondGuestSpace",
        LayoutError::Overlap { .. } => "Overlap",
        LayoutError::RangeBacking { .. } => "RangeBacking",
        LayoutError::UnknownRegion { .. } => "UnknownRegion",
        LayoutError::RegionSize { .. } => "RegionSize",
        LayoutError::RegionMappedTwice { .. } => "RegionMappedTwice",
    }
}
