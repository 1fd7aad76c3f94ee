//! Running a world: from a seed through the generator, or from a trace, or from fuzzer
//! entropy. One executor ([`execute`]) applies the steps; what a run keeps besides its
//! counters is chosen by the caller: every operation (replays, fuzz inputs, tests), or
//! nothing (long seed runs, whose trace is regenerated from the seed when a failure needs
//! it). An [`Observer`] sees each step as it is applied — to stream it to a trace file,
//! draw progress, or stop the run at a time limit.

pub(crate) mod concurrent;
mod observe;
mod report;
pub mod watchdog;

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::check::{self, CheckMode, Failure, Invariant};
use crate::conc::exec::Source;
use crate::config::{Overrides, SimConfig};
use crate::gen::{next_op, Entropy};
use crate::op::Op;
use crate::trace::{Trace, TraceHasher};
use crate::world::World;

pub use observe::{Deadline, Observer, Stop};
pub use report::{RunReport, Summary};

/// Whether a run keeps every operation it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Every operation, in [`RunReport::ops`].
    All,
    /// Only the last one (memory stays flat; the trace is regenerated from the seed).
    Last,
}

/// Applies operations from `next` until it returns `None`, a step fails, the observer stops
/// the run, or `steps` steps were applied; then, if nothing failed and the run was not
/// stopped, checks every invariant once more.
fn execute(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: u64,
    keep: Keep,
    observer: &mut dyn Observer,
    next: impl FnMut(&World) -> Option<Op>,
) -> RunReport {
    execute_with(config, seed, check, steps, keep, true, observer, next)
}

/// [`execute`], with the final full check optional (a watchdog's rerun of the steps before
/// a hung one leaves it out: the hung run never got there).
#[allow(clippy::too_many_arguments)]
fn execute_with(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: u64,
    keep: Keep,
    final_check: bool,
    observer: &mut dyn Observer,
    mut next: impl FnMut(&World) -> Option<Op>,
) -> RunReport {
    let mut report = RunReport::new(seed, check, config.clone());
    let mut hasher = TraceHasher::default();
    let faults = config.platform_faults();
    let mut world = match catch_unwind(AssertUnwindSafe(|| World::with_faults(config, faults))) {
        Ok(Ok(w)) => w,
        Ok(Err(f)) => return report.failed(f),
        Err(panic) => return report.failed(panicked(0, "building the world", panic)),
    };
    while report.steps < steps {
        watchdog::beat(report.steps);
        let op = match catch_unwind(AssertUnwindSafe(|| next(&world))) {
            Ok(Some(op)) => op,
            Ok(None) => break,
            Err(panic) => return report.failed(panicked(world.step(), "generating the next step", panic)),
        };
        let nodes = world.sides().model_names().nodes.len();
        let applied = catch_unwind(AssertUnwindSafe(|| world.apply(&op, check)));
        if keep == Keep::All {
            report
                .created_nodes
                .push(world.sides().model_names().nodes.len() > nodes);
        }
        let stop = observer.applied(&op);
        report.push(op, keep == Keep::All);
        match applied {
            Ok(Ok(result)) => hasher.add_step(report.last_op.as_ref().expect("just pushed"), &result),
            Ok(Err(f)) => return report.finish(&world, &hasher).failed(f),
            Err(panic) => {
                let f = panicked(world.step(), "applying the step", panic);
                return report.finish(&world, &hasher).failed(f);
            }
        }
        if let Err(stop) = stop {
            report.stopped = Some(stop);
            return report.finish(&world, &hasher);
        }
    }
    if !final_check {
        return report.finish(&world, &hasher);
    }
    watchdog::beat(report.steps);
    match catch_unwind(AssertUnwindSafe(|| check::full_check(&mut world))) {
        Ok(Ok(())) => report.finish(&world, &hasher),
        Ok(Err(f)) => report.finish(&world, &hasher).failed(f),
        Err(panic) => {
            let f = panicked(world.step(), "the final full check", panic);
            report.finish(&world, &hasher).failed(f)
        }
    }
}

