//! `ops_differential`: the simulator's step loop (`pgmsim run`) driven by fuzzer bytes. The
//! first eight bytes pick a swarm world (as a seed would), then every two bytes are one draw
//! of the generator (eight for a wide value); each step is checked incrementally, as `pgmsim
//! run` checks it, and the input ends with a full check.
//!
//! Speed is what makes a fuzzer find things, so the fuzzing path does per input only what the
//! oracle needs: it builds each world once and runs every input on a clone of it, and it
//! keeps no trace. The report path ([`ops_differential_report`], [`ops_differential_trace`])
//! runs the same input through `run_entropy` in a freshly built world; a test proves the two
//! agree on every committed input.

use super::{cached_world, shrink_layout, WorldCache};
use crate::check::{self, CheckMode, Failure};
use crate::conc::config::ConcurrencyOverrides;
use crate::config::{Overrides, SimConfig};
use crate::gen::{next_op, Entropy};
use crate::run::{run_entropy, RunReport};
use crate::trace::Trace;
use crate::world::World;

/// Most steps an input can drive.
pub const MAX_FUZZ_STEPS: usize = 256;
/// Input bytes per step: eight generator draws of two bytes (a step with a wide value uses
/// a few more; steps are counted by this size, not by what they read).
pub const BYTES_PER_STEP: usize = 16;
/// Bytes that pick the world.
pub const CONFIG_BYTES: usize = 8;
/// The shape of a fuzz world: the swarm configuration a seed draws, cut down so building it,
/// checking every step and the final full check stay cheap (an input is a few dozen steps).
/// Smaller also means denser: handlers, edges and mappings collide more often.
pub mod caps {
    /// vCPUs.
    pub const VCPUS: u8 = 2;
    /// TLB sets per vCPU.
    pub const TLB_SETS: u16 = 4;
    /// Pages in the virtual window.
    pub const VA_PAGES: u32 = 32;
    /// Pages of the first RAM range (the page-table pool takes 24 of them).
    pub const MAIN_RAM_PAGES: u32 = 48;
    /// Pages of any other range and of any MMIO2 region.
    pub const RANGE_PAGES: u32 = 16;
}
/// Fuzzer bytes as an entropy source: two bytes per draw (little-endian), so most bytes steer
/// a decision, and eight for a wide value (a user argument, a value written), so its high
/// bits can be set; a missing byte reads as zero, so a used-up input draws zeros.
pub struct ByteEntropy<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteEntropy<'a> {
    /// Wraps fuzzer bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteEntropy { bytes }
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl ByteEntropy<'_> {
    /// The next `n` bytes as a little-endian number (missing bytes read as zero).
    fn take(&mut self, n: usize) -> u64 {
        let (draw, rest) = self.bytes.split_at(self.bytes.len().min(n));
        self.bytes = rest;
        draw.iter().rev().fold(0, |v, &b| (v << 8) | b as u64)
    }
}

impl Entropy for ByteEntropy<'_> {
    fn next_u64(&mut self) -> u64 {
        self.take(2)
    }

    /// Eight bytes: a user argument or a written value with all 64 bits.
    fn next_wide(&mut self) -> u64 {
        self.take(8)
    }
}

