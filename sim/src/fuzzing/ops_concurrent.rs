//! `ops_concurrent`: a small concurrent world (vCPU and device threads stepped in one OS
//! thread, `docs/semantics.md` §7) whose configuration, operations and schedule all come
//! from fuzzer bytes, so coverage guides the search for interleavings as well as for
//! workloads.
//!
//! An input of `n` operations is laid out as
//!
//! ```text
//! [ 8: configuration seed ][ n x 16: operation draws ][ n x 16: schedule ]
//! ```
//!
//! The seed picks a swarm world, forced concurrent and cut down (2–3 vCPUs, 1–2 device
//! threads, a quiescent point every 4, 8 or 16 operations). The operation draws feed the
//! generator (two bytes a draw, as in `ops_differential`) whenever a thread needs its next
//! operation. The schedule bytes drive a [`ByteSchedule`]: one byte per decision that has a
//! real choice, zero (and every decision once the bytes run out) the default, the thread
//! that moved last going on. Every oracle of the concurrent world is on: the checks at each
//! quiescent point (the full check at the last), linearizability of every access, lock
//! discipline and KVM's dirty-logging rule at every lock release, the migration copy.
//!
//! The fuzzing path runs each input on a clone of a cached world and keeps no trace; the
//! report path ([`ops_concurrent_report`], [`ops_concurrent_trace`]) runs it in a freshly
//! built world through the simulator's concurrent run, recording the operations, their
//! threads and every decision, so the trace replays exactly (`pgmsim replay`, `pgmsim
//! shrink`). A test proves the two paths agree on every committed input.

use super::ops_differential::{caps, config_seed, ByteEntropy, CONFIG_BYTES};
use super::{cached_world, shrink_layout, WorldCache};
use crate::check::{CheckMode, Failure};
use crate::conc::bytes::ByteSchedule;
use crate::conc::config::ConcurrencyOverrides;
use crate::conc::exec::{Exec, Recorded, Source};
use crate::conc::sched::Scheduler;
use crate::conc::SchedulerKind;
use crate::config::{Overrides, SimConfig};
use crate::run::{run_entropy_scheduled, RunReport};
use crate::trace::Trace;
use crate::world::World;

/// Most operations an input can drive (the world is drained and fully checked at the end,
/// so a longer input is mostly a slower one).
pub const MAX_OPS: usize = 32;
/// Operation-draw bytes per operation: eight generator draws.
pub const OP_BYTES: usize = 16;
/// Schedule bytes per operation.
pub const SCHEDULE_BYTES: usize = 16;
/// Input bytes per operation.
pub const BYTES_PER_OP: usize = OP_BYTES + SCHEDULE_BYTES;
/// Most vCPUs of a fuzz world (at least two: a concurrent world has them).
pub const MAX_VCPUS: u8 = 3;

/// Operations an input drives: one per [`BYTES_PER_OP`] bytes after the configuration, at
/// least one, at most [`MAX_OPS`].
pub fn ops_of(bytes: &[u8]) -> usize {
    (bytes.len().saturating_sub(CONFIG_BYTES) / BYTES_PER_OP).clamp(1, MAX_OPS)
}

/// An input's three parts: the configuration seed, the operation draws and the schedule
/// (each part may be short, or empty: missing bytes read as zeros and the default).
pub fn split(bytes: &[u8]) -> (u64, &[u8], &[u8]) {
    let rest = bytes.get(CONFIG_BYTES..).unwrap_or(&[]);
    let (ops, schedule) = rest.split_at(rest.len().min(ops_of(bytes) * OP_BYTES));
    (config_seed(bytes), ops, schedule)
}

/// The concurrent world of configuration seed `seed`: the swarm world that seed draws,
/// forced concurrent, cut down as `ops_differential`'s worlds are, with at most
/// [`MAX_VCPUS`] vCPUs and quiescent points every 4, 8 or 16 operations (so an input of a
/// few dozen operations meets several). The configured scheduler is never asked (the
/// input's bytes schedule); it is set to random so no PCT quota splits the operations.
pub fn concurrent_config(seed: u64) -> SimConfig {
    let ov = Overrides {
        full_check_every: Some(u32::MAX),
        concurrency: ConcurrencyOverrides {
            enabled: Some(true),
            scheduler: Some(SchedulerKind::Random),
            ..ConcurrencyOverrides::default()
        },
        ..Overrides::default()
    };
    let mut config = SimConfig::from_seed(seed, &ov);
    config.vcpus = config.vcpus.clamp(2, MAX_VCPUS);
    config.tlb_sets = config.tlb_sets.min(caps::TLB_SETS);
    config.va_pages = config.va_pages.min(caps::VA_PAGES);
    shrink_layout(&mut config.layout, caps::MAIN_RAM_PAGES, caps::RANGE_PAGES);
    if let Some(c) = config.concurrency.as_mut() {
        c.quiesce_every = [4, 8, 16][(seed % 3) as usize];
    }
    config
}