/// A panic turned into a failure, so it gets a trace and a shrink like any other. A loop
/// that ran past its stated bound (the panic message starts with
/// [`pgmsim::LOOP_BOUND_EXCEEDED`]) would have run forever without the bound: a
/// [`Invariant::Hang`].
pub(crate) fn panicked(step: u64, during: &str, payload: Box<dyn std::any::Any + Send>) -> Failure {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    if msg.starts_with(pgmsim::LOOP_BOUND_EXCEEDED) {
        return Failure::new(step, Invariant::Hang, format!("hang while {during}: {msg}"));
    }
    Failure::new(step, Invariant::Panic, format!("panic while {during}: {msg}"))
}

/// Runs `steps` generated steps of `seed` in the world the seed draws, keeping every
/// operation (for tests and short runs; see [`run_generated`] for long ones).
pub fn run_seed(seed: u64, steps: usize, overrides: &Overrides, check: CheckMode) -> RunReport {
    run_config(seed, SimConfig::from_seed(seed, overrides), steps, check)
}

/// Runs `steps` steps generated from `seed` in a given world (`--config`), keeping every
/// operation.
pub fn run_config(seed: u64, config: SimConfig, steps: usize, check: CheckMode) -> RunReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if config.concurrency.is_some() {
        let source = Source::Generated(&mut rng);
        return concurrent::run(config, Some(seed), check, steps as u64, source, None, &mut ());
    }
    execute(config, Some(seed), check, steps as u64, Keep::All, &mut (), |w| {
        Some(next_op(w, &mut rng))
    })
}

/// Runs `steps` steps generated from `seed` in `config`, keeping no operation list: memory
/// stays flat however many steps. The observer sees every step (to stream it to a file,
/// draw progress or stop at a deadline); [`RunReport::trace`] regenerates the operations
/// from the seed when a failure needs them. (A concurrent world's executor keeps every
/// operation with its thread and the schedule, and shows them to the observer at the end.)
pub fn run_generated(
    seed: u64,
    config: SimConfig,
    steps: u64,
    check: CheckMode,
    observer: &mut dyn Observer,
) -> RunReport {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if config.concurrency.is_some() {
        let source = Source::Generated(&mut rng);
        return concurrent::run(config, Some(seed), check, steps, source, None, observer);
    }
    execute(config, Some(seed), check, steps, Keep::Last, observer, |w| {
        Some(next_op(w, &mut rng))
    })
}

/// Runs `steps` steps drawn from any entropy source (fuzzer bytes) in the world of `config`.
pub fn run_entropy(config: SimConfig, steps: usize, entropy: &mut dyn Entropy) -> RunReport {
    if config.concurrency.is_some() {
        let source = Source::Generated(entropy);
        return concurrent::run(
            config,
            None,
            CheckMode::Incremental,
            steps as u64,
            source,
            None,
            &mut (),
        );
    }
    execute(
        config,
        None,
        CheckMode::Incremental,
        steps as u64,
        Keep::All,
        &mut (),
        |w| Some(next_op(w, entropy)),
    )
}

/// Runs `steps` operations drawn from `entropy` in the concurrent world of `config` under
/// `schedule` instead of the configured scheduler (the byte-driven schedule of a fuzz input;
/// quiescent points every `quiesce_every` operations, as configured). The report records the
/// schedule taken, so its trace replays exactly.
pub fn run_entropy_scheduled(
    config: SimConfig,
    steps: usize,
    entropy: &mut dyn Entropy,
    schedule: crate::conc::sched::Scheduler,
) -> RunReport {
    let recorded = crate::conc::exec::Recorded {
        schedule,
        quiesce: None,
    };
    let source = Source::Generated(entropy);
    let check = CheckMode::Incremental;
    concurrent::run(config, None, check, steps as u64, source, Some(recorded), &mut ())
}

/// Replays a trace (a concurrent one with its threads and schedule).
pub fn replay(trace: &Trace, check: CheckMode) -> RunReport {
    replay_observed(trace, check, &mut ())
}

