//! Runs of concurrent worlds (vCPU and device threads stepped by a seeded scheduler): the
//! concurrent executor (`crate::conc::exec`) applies the steps and keeps every operation
//! with its thread and the schedule, which the trace needs to replay exactly. Observers see
//! the operations when the run is over (a concurrent run cannot be stopped mid-way).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{panicked, Observer, RunReport};
use crate::check::CheckMode;
use crate::conc::exec::{Recorded, Source};
use crate::conc::sched::Scheduler;
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
    let mut report = RunReport::new(seed, check, config.clone());
    let faults = config.platform_faults();
    let mut world = match catch_unwind(AssertUnwindSafe(|| World::with_faults(config, faults))) {
        Ok(Ok(w)) => w,
        Ok(Err(f)) => return report.failed(f),
        Err(panic) => return report.failed(panicked(0, "building the world", panic)),
    };
    let budget = usize::try_from(steps).unwrap_or(usize::MAX);
    let run = catch_unwind(AssertUnwindSafe(|| {
        crate::conc::exec::execute(&mut world, source, budget, check, recorded)
    }));
    let run = match run {
        Ok(run) => run,
        Err(panic) => {
            report.stats = world.stats().clone();
            return report.failed(panicked(world.step(), "running the concurrent world", panic));
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
    report
}

/// What the concurrent executor needs to replay `trace`: its operations queued per thread
/// (each named by its index in the trace), its schedule and its quiescent points. Shared by
/// `replay` and the step-log and report observer, so both replay the same run.
pub(crate) fn replay_parts<'a>(trace: &Trace) -> (Source<'a>, Recorded) {
    let threads = trace.config.vcpus as usize + trace.config.concurrency.map_or(0, |c| c.devices as usize);
    let mut queues = vec![VecDeque::new(); threads];
    let owners = trace.threads.clone().unwrap_or_default();
    for (i, op) in trace.ops.iter().enumerate() {
        let t = owners.get(i).copied().unwrap_or(0) as usize;
        if let Some(q) = queues.get_mut(t) {
            q.push_back((i as u32, op.clone()));
        }
    }
    let decisions = trace.schedule.as_ref().map(|s| s.decode()).unwrap_or_default();
    let recorded = Recorded {
        schedule: Scheduler::Replay {
            decisions,
            at: 0,
            fell_back: false,
        },
        quiesce: trace.quiesce.clone(),
    };
    (Source::Trace(queues), recorded)
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
