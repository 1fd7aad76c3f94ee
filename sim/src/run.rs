//! Running a world: from a seed through the generator, or from a trace; the report every
//! command prints.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::check::{self, CheckMode, Failure, Invariant};
use crate::conc::exec::Source;
use crate::config::{Overrides, SimConfig};
use crate::gen::{next_op, Entropy};
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
    /// The operations applied (the failing one last, if any).
    pub ops: Vec<Op>,
    /// Counters.
    pub stats: Stats,
    /// The failure, if an invariant broke.
    pub failure: Option<Failure>,
    /// Hash of every step's operation and result.
    pub trace_hash: u64,
    /// Concurrent runs: the thread of each operation (empty for a sequential run).
    pub threads: Vec<u8>,
    /// Concurrent runs: every scheduling decision (empty for a sequential run).
    pub schedule: Vec<u8>,
}

/// The JSON summary of `--json`: seed, steps, configuration, every counter of [`Stats`]
/// (ops and errors per kind, accesses, handler calls, guest faults, TLB hits and misses,
/// shadow syncs, invariant checks), failures and the trace hash.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    /// Seed.
    pub seed: Option<u64>,
    /// Steps applied.
    pub steps: usize,
    /// Configuration.
    pub config: &'a SimConfig,
    /// Counters.
    #[serde(flatten)]
    pub stats: &'a Stats,
    /// Number of failures (0 or 1: a run stops at its first).
    pub failures: usize,
    /// The failure.
    pub failure: Option<&'a Failure>,
    /// Trace hash, hex.
    pub trace_hash: String,
}

impl RunReport {
    /// The `--json` summary.
    pub fn summary(&self) -> Summary<'_> {
        Summary {
            seed: self.seed,
            steps: self.ops.len(),
            config: &self.config,
            stats: &self.stats,
            failures: usize::from(self.failure.is_some()),
            failure: self.failure.as_ref(),
            trace_hash: format!("{:016x}", self.trace_hash),
        }
    }

    /// The run as a trace (with its failure noted).
    pub fn trace(&self) -> Trace {
        let mut t = Trace::new(self.seed, self.check, self.config.clone(), self.ops.clone());
        t.failure = self.failure.clone();
        if self.config.concurrency.is_some() {
            t.threads = Some(self.threads.clone());
            t.schedule = Some(crate::trace::Schedule::encode(&self.schedule));
        }
        t
    }
}

/// Applies operations from `next` until it returns `None`, a failure, or `steps` steps.
fn execute(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: usize,
    mut next: impl FnMut(&World) -> Option<Op>,
) -> RunReport {
    let mut report = RunReport {
        seed,
        check,
        config: config.clone(),
        ops: Vec::new(),
        stats: Stats::default(),
        failure: None,
        trace_hash: 0,
        threads: Vec::new(),
        schedule: Vec::new(),
    };
    let mut hasher = TraceHasher::default();
    let mut world = match catch_unwind(AssertUnwindSafe(|| World::new(config))) {
        Ok(Ok(w)) => w,
        Ok(Err(f)) => {
            report.failure = Some(f);
            return report;
        }
        Err(panic) => {
            report.failure = Some(panicked(0, "building the world", panic));
            return report;
        }
    };
    for _ in 0..steps {
        let op = match catch_unwind(AssertUnwindSafe(|| next(&world))) {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(panic) => {
                report.failure = Some(panicked(world.step(), "generating the next step", panic));
                break;
            }
        };
        let r = catch_unwind(AssertUnwindSafe(|| world.apply(&op, check)));
        report.ops.push(op);
        match r {
            Ok(Ok(result)) => hasher.add_step(report.ops.last().expect("just pushed"), &result),
            Ok(Err(f)) => {
                report.failure = Some(f);
                break;
            }
            Err(panic) => {
                report.failure = Some(panicked(world.step(), "applying the step", panic));
                break;
            }
        }
    }
    if report.failure.is_none() {
        match catch_unwind(AssertUnwindSafe(|| check::full_check(&mut world))) {
            Ok(Ok(())) => {}
            Ok(Err(f)) => report.failure = Some(f),
            Err(panic) => report.failure = Some(panicked(world.step(), "the final full check", panic)),
        }
    }
    report.stats = world.stats().clone();
    report.stats.threads = 1;
    report.trace_hash = std::hash::Hasher::finish(&hasher);
    report
}

/// A panic turned into a failure, so it gets a trace and a shrink like any other.
pub(crate) fn panicked(step: u64, during: &str, payload: Box<dyn std::any::Any + Send>) -> Failure {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    Failure::new(step, Invariant::Panic, format!("panic while {during}: {msg}"))
}

