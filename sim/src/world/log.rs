//! The step log: which step this is, what it touched, and the counters a run reports.

use std::collections::BTreeMap;

use pgmsim::PlatformEvent;
use serde::Serialize;

use super::touched::Touched;
use crate::coverage::{Coverage, PagesBefore};

/// Counters reported by `pgmsim run --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Steps applied, per operation kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// Failed manager operations, per error kind (identical on both sides by construction).
    pub errors: BTreeMap<&'static str, u64>,
    /// Guest accesses.
    pub accesses: u64,
    /// Handler callbacks invoked.
    pub handler_calls: u64,
    /// Accesses the guest's own tables refused.
    pub guest_faults: u64,
    /// Accesses served by a TLB entry.
    pub tlb_hits: u64,
    /// TLB misses (each access may miss more than once while it is resolved).
    pub tlb_misses: u64,
    /// Shadow PTEs synced on faults (NEM: combined translations filled).
    pub shadow_syncs: u64,
    /// Invariant checks performed (one per invariant per step, or per full pass).
    pub invariant_checks: u64,
    /// Full checks performed.
    pub full_checks: u64,
    /// Threads (1 for a sequential world: every step atomic).
    pub threads: u64,
    /// Scheduling decisions that switched away from a thread that could go on.
    pub preemptions: u64,
    /// PGM lock acquisitions (outermost).
    pub lock_acquisitions: u64,
    /// TLB shootdowns requested.
    pub shootdowns: u64,
    /// Access outcomes judged against the model's predictions over their windows.
    pub linearization_checks: u64,
    /// What the run exercised (printed and put in `--json` by the command line, not part of
    /// the summary snapshots).
    #[serde(skip)]
    pub coverage: Coverage,
}

impl Stats {
    /// Adds a concurrent world's counters.
    pub fn merge_concurrency(&mut self, world: &crate::world::World, linearization_checks: u64) {
        let c = world.config().concurrency.map_or(0, |c| c.devices as u64);
        self.threads = world.vcpus() as u64 + c;
        if let Some(hw) = world.machine().hw() {
            self.preemptions = hw.stats.preemptions;
            self.lock_acquisitions = hw.stats.lock_acquisitions;
            self.shootdowns = hw.stats.shootdowns;
            self.tlb_hits += hw.stats.tlb_hits;
            self.tlb_misses += hw.stats.tlb_misses;
        }
        self.linearization_checks = linearization_checks;
    }
}

/// Per-step bookkeeping and the run's counters.
#[derive(Debug, Clone, Default)]
pub struct StepLog {
    /// Counters.
    pub stats: Stats,
    /// What the current step touched.
    pub touched: Touched,
    /// Index of the step being applied.
    pub step: u64,
    /// Descriptors of the pages the step's calls may change, from before the calls.
    pub before: PagesBefore,
    /// Every production platform event of the step, when recording (step logs, reports).
    pub events: Option<Vec<PlatformEvent>>,
    /// The coverage counters are not fed (the fuzzing paths: nobody reads them there, and
    /// classifying a register call's placement or a step's page transitions costs a walk
    /// over the handlers or the touched pages).
    pub coverage_off: bool,
}

impl StepLog {
    /// Starts step `self.step` of kind `name`.
    pub fn begin(&mut self, name: &'static str) {
        self.touched.clear();
        self.before.clear();
        if let Some(events) = &mut self.events {
            events.clear();
        }
        *self.stats.ops.entry(name).or_default() += 1;
    }

    /// Starts an operation of a concurrent world: what it touches accumulates until the next
    /// quiescent point checks it.
    pub fn begin_op(&mut self, name: &'static str) {
        *self.stats.ops.entry(name).or_default() += 1;
    }

    /// Counts a failed API call.
    pub fn error(&mut self, e: pgmsim::Error) {
        *self.stats.errors.entry(e.name()).or_default() += 1;
    }
}
