//! What a run did: the report every command prints, its JSON summary, its trace, and the
//! failure signature sweeps group failures by.

use serde::Serialize;

use super::Stop;
use crate::check::{CheckMode, Failure, Invariant};
use crate::config::SimConfig;
use crate::op::Op;
use crate::trace::{Trace, TraceHasher};
use crate::world::{Stats, World};

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Seed, if the run came from one.
    pub seed: Option<u64>,
    /// Check mode.
    pub check: CheckMode,
    /// The world's configuration.
    pub config: SimConfig,
    /// Steps applied, the failing one included.
    pub steps: u64,
    /// The operations applied (the failing one last), when the run kept them: replays and
    /// fuzz inputs always do, [`super::run_generated`] never does (see [`RunReport::trace`]).
    pub ops: Vec<Op>,
    /// The last operation applied (the failing one, if a step failed).
    pub last_op: Option<Op>,
    /// Counters.
    pub stats: Stats,
    /// The failure, if an invariant broke.
    pub failure: Option<Failure>,
    /// Hash of every successful step's operation and result (`crate::encode`).
    pub trace_hash: u64,
    /// Why the run stopped early without a failure (`None`: it ran every step).
    pub stopped: Option<Stop>,
    /// Concurrent runs: the thread of each operation (empty for a sequential run).
    pub threads: Vec<u8>,
    /// Concurrent runs: every scheduling decision (empty for a sequential run).
    pub schedule: Vec<crate::conc::sched::Move>,
    /// Concurrent runs: the operation (index into `ops`) each decision belongs to,
    /// `u32::MAX` for none; what lets the shrinker remove an operation's decisions with it.
    pub decision_ops: Vec<u32>,
    /// Concurrent runs: where each quiescent point but the last began (operation counts).
    pub quiesce: Vec<u32>,
    /// Sequential runs that keep their operations: for each, whether it created a handler
    /// node (what creation indices count; the shrinker renumbers with it).
    pub created_nodes: Vec<bool>,
}

/// The JSON summary of `--json` (documented field by field in `docs/json.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    /// Seed.
    pub seed: Option<u64>,
    /// Steps applied.
    pub steps: u64,
    /// Whether every step ran (false: stopped by `--max-time`).
    pub complete: bool,
    /// Configuration.
    pub config: &'a SimConfig,
    /// Counters.
    #[serde(flatten)]
    pub stats: &'a Stats,
    /// Number of failures (0 or 1: a run stops at its first).
    pub failures: usize,
    /// The failure.
    pub failure: Option<&'a Failure>,
    /// The operation of the failing step.
    pub failing_op: Option<&'a Op>,
    /// Trace hash, 16 hex digits.
    pub trace_hash: String,
}

impl RunReport {
    pub(super) fn new(seed: Option<u64>, check: CheckMode, config: SimConfig) -> RunReport {
        RunReport {
            seed,
            check,
            config,
            steps: 0,
            ops: Vec::new(),
            last_op: None,
            stats: Stats::default(),
            failure: None,
            trace_hash: 0,
            stopped: None,
            threads: Vec::new(),
            schedule: Vec::new(),
            decision_ops: Vec::new(),
            quiesce: Vec::new(),
            created_nodes: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, op: Op, keep: bool) {
        self.steps += 1;
        if keep {
            self.ops.push(op.clone());
        }
        self.last_op = Some(op);
    }

    pub(super) fn finish(mut self, world: &World, hasher: &TraceHasher) -> RunReport {
        self.stats = world.stats().clone();
        self.stats.threads = 1;
        self.trace_hash = std::hash::Hasher::finish(hasher);
        self
    }

    pub(super) fn failed(mut self, f: Failure) -> RunReport {
        self.failure = Some(f);
        self
    }

    /// Whether every step ran.
    pub fn complete(&self) -> bool {
        self.stopped.is_none()
    }

    /// The operation of the failing step (`None` when the world could not be built or the
    /// final full check failed).
    pub fn failing_op(&self) -> Option<&Op> {
        let f = self.failure.as_ref()?;
        if f.invariant == Invariant::Setup || f.step >= self.steps {
            return None;
        }
        if let Some(op) = self.ops.get(f.step as usize) {
            return Some(op);
        }
        (f.step == self.steps - 1).then_some(self.last_op.as_ref()).flatten()
    }

    /// The `--json` summary.
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            seed: self.seed,
            steps: self.steps,
            complete: self.complete(),
            config: &self.config,
            stats: &self.stats,
            failures: usize::from(self.failure.is_some()),
            failure: self.failure.as_ref(),
            failing_op: self.failing_op(),
            trace_hash: format!("{:016x}", self.trace_hash),
        }
    }

    /// What kind of failure this is: the invariant and the kind of the failing step
    /// (`translation_safety@deregister`), `…@final_check` when the final full check found
    /// it, `setup` when the world could not be built. Sweeps keep one trace per signature.
    pub fn signature(&self) -> Option<String> {
        let f = self.failure.as_ref()?;
        let invariant = serde_json::to_value(f.invariant)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", f.invariant));
        Some(match (f.invariant, self.failing_op()) {
            (Invariant::Setup, _) | (Invariant::Panic | Invariant::Hang, None) => invariant,
            (_, Some(op)) => format!("{invariant}@{}", op.name()),
            (_, None) => format!("{invariant}@final_check"),
        })
    }

    /// The run as a trace, with its failure and trace hash. A run that kept its operations
    /// gives them; one that did not ([`super::run_generated`]) is replayed from its seed,
    /// which regenerates exactly the same steps.
    pub fn trace(&self) -> Trace {
        let ops = if self.ops.len() as u64 == self.steps {
            self.ops.clone()
        } else {
            let seed = self.seed.expect("runs that keep no operations come from a seed");
            let again = super::run_config(seed, self.config.clone(), self.steps as usize, self.check);
            debug_assert_eq!(again.trace_hash, self.trace_hash, "regeneration is deterministic");
            again.ops
        };
        let mut t = Trace::new(self.seed, self.check, self.config.clone(), ops);
        t.failure = self.failure.clone();
        t.trace_hash = Some(self.trace_hash);
        if self.config.concurrency.is_some() {
            t.threads = Some(self.threads.clone());
            // Decisions past the last preemption replay as the default anyway.
            let end = self
                .schedule
                .iter()
                .rposition(|&d| !crate::conc::sched::is_default(d))
                .map_or(0, |i| i + 1);
            t.schedule = Some(crate::trace::Schedule::encode(&self.schedule[..end]));
            t.quiesce = Some(self.quiesce.clone());
        }
        t
    }
}