/// Runs a concurrent trace's operations under a guided scheduler following `prefix` (choices
/// by position among each decision point's options), then the default choices; returns the
/// run and every decision point it met (`crate::conc::explore` extends prefixes from them).
/// A sequential trace has no decision points: it is replayed as it is.
pub fn run_guided(trace: &Trace, check: CheckMode, prefix: Vec<u8>) -> (RunReport, crate::conc::sched::Guided) {
    if trace.config.concurrency.is_none() {
        return (replay(trace, check), Default::default());
    }
    concurrent::guided(trace, check, prefix)
}

/// Runs a concurrent trace's operations (on their threads, with its quiescent points) under a
/// fresh scheduler of `kind` seeded `seed` instead of its own schedule; the report's trace
/// replays that run exactly. A sequential trace is replayed as it is.
pub fn run_rescheduled(trace: &Trace, check: CheckMode, kind: crate::conc::SchedulerKind, seed: u64) -> RunReport {
    if trace.config.concurrency.is_none() {
        return replay(trace, check);
    }
    concurrent::rescheduled(trace, check, kind, seed)
}

/// Replays a trace with an observer (a deadline, progress).
pub fn replay_observed(trace: &Trace, check: CheckMode, observer: &mut dyn Observer) -> RunReport {
    if trace.config.concurrency.is_some() {
        return concurrent::replay(trace, check, observer);
    }
    let mut it = trace.ops.iter().cloned();
    execute(
        trace.config.clone(),
        trace.seed,
        check,
        trace.ops.len() as u64,
        Keep::All,
        observer,
        |_| it.next(),
    )
}

/// [`run_generated`] on a thread watched by the step budget ([`watchdog`]; inline when
/// there is none). The observer moves to the run's thread and comes back with the report,
/// unless a step hung: then the report is a [`Invariant::Hang`] whose operations (the steps
/// before the hung one, rerun, and the hung one) are kept, and the observer stays with the
/// abandoned thread.
pub fn run_generated_watched<O: Observer + Send + 'static>(
    seed: u64,
    config: SimConfig,
    steps: u64,
    check: CheckMode,
    mut observer: O,
) -> (RunReport, Option<O>) {
    let again = config.clone();
    let run = watchdog::watch(move || {
        let r = run_generated(seed, config, steps, check, &mut observer);
        (r, observer)
    });
    match run {
        watchdog::Watched::Done((r, o)) => (r, Some(o)),
        watchdog::Watched::Hung { step, limit } => {
            if again.concurrency.is_some() {
                let detail = watchdog::detail(step, limit)
                    + "; a concurrent world's operations are known only when it ends: rerun the seed";
                return (hung_without_ops(Some(seed), check, again, step, detail), None);
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let next = move |w: &World| Some(next_op(w, &mut rng));
            (
                rerun_to_hang(Some(seed), again, check, (step, steps), limit, next),
                None,
            )
        }
    }
}

/// [`replay_observed`] on a thread watched by the step budget, as [`run_generated_watched`].
pub fn replay_watched<O: Observer + Send + 'static>(
    trace: &Trace,
    check: CheckMode,
    mut observer: O,
) -> (RunReport, Option<O>) {
    if watchdog::step_timeout().is_none() {
        let r = replay_observed(trace, check, &mut observer);
        return (r, Some(observer));
    }
    let t = trace.clone();
    let run = watchdog::watch(move || {
        let r = replay_observed(&t, check, &mut observer);
        (r, observer)
    });
    match run {
        watchdog::Watched::Done((r, o)) => (r, Some(o)),
        watchdog::Watched::Hung { step, limit } => {
            if trace.config.concurrency.is_some() {
                let detail = watchdog::detail(step, limit) + "; the whole concurrent trace is kept";
                let mut r = hung_without_ops(trace.seed, check, trace.config.clone(), step, detail);
                r.steps = trace.ops.len() as u64;
                r.ops = trace.ops.clone();
                r.threads = trace.threads.clone().unwrap_or_default();
                return (r, None);
            }
            let mut ops = trace.ops.clone().into_iter();
            let next = move |_: &World| ops.next();
            let total = trace.ops.len() as u64;
            (
                rerun_to_hang(trace.seed, trace.config.clone(), check, (step, total), limit, next),
                None,
            )
        }
    }
}

