//! The fuzz targets' logic, one module per target, in the library so `cargo test` replays
//! every committed input through exactly the function libFuzzer runs, and `pgmsim replay
//! --fuzz` turns an `ops_differential` input into a trace.
//!
//! * [`ops_differential`](mod@ops_differential): the simulator's step loop driven by fuzzer
//!   bytes, production and model side by side, every step checked.
//! * [`ops_concurrent`](mod@ops_concurrent): a small concurrent world whose configuration,
//!   operations and schedule all come from fuzzer bytes, every concurrent oracle on.
//! * [`api_robustness`](mod@api_robustness): the shared call vocabulary with unconstrained
//!   arguments on the production manager alone.
//! * [`trace_decode`](mod@trace_decode): arbitrary bytes as a trace file.

pub mod api_robustness;
pub mod ops_concurrent;
pub mod ops_differential;
pub mod trace_decode;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::thread::LocalKey;

pub use api_robustness::api_robustness;
pub use ops_concurrent::{ops_concurrent, ops_concurrent_report, ops_concurrent_trace};
pub use ops_differential::{ops_differential, ops_differential_report, ops_differential_trace};
pub use trace_decode::trace_decode;

use crate::check::Failure;
use crate::config::SimConfig;
use crate::world::World;

/// Worlds kept ready to clone per target (a fuzz world takes about 26 KiB); past this many,
/// the cache starts afresh. A campaign's inputs descend from few configuration prefixes, so
/// this many means a world is almost never built twice.
const CACHED_WORLDS: usize = 1024;

/// A target's worlds built so far, by configuration seed (one per fuzzing thread).
pub(crate) type WorldCache = RefCell<BTreeMap<u64, World>>;

/// A fresh copy of the world of configuration seed `seed` from `cache`: a clone of the one
/// `config` drew and [`World::new`] built the first time, its coverage counters off (only
/// the report path's runs report coverage).
pub(crate) fn cached_world(
    cache: &'static LocalKey<WorldCache>,
    seed: u64,
    config: fn(u64) -> SimConfig,
) -> Result<World, Failure> {
    cache.with(|cell| {
        let mut worlds = cell.borrow_mut();
        if let Some(w) = worlds.get(&seed) {
            return Ok(w.clone());
        }
        let mut w = World::new(config(seed))?;
        w.log_mut().coverage_off = true;
        if worlds.len() >= CACHED_WORLDS {
            worlds.clear();
        }
        worlds.insert(seed, w.clone());
        Ok(w)
    })
}

/// Cuts every range and region of a drawn layout in place: the first range to `first_pages`
/// pages, every other range and every MMIO2 region to `other_pages`. Ranges keep their start
/// (so they stay ordered and apart) and regions their backing; a mapped region and its range
/// shrink together, so the layout stays valid.
pub fn shrink_layout(layout: &mut pgmsim::MemoryLayout, first_pages: u32, other_pages: u32) {
    for region in &mut layout.mmio2_regions {
        region.pages = region.pages.min(other_pages);
    }
    let regions = layout.mmio2_regions.clone();
    for (i, range) in layout.ram_ranges.iter_mut().enumerate() {
        range.pages = match range.kind {
            pgmsim::RangeKind::Mmio2 { region } => (region.0 as usize)
                .checked_sub(1)
                .and_then(|i| regions.get(i))
                .map_or(range.pages, |r| r.pages),
            _ if i == 0 => range.pages.min(first_pages),
            _ => range.pages.min(other_pages),
        };
    }
}
