//! The simulator's invariants (`docs/semantics.md` §6), checked after every step: each is a
//! function named after the invariant, with the incremental variant (only what the step
//! touched) beside the full one.

mod differential;
mod nem;
mod setup;
mod sync;
mod translation;

use serde::{Deserialize, Serialize};

use crate::world::World;

pub use setup::setup_rules;

/// Which invariant failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// 1: a page's state is the maximum of its handlers' (or Disabled); not-in-HM matches.
    ForwardSync,
    /// 2: pages of handlers have a state; pages without handlers have none.
    ReverseSync,
    /// 3: per-handler counts, tree order, allocator balance.
    Accounting,
    /// 4: production and model agree on results, pages, handlers, events and accesses.
    Differential,
    /// 5: no cached translation grants more than the guest PTE and the page state allow.
    TranslationSafety,
    /// 5 (NEM): nested protections equal what the descriptors imply.
    NemSync,
    /// 6: the harvested dirty bitmap names exactly the pages written.
    DirtyTracking,
    /// Concurrent worlds: an access's outcome is explained by no state of its window.
    Linearizability,
    /// Concurrent worlds: a tracked page is clean but writable somewhere at a lock release,
    /// or the migration's destination differs from the source after the final harvest.
    DirtyLog,
    /// Concurrent worlds: a callback ran for a handler outside its access's window, or its
    /// call back into the manager for a vanished handler did not fail cleanly.
    Callback,
    /// Concurrent worlds: an operation returned holding the PGM lock (or released one it did
    /// not hold), or a callback of a type without keep-lock ran with the lock held.
    LockDiscipline,
    /// The world could not be built or the trace is malformed.
    Setup,
    /// Something panicked: a manager, the model or the simulator itself. No input may make
    /// the production manager panic, so this is always a bug worth a trace.
    Panic,
    /// A step did not end: a loop ran past its stated, asserted bound (deterministic: the
    /// panic carries [`pgmsim::LOOP_BOUND_EXCEEDED`]), or, as the last resort for loops
    /// outside the bounded ones, the step made no progress for `--step-timeout` seconds of
    /// wall clock (see `crate::run::watchdog`).
    Hang,
}

/// A failed invariant: the step, the invariant, and the differing values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Index of the step (0-based) after which the invariant failed.
    pub step: u64,
    /// The invariant.
    pub invariant: Invariant,
    /// Expected vs actual.
    pub detail: String,
}

impl Failure {
    /// A failure at `step`.
    pub fn new(step: u64, invariant: Invariant, detail: String) -> Failure {
        Failure {
            step,
            invariant,
            detail,
        }
    }

    /// A setup failure.
    pub fn setup(detail: String) -> Failure {
        Failure {
            step: 0,
            invariant: Invariant::Setup,
            detail,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step {}: invariant {:?} failed: {}",
            self.step, self.invariant, self.detail
        )
    }
}

/// How thoroughly to check after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    /// Only what the step touched, plus a full check every `full_check_every` steps.
    Incremental,
    /// Everything, every step.
    Full,
}

/// Runs the checks due after the current step.
pub fn after_step(world: &mut World, mode: CheckMode) -> Result<(), Failure> {
    let full = mode == CheckMode::Full
        || world.touched().all
        || (world.step() + 1).is_multiple_of(world.config().full_check_every.max(1) as u64);
    if full {
        return full_check(world);
    }
    crate::coverage::hooks::incremental_checks(world);
    let log = world.log_mut();
    log.touched.pages.sort_unstable();
    log.touched.pages.dedup();
    log.stats.invariant_checks += 4;
    differential::pages(world, false)?;
    if world.touched().manager {
        differential::handlers(world)?;
        sync::pages(world, false)?;
    }
    translation::check(world, false)?;
    nem::check(world, false)?;
    Ok(())
}

/// The checks of a quiescent point of a concurrent world: everything touched since the last
/// one, or everything when `full`.
pub fn quiescent(world: &mut World, full: bool) -> Result<(), Failure> {
    if full || world.touched().all {
        full_check(world)?;
    } else {
        crate::coverage::hooks::quiescent_checks(world);
        let log = world.log_mut();
        log.touched.pages.sort_unstable();
        log.touched.pages.dedup();
        log.stats.invariant_checks += 5;
        differential::pages(world, false)?;
        differential::handlers(world)?;
        sync::pages(world, false)?;
        translation::check(world, false)?;
        nem::check(world, false)?;
    }
    world.log_mut().touched.clear();
    Ok(())
}

/// Checks every invariant over the whole world.
pub fn full_check(world: &mut World) -> Result<(), Failure> {
    crate::coverage::hooks::full_checks(world);
    let log = world.log_mut();
    log.stats.full_checks += 1;
    log.stats.invariant_checks += 5;
    sync::production_check_sync(world)?;
    differential::pages(world, true)?;
    differential::handlers(world)?;
    sync::pages(world, true)?;
    translation::check(world, true)?;
    nem::check(world, true)?;
    Ok(())
}