/// The configuration seed in an input's first eight bytes (missing bytes read as zero).
pub fn config_seed(bytes: &[u8]) -> u64 {
    let mut seed = [0u8; CONFIG_BYTES];
    let n = bytes.len().min(CONFIG_BYTES);
    seed[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(seed)
}

/// The world of configuration seed `seed`: the swarm configuration that seed draws, made
/// small enough to fuzz fast (an input is a few dozen steps, so building the world and the
/// final full check must stay cheap).
pub fn fuzz_config(seed: u64) -> SimConfig {
    // Sequential worlds: the fuzzer drives one step loop (concurrent schedules are not fuzzed).
    let ov = Overrides {
        full_check_every: Some(u32::MAX),
        concurrency: ConcurrencyOverrides {
            enabled: Some(false),
            ..ConcurrencyOverrides::default()
        },
        ..Overrides::default()
    };
    let mut config = SimConfig::from_seed(seed, &ov);
    config.vcpus = config.vcpus.min(caps::VCPUS);
    config.tlb_sets = config.tlb_sets.min(caps::TLB_SETS);
    config.va_pages = config.va_pages.min(caps::VA_PAGES);
    shrink_layout(&mut config.layout, caps::MAIN_RAM_PAGES, caps::RANGE_PAGES);
    // Half the fuzz worlds start with a nearly full handler table, as half the concurrent
    // worlds of a sweep do: an input is 64 steps, and the next-fit allocator hands a freed
    // slot back only after 31 or more other creates, so without boot nodes no input could
    // reuse a slot (an ABA on a handler id).
    config.boot_nodes = config.draw_boot_nodes(seed);
    config
}

/// Steps an input drives: one per [`BYTES_PER_STEP`] bytes after the configuration, at least
/// one, at most [`MAX_FUZZ_STEPS`].
pub fn steps_of(bytes: &[u8]) -> usize {
    (bytes.len().saturating_sub(CONFIG_BYTES) / BYTES_PER_STEP).clamp(1, MAX_FUZZ_STEPS)
}

thread_local! {
    /// Worlds built so far, by configuration seed.
    static WORLDS: WorldCache = const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// A fresh copy of the world of `seed`: a clone of the one built the first time.
fn world_of(seed: u64) -> Result<World, Failure> {
    cached_world(&WORLDS, seed, fuzz_config)
}

/// Runs an input on the fuzzing path: a clone of its world, [`steps_of`] generated steps, each
/// checked incrementally, then a full check. `Err` is the first broken invariant;
/// a panic (in the simulator, the model or the production manager) propagates.
pub fn ops_differential(bytes: &[u8]) -> Result<(), Failure> {
    let mut world = world_of(config_seed(bytes))?;
    run_steps(&mut world, bytes)
}

/// The steps of an input in `world`, then the final full check.
fn run_steps(world: &mut World, bytes: &[u8]) -> Result<(), Failure> {
    let mut e = ByteEntropy::new(bytes.get(CONFIG_BYTES..).unwrap_or(&[]));
    for _ in 0..steps_of(bytes) {
        let op = next_op(world, &mut e);
        world.apply(&op, CheckMode::Incremental)?;
    }
    check::full_check(world)
}

/// Runs an input on the report path: a freshly built world through `run_entropy`, with every
/// operation recorded (panics become failures).
pub fn ops_differential_report(bytes: &[u8]) -> RunReport {
    let config = fuzz_config(config_seed(bytes));
    let mut e = ByteEntropy::new(bytes.get(CONFIG_BYTES..).unwrap_or(&[]));
    run_entropy(config, steps_of(bytes), &mut e)
}

/// The trace of an input (`pgmsim replay --fuzz`).
pub fn ops_differential_trace(bytes: &[u8]) -> Trace {
    let mut t = ops_differential_report(bytes).trace();
    t.check = CheckMode::Incremental;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_worlds_are_small_and_valid() {
        let mut boot_worlds = 0;
        for seed in 0..256 {
            let c = fuzz_config(seed);
            boot_worlds += usize::from(c.boot_nodes > 0);
            c.validate().expect("a fuzz world is a valid configuration");
            assert!(c.layout.ram_ranges[0].pages <= caps::MAIN_RAM_PAGES);
            assert!(c.layout.ram_ranges[1..].iter().all(|r| r.pages <= caps::RANGE_PAGES));
            assert!(c.vcpus <= caps::VCPUS && c.va_pages <= caps::VA_PAGES);
            assert!(c.concurrency.is_none(), "fuzz worlds are sequential");
            World::new(c).expect("every fuzz world builds");
        }
        assert!(
            (64..192).contains(&boot_worlds),
            "{boot_worlds} of 256 fuzz worlds boot nearly full"
        );
    }

    #[test]
    fn draws_are_little_endian_pairs_then_zeros() {
        let mut e = ByteEntropy::new(&[0x34, 0x12, 0x78]);
        assert_eq!(e.next_u64(), 0x1234);
        assert_eq!(e.next_u64(), 0x78);
        assert!(e.is_empty());
        assert_eq!(e.next_u64(), 0);
    }

    /// A wide draw reads eight bytes, so a user argument from fuzzer bytes can have its high
    /// bits set (two bytes could never show a slip that truncates it to 32 bits).
    #[test]
    fn wide_draws_read_eight_bytes() {
        let bytes = [0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0xaa];
        let mut e = ByteEntropy::new(&bytes);
        assert_eq!(e.next_wide(), 0x0102_0304_0506_0708);
        assert_eq!(e.next_wide(), 0xaa);
        assert_eq!(
            crate::gen::Draw::new(&mut ByteEntropy::new(&[0xff; 8])).bits(),
            u64::MAX
        );
    }

    #[test]
    fn steps_follow_the_input_length() {
        assert_eq!(steps_of(&[]), 1);
        assert_eq!(steps_of(&[0; CONFIG_BYTES + 64 * BYTES_PER_STEP]), 64);
        assert_eq!(steps_of(&[0; 100_000]), MAX_FUZZ_STEPS);
    }

    /// A cloned world runs exactly as a freshly built one: the fuzzing path and the report
    /// path take the same steps to the same end.
    #[test]
    fn a_cloned_world_is_the_same_world() {
        for seed in [1u64, 7, 12, 99] {
            let mut bytes = seed.to_le_bytes().to_vec();
            bytes.extend((0..64 * BYTES_PER_STEP).map(|i| (i * 37 + seed as usize) as u8));
            let report = ops_differential_report(&bytes);
            // Twice: the first clone comes from the world just built, the second from the cache.
            for _ in 0..2 {
                let mut world = world_of(seed).expect("the world builds");
                let r = run_steps(&mut world, &bytes);
                assert_eq!(r.err(), report.failure, "seed {seed}");
                // Every counter alike (the report path also notes that it ran one thread, and
                // only it feeds the coverage counters).
                let mut stats = world.stats().clone();
                stats.threads = report.stats.threads;
                stats.coverage = report.stats.coverage.clone();
                assert_eq!(stats, report.stats, "seed {seed}");
                assert_eq!(world.step() as usize, report.ops.len(), "seed {seed}");
            }
        }
    }
}
