//! Observing a concurrent trace: the concurrent executor replays it under its schedule (as
//! `replay` does: same world, same decisions, same checks, same trace hash) with a watcher.
//! The manager changes pages only under the PGM lock, so what changed since the last release
//! is settled at every release and belongs to the operation the holder worked on; each
//! operation's record collects those, its platform events and its result. The machine's
//! timeline ([`crate::conc::timeline`]) gives, per thread, when its operations began and
//! ended, where it held the lock, its lock-free steps (inline in another thread's operation
//! too), shootdowns and their acknowledgements, preemptions and quiescent points.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use super::{FailureView, HandlerBand, Observation, StepRecord, Watch};
use crate::check::CheckMode;
use crate::conc::exec::{self, ConcurrentRun};
use crate::conc::timeline::{op_name, Event, Mark};
use crate::op::StepResult;
use crate::run::panicked;
use crate::trace::Trace;
use crate::world::World;

/// A concurrent trace's threads over time: one lane each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lanes {
    /// vCPU threads (ids `0..vcpus`); the device threads follow.
    pub vcpus: u8,
    /// Every thread.
    pub threads: u8,
    /// What happened, in order, each stamped with the scheduler decisions taken before it;
    /// operations named by their index in the trace.
    pub events: Vec<Event>,
    /// Scheduling decisions the run took.
    pub decisions: u64,
    /// The run's trace hash (an unobserved replay's: observing changes nothing).
    pub trace_hash: u64,
}

impl Lanes {
    /// Whether thread `t` is a vCPU.
    pub fn is_vcpu(&self, t: u8) -> bool {
        t < self.vcpus
    }

    /// The position of every event on the timeline's step axis, where the report's lanes and
    /// the step log's `--from`/`--to` place it: the `k`-th operation to begin at `k`, the `m` events after it before the next one begins at
    /// `k + j / (m + 1)`; anything before the first operation at 0.
    pub fn positions(&self) -> Vec<f64> {
        let events = &self.events;
        // Segment of each event (operations begun at or before it, minus one) and its rank in it.
        let mut seg = Vec::with_capacity(events.len());
        let mut sizes: Vec<usize> = Vec::new();
        for e in events {
            if matches!(e.mark, Mark::Begin { .. }) {
                sizes.push(0);
                seg.push((sizes.len() - 1, 0));
            } else if let Some(k) = sizes.len().checked_sub(1) {
                sizes[k] += 1;
                seg.push((k, sizes[k]));
            } else {
                seg.push((usize::MAX, 0));
            }
        }
        seg.iter()
            .map(|&(k, rank)| match sizes.get(k) {
                Some(&m) => k as f64 + rank as f64 / (m + 1) as f64,
                None => 0.0,
            })
            .collect()
    }

    /// "vCPU 1" or "device 2": what a thread is, by its id.
    pub fn thread_name(&self, t: u8) -> String {
        if self.is_vcpu(t) {
            format!("vCPU {t}")
        } else {
            format!("device {t}")
        }
    }
}

/// The watcher: every operation's record, filled in as its thread releases the lock and as
/// it completes.
struct Recorder {
    watch: Watch,
    steps: Vec<StepRecord>,
    bands: Vec<HandlerBand>,
}

impl exec::Watch for Recorder {
    fn released(&mut self, world: &mut World, _thread: u8, op: Option<u32>) {
        let events = world.log_mut().events.as_mut().map(std::mem::take).unwrap_or_default();
        let pages = self.watch.page_changes(world);
        // Only an operation's own decisions set what the holder works on; a release outside
        // every operation (none today) leaves its changes to the next one.
        let Some(i) = op.map(|o| o as usize).filter(|&i| i < self.steps.len()) else {
            return;
        };
        let handlers = self.watch.handler_changes(world, &mut self.bands, i);
        let s = &mut self.steps[i];
        s.events.extend(events);
        s.pages.extend(pages);
        s.handlers.extend(handlers);
    }

    fn done(&mut self, _world: &mut World, thread: u8, op: u32, result: &StepResult) {
        if let Some(s) = self.steps.get_mut(op as usize) {
            s.result = Some(result.clone());
            s.thread = Some(thread);
        }
    }
}

/// Observes a concurrent trace (see the module documentation).
pub(super) fn observe(trace: &Trace, check: CheckMode) -> Observation {
    let config = trace.config.clone();
    let mut obs = Observation::empty(&config);
    let Some(mut world) = super::recording_world(trace, &mut obs) else {
        return obs;
    };
    let watch = Watch::start(&world);
    obs.initial = watch
        .pages
        .iter()
        .map(|&(a, d)| (a, pgmsim::PageView::from(d)))
        .collect();
    let owners = trace.threads.clone().unwrap_or_default();
    let mut rec = Recorder {
        bands: watch.handlers.iter().map(|h| HandlerBand::of(h, None)).collect(),
        watch,
        steps: (trace.ops.iter().enumerate())
            .map(|(i, op)| StepRecord::new(op.clone(), owners.get(i).copied()))
            .collect(),
    };
    let (source, recorded) = crate::run::concurrent::replay_parts(trace);
    let budget = trace.ops.len();
    let run = catch_unwind(AssertUnwindSafe(|| {
        exec::execute_watched(&mut world, source, budget, check, Some(recorded), Some(&mut rec))
    }));
    let run = match run {
        Ok(run) => run,
        Err(payload) => {
            let f = panicked(world.step(), "running the concurrent world", payload);
            obs.failure = Some(FailureView::bare(f));
            return obs;
        }
    };
    finish(obs, &mut world, trace, run, rec)
}

/// The observation once the run is over: the steps that began, the lanes, the failure with
/// the failing operation (the one the run was working on; none at a quiescent point or in
/// the final check).
fn finish(mut obs: Observation, world: &mut World, trace: &Trace, run: ConcurrentRun, rec: Recorder) -> Observation {
    let hw = world.machine_mut().hw_mut().expect("a concurrent world");
    let events = hw.timeline.take().unwrap_or_default();
    let working_on = op_name(hw.op).map(|o| o as usize);
    let began = events
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Begin { op, .. } => Some(op as usize + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    obs.steps = rec.steps;
    obs.steps.truncate(began);
    obs.handlers = rec.bands;
    if let Some(f) = run.failure {
        let at_quiescent_point = matches!(
            events.last(),
            Some(Event {
                mark: Mark::Quiescent,
                ..
            })
        );
        obs.failing = working_on.filter(|&i| i < began && !at_quiescent_point);
        obs.failure = Some(FailureView::at(world, obs.failing.map(|i| &trace.ops[i]), f));
    }
    let vcpus = trace.config.vcpus;
    obs.lanes = Some(Lanes {
        vcpus,
        threads: vcpus + trace.config.concurrency.map_or(0, |c| c.devices),
        events,
        decisions: run.schedule.len() as u64,
        trace_hash: run.trace_hash,
    });
    obs
}
