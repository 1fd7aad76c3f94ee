//! Building a manager: every way a layout can be wrong is refused by `Manager::new` with the
//! exact `LayoutError` variant, whose text names the range or region index; the handler
//! capacity is validated and rounded up to whole 16-node chunks.
//!
//! Each layout mistake is made in a range or region past the first, so the index the error
//! names is the one that is wrong, not merely the first one checked.

use pgmsim::layout::MAX_GUEST_PHYS;
use pgmsim::page::MAX_HOST_PHYS;
use pgmsim::{
    Hpa, LayoutError, Manager, ManagerConfig, MemoryLayout, Mmio2Handle, NoopPlatform, RangeKind, SetupError,
};

/// A valid layout: `ram_ranges` = [RAM at 0 (4 pages), MMIO at 0x10000 (2 pages), MMIO2
/// region #1 at 0x20000 (2 pages)]; `mmio2_regions` = [#1: 2 pages, #2: 3 pages, unmapped].
fn base() -> MemoryLayout {
    let (b, r1) = MemoryLayout::builder().ram(0, 4).mmio(0x10000, 2).mmio2_region(2);
    let (b, _r2) = b.mmio2_region(3);
    b.map_mmio2(r1, 0x20000).build().expect("the base layout is valid")
}

/// `layout` is refused by validation and by `Manager::new` with exactly `want`, whose text
/// is `text`.
fn refused(layout: MemoryLayout, want: LayoutError, text: &str) {
    assert_eq!(layout.validate(), Err(want));
    let err = Manager::new(layout, ManagerConfig::default(), NoopPlatform).err();
    assert_eq!(err, Some(SetupError::Layout(want)));
    assert_eq!(want.to_string(), text);
    assert_eq!(err.map(|e| e.to_string()), Some(format!("bad layout: {text}")));
}

#[test]
fn base_layout_builds() {
    let m = Manager::new(base(), ManagerConfig::default(), NoopPlatform).expect("valid");
    assert_eq!(m.capacity(), 6144);
}

#[test]
fn zero_page_misaligned() {
    let mut l = base();
    l.zero_page = Hpa(0x1001);
    let text = "zero_page 0x1001 must be page aligned and at most 0xffffffffffff";
    refused(l, LayoutError::ZeroPage { zero_page: Hpa(0x1001) }, text);
}

#[test]
fn empty_region() {
    let mut l = base();
    l.mmio2_regions[1].pages = 0;
    refused(
        l,
        LayoutError::EmptyRegion { index: 1 },
        "mmio2_regions[1]: pages must be at least 1",
    );
}

#[test]
fn region_backing_past_the_host_limit() {
    let mut l = base();
    let host_base = Hpa(MAX_HOST_PHYS + 1 - 0x2000); // 2 pages fit, the region has 3
    l.mmio2_regions[1].host_base = host_base;
    let text = "mmio2_regions[1]: host_base 0xffffffffe000 must be page aligned and the backing must end at or below \
                0xffffffffffff";
    refused(l, LayoutError::RegionBacking { index: 1, host_base }, text);
}

#[test]
fn empty_range() {
    let mut l = base();
    l.ram_ranges[1].pages = 0;
    refused(
        l,
        LayoutError::EmptyRange { index: 1 },
        "ram_ranges[1]: pages must be at least 1",
    );
}

#[test]
fn range_misaligned() {
    let mut l = base();
    l.ram_ranges[1].first = 0x10800;
    let text = "ram_ranges[1]: first 0x10800 must be page aligned";
    refused(
        l,
        LayoutError::Misaligned {
            index: 1,
            first: 0x10800,
        },
        text,
    );
}

#[test]
fn range_beyond_guest_space() {
    let mut l = base();
    let first = MAX_GUEST_PHYS + 1 - 0x1000; // one page fits, the range has 2
    l.ram_ranges[2].first = first;
    let text = "ram_ranges[2]: the range must end at or below 0xfffffffffffff (first 0xffffffffff000, 2 pages)";
    refused(
        l,
        LayoutError::BeyondGuestSpace {
            index: 2,
            first,
            pages: 2,
        },
        text,
    );
}

#[test]
fn ranges_overlap() {
    let mut l = base();
    l.ram_ranges[1].first = 0x3000;
    let text = "ram_ranges[1]: first 0x3000 must be above the previous range's last byte 0x3fff";
    refused(
        l,
        LayoutError::Overlap {
            index: 1,
            first: 0x3000,
            prev_last: 0x3fff,
        },
        text,
    );
}

#[test]
fn range_backing_misaligned() {
    let mut l = base();
    let host_base = Hpa(0x1234);
    l.ram_ranges[1].kind = RangeKind::Ram { host_base };
    let text = "ram_ranges[1]: host_base 0x1234 must be page aligned and the backing must end at or below \
                0xffffffffffff";
    refused(l, LayoutError::RangeBacking { index: 1, host_base }, text);
}

#[test]
fn unknown_region() {
    let mut l = base();
    let region = Mmio2Handle(3);
    l.ram_ranges[2].kind = RangeKind::Mmio2 { region };
    let text = "ram_ranges[2]: MMIO2 region 3 does not exist (handles are 1-based)";
    refused(l, LayoutError::UnknownRegion { index: 2, region }, text);
}

#[test]
fn region_size_differs() {
    let mut l = base();
    l.ram_ranges[2].pages = 3;
    let want = LayoutError::RegionSize {
        index: 2,
        region: Mmio2Handle(1),
        range_pages: 3,
        region_pages: 2,
    };
    refused(l, want, "ram_ranges[2]: maps MMIO2 region 1 of 2 pages with 3 pages");
}

#[test]
fn region_mapped_twice() {
    let mut l = base();
    l.ram_ranges[1].kind = RangeKind::Mmio2 { region: Mmio2Handle(1) };
    let text = "ram_ranges[2]: MMIO2 region 1 is already mapped by an earlier range";
    refused(
        l,
        LayoutError::RegionMappedTwice {
            index: 2,
            region: Mmio2Handle(1),
        },
        text,
    );
}

#[test]
fn capacity_is_validated_and_rounded_up_to_16() {
    let cfg = |max_handlers| ManagerConfig {
        max_handlers,
        ..ManagerConfig::default()
    };
    for (n, cap) in [
        (32, 32),
        (33, 48),
        (47, 48),
        (48, 48),
        (6144, 6144),
        (65521, 65536),
        (65536, 65536),
    ] {
        assert_eq!(cfg(n).capacity(), Ok(cap));
        let m = Manager::new(base(), cfg(n), NoopPlatform).expect("valid capacity");
        assert_eq!(m.capacity(), cap, "max_handlers {n}");
    }
    for n in [0, 31, 65537, u32::MAX] {
        let want = SetupError::Capacity { max_handlers: n };
        assert_eq!(cfg(n).capacity(), Err(want));
        assert_eq!(Manager::new(base(), cfg(n), NoopPlatform).err(), Some(want));
        assert_eq!(want.to_string(), format!("max_handlers {n} must be in 32..=65536"));
    }
    // A bad layout is reported before a bad capacity.
    let mut l = base();
    l.ram_ranges[1].pages = 0;
    let err = Manager::new(l, cfg(0), NoopPlatform).err();
    assert_eq!(err, Some(SetupError::Layout(LayoutError::EmptyRange { index: 1 })));
}