/// Runs `steps` generated steps of `seed` in the world the seed draws.
pub fn run_seed(seed: u64, steps: usize, overrides: &Overrides, check: CheckMode) -> RunReport {
    run_config(seed, SimConfig::from_seed(seed, overrides), steps, check)
}

/// Runs `steps` steps generated from `seed` in a given world (`--config`).
pub fn run_config(seed: u64, config: SimConfig, steps: usize, check: CheckMode) -> RunReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if config.concurrency.is_some() {
        return concurrent(config, Some(seed), check, steps, Source::Generated(&mut rng), None);
    }
    execute(config, Some(seed), check, steps, |w| Some(next_op(w, &mut rng)))
}

/// Runs `steps` steps drawn from any entropy source (fuzzer bytes) in the world of `config`.
pub fn run_entropy(config: SimConfig, steps: usize, entropy: &mut dyn Entropy) -> RunReport {
    if config.concurrency.is_some() {
        return concurrent(
            config,
            None,
            CheckMode::Incremental,
            steps,
            Source::Generated(entropy),
            None,
        );
    }
    execute(config, None, CheckMode::Incremental, steps, |w| {
        Some(next_op(w, entropy))
    })
}

/// Replays a trace (a concurrent one with its threads and schedule).
pub fn replay(trace: &Trace, check: CheckMode) -> RunReport {
    if trace.config.concurrency.is_some() {
        let threads = trace.config.vcpus as usize + trace.config.concurrency.map_or(0, |c| c.devices as usize);
        let mut queues = vec![std::collections::VecDeque::new(); threads];
        let owners = trace.threads.clone().unwrap_or_default();
        for (i, op) in trace.ops.iter().enumerate() {
            let t = owners.get(i).copied().unwrap_or(0) as usize;
            if let Some(q) = queues.get_mut(t) {
                q.push_back(op.clone());
            }
        }
        let schedule = trace.schedule.as_ref().map(|s| s.decode()).unwrap_or_default();
        let sched = crate::conc::sched::Scheduler::Replay {
            decisions: schedule,
            at: 0,
        };
        return concurrent(
            trace.config.clone(),
            trace.seed,
            check,
            trace.ops.len(),
            Source::Trace(queues),
            Some(sched),
        );
    }
    let mut it = trace.ops.iter().cloned();
    execute(trace.config.clone(), trace.seed, check, trace.ops.len(), |_| it.next())
}

/// Runs a concurrent world; panics become failures as in [`execute`].
fn concurrent(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: usize,
    source: Source<'_>,
    sched: Option<crate::conc::sched::Scheduler>,
) -> RunReport {
    let mut report = RunReport {
        seed,
        check,
        config: config.clone(),
        ops: Vec::new(),
        stats: Stats::default(),
        failure: None,
        trace_hash: 0,
        threads: Vec::new(),
        schedule: Vec::new(),
    };
    let mut world = match catch_unwind(AssertUnwindSafe(|| World::new(config))) {
        Ok(Ok(w)) => w,
        Ok(Err(f)) => {
            report.failure = Some(f);
            return report;
        }
        Err(panic) => {
            report.failure = Some(panicked(0, "building the world", panic));
            return report;
        }
    };
    let run = catch_unwind(AssertUnwindSafe(|| {
        crate::conc::exec::execute(&mut world, source, steps, check, sched)
    }));
    let run = match run {
        Ok(run) => run,
        Err(panic) => {
            report.failure = Some(panicked(world.step(), "running the concurrent world", panic));
            report.stats = world.stats().clone();
            return report;
        }
    };
    report.threads = run.ops.iter().map(|(t, _)| *t).collect();
    report.ops = run.ops.into_iter().map(|(_, op)| op).collect();
    report.schedule = run.schedule;
    report.failure = run.failure;
    report.trace_hash = run.trace_hash;
    report.stats = world.stats().clone();
    report.stats.merge_concurrency(&world, run.linearization_checks);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_failure_with_a_trace() {
        let config = SimConfig::from_seed(9, &Overrides::default());
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut n = 0;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = execute(config, Some(9), CheckMode::Incremental, 10, |w| {
            n += 1;
            assert!(n < 4, "deliberate generator panic");
            Some(next_op(w, &mut rng))
        });
        std::panic::set_hook(previous);
        let f = r.failure.expect("the panic is reported");
        assert_eq!(f.invariant, Invariant::Panic);
        assert!(f.detail.contains("deliberate generator panic"), "{}", f.detail);
        assert_eq!(r.ops.len(), 3, "the steps before the panic are in the trace");
    }
}
