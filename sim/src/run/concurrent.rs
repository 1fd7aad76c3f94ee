//! Runs of concurrent worlds (vCPU and device threads stepped by a seeded scheduler): the
//! concurrent executor (`crate::conc::exec`) applies the steps and keeps every operation
//! with its thread and the schedule, which the trace needs to replay exactly. Observers see
//! the operations when the run is over (a concurrent run cannot be stopped mid-way).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{panicked, Observer, RunReport};
use crate::check::CheckMode;
use crate::conc::exec::{Recorded, Source};
use crate::conc::sched::{Guided, Scheduler};
use crate::config::SimConfig;
use crate::trace::Trace;
use crate::world::World;

/// Runs a concurrent world; panics become failures as in the sequential executor.
pub(super) fn run(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: u64,
    source: Source<'_>,
    recorded: Option<Recorded>,
    observer: &mut dyn Observer,
) -> RunReport {
    run_keeping_world(config, seed, check, steps, source, recorded, observer).0
}

/// [`run`], also handing back the world as the run left it (`None` if it could not be
/// built): what a guided run's caller reads the scheduler's branch points from.
fn run_keeping_world(
    config: SimConfig,
    seed: Option<u64>,
    check: CheckMode,
    steps: u64,
    source: Source<'_>,
    recorded: Option<Recorded>,
    observer: &mut dyn Observer,
) -> (RunReport, Option<World>) {
    let mut report = RunReport::new(seed, check, config.clone());
    let faults = config.platform_faults();
    let mut world = match catch_unwind(AssertUnwindSafe(|| World::with_faults(config, faults))) {
        Ok(Ok(w)) => w,
        Ok(Err(f)) => return (report.failed(f), None),
        Err(panic) => return (report.failed(panicked(0, "building the world", panic)), None),
    };
    let budget = usize::try_from(steps).unwrap_or(usize::MAX);
    let run = catch_unwind(AssertUnwindSafe(|| {
        crate::conc::exec::execute(&mut world, source, budget, check, recorded)
    }));
    let run = match run {
        Ok(run) => run,
        Err(panic) => {
            report.stats = world.stats().clone();
            let f = panicked(world.step(), "running the concurrent world", panic);
            return (report.failed(f), Some(world));
        }
    };
    for (thread, op) in run.ops {
        let _ = observer.applied(&op);
        report.threads.push(thread);
        report.push(op, true);
    }
    report.schedule = run.schedule;
    report.decision_ops = run.decision_ops;
    report.quiesce = run.quiesce;
    report.failure = run.failure;
    report.trace_hash = run.trace_hash;
    report.stats = world.stats().clone();
    report.stats.merge_concurrency(&world, run.linearization_checks);
    (report, Some(world))
}

/// A concurrent trace's operations queued per thread, each named by its index in the trace
/// (what the trace's schedule names it by).
fn queues(trace: &Trace) -> Vec<VecDeque<(u32, crate::op::Op)>> {
    let threads = trace.config.vcpus as usize + trace.config.concurrency.map_or(0, |c| c.devices as usize);
    let mut queues = vec![VecDeque::new(); threads];
    let owners = trace.threads.clone().unwrap_or_default();
    for (i, op) in trace.ops.iter().enumerate() {
        let t = owners.get(i).copied().unwrap_or(0) as usize;
        if let Some(q) = queues.get_mut(t) {
            q.push_back((i as u32, op.clone()));
        }
    }
    queues
}

/// Runs a concurrent trace's operations (on their threads, with its quiescent points) under
/// a [`Guided`] scheduler that takes the choices of `prefix` and then the defaults; returns
/// the run and the scheduler's final state, whose branch points tell `pgmsim explore` which
/// other schedules exist. The trace's own schedule is ignored. The report's trace (with the
/// decisions this run took) replays exactly like any other.
pub(super) fn guided(trace: &Trace, check: CheckMode, prefix: Vec<u8>) -> (RunReport, Guided) {
    let recorded = Recorded {
        schedule: Scheduler::Guided(Guided {
            prefix,
            points: Vec::new(),
        }),
        quiesce: trace.quiesce.clone(),
    };
    let (report, world) = run_keeping_world(
        trace.config.clone(),
        trace.seed,
        check,
        trace.ops.len() as u64,
        Source::Trace(queues(trace)),
        Some(recorded),
        &mut (),
    );
    let guided = world.and_then(|mut w| match w.machine_mut().hw_mut().map(|h| &mut h.sched) {
        Some(Scheduler::Guided(g)) => Some(std::mem::take(g)),
        _ => None,
    });
    (report, guided.unwrap_or_default())
}

/// Runs a concurrent trace's operations (on their threads, with its quiescent points) under
/// a fresh scheduler of `kind` seeded `seed`; the trace's own schedule is ignored.
pub(super) fn rescheduled(trace: &Trace, check: CheckMode, kind: crate::conc::SchedulerKind, seed: u64) -> RunReport {
    let threads = trace.config.vcpus as usize + trace.config.concurrency.map_or(0, |c| c.devices as usize);
    let recorded = Recorded {
        schedule: Scheduler::new(kind, seed, threads, trace.ops.len() as u64 * 6),
        quiesce: trace.quiesce.clone(),
    };
    run(
        trace.config.clone(),
        trace.seed,
        check,
        trace.ops.len() as u64,
        Source::Trace(queues(trace)),
        Some(recorded),
        &mut (),
    )
}

/// What the concurrent executor needs to replay `trace`: its operations queued per thread
/// (each named by its index in the trace), its schedule and its quiescent points. Shared by
/// `replay` and the step-log and report observer, so both replay the same run.
pub(crate) fn replay_parts<'a>(trace: &Trace) -> (Source<'a>, Recorded) {
    let decisions = trace.schedule.as_ref().map(|s| s.decode()).unwrap_or_default();
    let recorded = Recorded {
        schedule: Scheduler::Replay {
            decisions,
            at: 0,
            fell_back: false,
        },
        quiesce: trace.quiesce.clone(),
    };
    (Source::Trace(queues(trace)), recorded)
}

/// Replays a concurrent trace: its operations queued per thread, its schedule exactly.
pub(super) fn replay(trace: &Trace, check: CheckMode, observer: &mut dyn Observer) -> RunReport {
    let (source, recorded) = replay_parts(trace);
    run(
        trace.config.clone(),
        trace.seed,
        check,
        trace.ops.len() as u64,
        source,
        Some(recorded),
        observer,
    )
}