thread_local! {
    /// Worlds built so far, by configuration seed (sequential until a run makes them
    /// concurrent, which the executor does on the clone).
    static WORLDS: WorldCache = const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// The scheduler of an input: its schedule bytes, then the default.
fn schedule_of(schedule: &[u8]) -> Scheduler {
    Scheduler::Bytes(ByteSchedule::new(schedule))
}

/// Runs an input on the fuzzing path: a clone of its world, [`ops_of`] operations under the
/// input's schedule, every oracle on. `Err` is the first broken invariant; a panic (in the
/// executor, the simulator, the model or the production manager) propagates.
pub fn ops_concurrent(bytes: &[u8]) -> Result<(), Failure> {
    let (seed, ops, schedule) = split(bytes);
    let mut world = cached_world(&WORLDS, seed, concurrent_config)?;
    run_on(&mut world, bytes, ops, schedule)
}

/// The operations of an input in `world` (a clone of its cached world).
fn run_on(world: &mut World, bytes: &[u8], ops: &[u8], schedule: &[u8]) -> Result<(), Failure> {
    let mut e = ByteEntropy::new(ops);
    let recorded = Recorded {
        schedule: schedule_of(schedule),
        quiesce: None,
    };
    let source = Source::Generated(&mut e);
    let mut ex = Exec::new(world, source, ops_of(bytes), CheckMode::Incremental, Some(recorded));
    ex.run(world)
}

/// Runs an input on the report path: a freshly built world through the simulator's
/// concurrent run, every operation, its thread and every decision recorded (panics become
/// failures).
pub fn ops_concurrent_report(bytes: &[u8]) -> RunReport {
    let (seed, ops, schedule) = split(bytes);
    let mut e = ByteEntropy::new(ops);
    run_entropy_scheduled(concurrent_config(seed), ops_of(bytes), &mut e, schedule_of(schedule))
}

/// The trace of an input: it replays exactly (its recorded schedule) under `pgmsim replay`.
pub fn ops_concurrent_trace(bytes: &[u8]) -> Trace {
    let mut t = ops_concurrent_report(bytes).trace();
    t.check = CheckMode::Incremental;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_worlds_are_small_concurrent_and_valid() {
        for seed in 0..128 {
            let c = concurrent_config(seed);
            c.validate().expect("a fuzz world is a valid configuration");
            assert!((2..=MAX_VCPUS).contains(&c.vcpus) && c.va_pages <= caps::VA_PAGES);
            let conc = c.concurrency.expect("fuzz worlds are concurrent");
            assert!([4, 8, 16].contains(&conc.quiesce_every));
            World::new(c).expect("every fuzz world builds");
        }
    }

    #[test]
    fn an_input_splits_into_seed_operations_and_schedule() {
        let mut bytes = 5u64.to_le_bytes().to_vec();
        bytes.extend([1u8; 2 * OP_BYTES]);
        bytes.extend([2u8; 2 * SCHEDULE_BYTES + 3]);
        let (seed, ops, schedule) = split(&bytes);
        assert_eq!((seed, ops_of(&bytes)), (5, 2));
        assert_eq!(ops, &[1u8; 2 * OP_BYTES][..]);
        assert_eq!(schedule, &[2u8; 2 * SCHEDULE_BYTES + 3][..]);
        // Short inputs: everything read is operations, the schedule is the default.
        let (_, ops, schedule) = split(&[0; CONFIG_BYTES + 5]);
        assert_eq!((ops.len(), schedule.len()), (5, 0));
        assert_eq!(split(&[]).1.len(), 0);
    }

    /// An input of `ops` operations whose bytes are a fixed pattern of `salt`.
    fn input(seed: u64, ops: usize, salt: usize) -> Vec<u8> {
        let mut bytes = seed.to_le_bytes().to_vec();
        bytes.extend((0..ops * BYTES_PER_OP).map(|i| (i * 37 + salt * 11) as u8));
        bytes
    }

    /// A cloned world runs exactly as a freshly built one, and the schedule bytes matter:
    /// the same operations under other bytes take other decisions.
    #[test]
    fn the_fuzzing_path_and_the_report_path_agree() {
        for seed in [1u64, 7, 12, 99] {
            let bytes = input(seed, MAX_OPS, seed as usize);
            let report = ops_concurrent_report(&bytes);
            assert!(report.failure.is_none(), "seed {seed}: {:?}", report.failure);
            assert!(
                report.threads.iter().any(|&t| t != report.threads[0]),
                "seed {seed}: one thread"
            );
            for _ in 0..2 {
                assert_eq!(ops_concurrent(&bytes).err(), report.failure, "seed {seed}");
            }
            let mut other = bytes.clone();
            let at = CONFIG_BYTES + MAX_OPS * OP_BYTES;
            other[at..].iter_mut().for_each(|b| *b = b.wrapping_add(1));
            assert_ne!(ops_concurrent_report(&other).schedule, report.schedule, "seed {seed}");
        }
    }

    /// The trace of an input replays to the same operations, threads and hash.
    #[test]
    fn the_trace_replays_exactly() {
        for seed in [3u64, 21] {
            let bytes = input(seed, 16, 5);
            let run = ops_concurrent_report(&bytes);
            let trace = ops_concurrent_trace(&bytes);
            let again = crate::run::replay(&trace, trace.check);
            assert_eq!(again.failure, run.failure, "seed {seed}");
            assert_eq!((again.ops, again.threads), (run.ops, run.threads), "seed {seed}");
            assert_eq!(again.trace_hash, run.trace_hash, "seed {seed}");
        }
    }
}