/// A hang whose operations are unknown.
fn hung_without_ops(seed: Option<u64>, check: CheckMode, config: SimConfig, step: u64, detail: String) -> RunReport {
    RunReport::new(seed, check, config).failed(Failure::new(step, Invariant::Hang, detail))
}

/// The report of a run that hung at `step` (of `total`): the steps before it rerun on a
/// watched thread (they completed before, so they complete again) for their operations,
/// counters and trace hash, then the hung step's operation drawn from `next` without being
/// applied. If the rerun hangs too, the report keeps no operations.
fn rerun_to_hang(
    seed: Option<u64>,
    config: SimConfig,
    check: CheckMode,
    (step, total): (u64, u64),
    limit: std::time::Duration,
    mut next: impl FnMut(&World) -> Option<Op> + Send + 'static,
) -> RunReport {
    let detail = watchdog::detail(step, limit);
    let again = config.clone();
    let rerun = watchdog::watch(move || {
        let mut drawn = None;
        let mut n = 0u64;
        let r = execute_with(config, seed, check, step + 1, Keep::All, false, &mut (), |w| {
            let op = next(w)?;
            if n == step {
                drawn = Some(op);
                return None;
            }
            n += 1;
            Some(op)
        });
        (r, drawn)
    });
    match rerun {
        watchdog::Watched::Done((mut r, drawn)) => {
            if let Some(op) = drawn.filter(|_| step < total && r.steps == step) {
                r.push(op, true);
                r.created_nodes.push(false);
            }
            r.stopped = None;
            r.failed(Failure::new(step, Invariant::Hang, detail))
        }
        watchdog::Watched::Hung { .. } => hung_without_ops(
            seed,
            check,
            again,
            step,
            detail + "; rerunning the steps before it hung too, so no operations are kept",
        ),
    }
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
        let r = execute(config, Some(9), CheckMode::Incremental, 10, Keep::All, &mut (), |w| {
            n += 1;
            assert!(n < 4, "deliberate generator panic");
            Some(next_op(w, &mut rng))
        });
        std::panic::set_hook(previous);
        let f = r.failure.expect("the panic is reported");
        assert_eq!(f.invariant, Invariant::Panic);
        assert!(f.detail.contains("deliberate generator panic"), "{}", f.detail);
        assert_eq!(r.ops.len(), 3, "the steps before the panic are in the trace");
        assert_eq!(r.steps, 3);
    }

    #[test]
    fn a_generated_run_keeps_no_operations_and_regenerates_its_trace() {
        let config = SimConfig::from_seed(5, &Overrides::default());
        let kept = run_config(5, config.clone(), 300, CheckMode::Incremental);
        let flat = run_generated(5, config, 300, CheckMode::Incremental, &mut ());
        assert!(flat.ops.is_empty());
        assert_eq!(flat.steps, 300);
        assert_eq!(flat.trace_hash, kept.trace_hash);
        assert_eq!(flat.last_op, kept.ops.last().cloned());
        let t = flat.trace();
        assert_eq!(t.ops, kept.ops);
        assert_eq!(t.trace_hash, Some(kept.trace_hash));
    }

    #[test]
    fn an_observer_stops_a_run_after_the_step_it_saw() {
        struct StopAt(u64);
        impl Observer for StopAt {
            fn applied(&mut self, _: &Op) -> Result<(), Stop> {
                self.0 -= 1;
                if self.0 == 0 {
                    Err(Stop::MaxTime)
                } else {
                    Ok(())
                }
            }
        }
        let config = SimConfig::from_seed(6, &Overrides::default());
        let r = run_generated(6, config.clone(), 1000, CheckMode::Incremental, &mut StopAt(40));
        assert_eq!(
            (r.steps, r.stopped, r.failure.is_none()),
            (40, Some(Stop::MaxTime), true)
        );
        let whole = run_config(6, config, 40, CheckMode::Incremental);
        assert_eq!(
            r.trace_hash, whole.trace_hash,
            "a stopped run hashes the steps it applied"
        );
        assert_eq!(r.trace().ops, whole.ops);
    }
}
