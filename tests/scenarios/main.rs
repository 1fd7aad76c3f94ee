//! The seed's trickiest paths, each written once: shared sub-page pages and only-upgrade,
//! temp-off and re-arm, MMIO aliasing and its undoing, the dirty bitmap, registration and
//! node lifecycle failures, allocator exhaustion, NEM notifications, and the page-map
//! rendering.
//!
//! Every scenario runs the production manager and the reference model in lock-step
//! ([`harness::Scenario`]: outcome, events, pages, handlers, live count and `check_sync`
//! agree after every call, and every failed call is proven to change nothing), checks the
//! values the seed itself dictates explicitly (so agreement on a wrong answer does not pass
//! either), and, where the scenario is a reviewed transition table, snapshots the table into
//! the top-level `snapshots/` folder. A scenario that once lived in several suites keeps
//! every assertion any of its copies had; where a copy checked NEM notifications the
//! scenario also runs with NEM on, and where a copy checked steps the snapshot does not show,
//! they follow the snapshot.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod alias;
mod dirty;
mod lifecycle;
mod nem;
mod sub_page;
mod temp_off;

use pgmsim::{MemoryLayout, Mmio2Handle};

/// One page.
const K: u64 = 0x1000;

/// RAM at 0 with `pages` pages.
fn ram(pages: u32) -> MemoryLayout {
    MemoryLayout::builder().ram(0, pages).build().unwrap()
}

/// RAM 0x0 (8 pages), MMIO 0x10000 (8 pages), an unmapped MMIO2 region #1 of 4 pages.
fn alias_world() -> (MemoryLayout, Mmio2Handle) {
    let (b, region) = MemoryLayout::builder().ram(0, 8).mmio(0x10000, 8).mmio2_region(4);
    (b.build().unwrap(), region)
}

/// Where [`dirty_world`] maps its MMIO2 region: above 4 GiB.
const MMIO2_BASE: u64 = 0x1_0000_0000;

/// RAM 0x0 (4 pages) and a `pages`-page MMIO2 region #1 mapped at [`MMIO2_BASE`].
fn dirty_world(pages: u32) -> MemoryLayout {
    let (b, region) = MemoryLayout::builder().ram(0, 4).mmio2_region(pages);
    b.map_mmio2(region, MMIO2_BASE).build().unwrap()
}
