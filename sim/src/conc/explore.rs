//! Systematic schedule exploration (`pgmsim explore`): every schedule of a small concurrent
//! trace with at most K preemptions, instead of the ones a random or PCT scheduler happens
//! to draw.
//!
//! The operations, their threads and the quiescent points stay those of the trace; only the
//! scheduling decisions vary. A run under a [`Guided`] scheduler takes the choices of a
//! *prefix* and then the default choice at every later decision point, recording each
//! point's options ([`Branch`]). Each such run is one schedule. From it, every point past
//! the prefix yields one new prefix per alternative: the decisions taken up to that point,
//! then the alternative. Runs are deterministic, so every schedule is reached by exactly one
//! prefix (a tree search with no duplicates and no state hashing).
//!
//! An alternative *costs* one preemption when it differs from the default at a point where
//! another thread could have gone on ([`Branch::preempting`]: a top point where the thread
//! that moved last can move, every inline and flush point); choosing among threads when the
//! last one cannot move is free. Prefixes are explored breadth-first by cost (all schedules
//! with no preemption, then one, then two: CHESS's preemption bounding, since most
//! concurrency bugs need few preemptions), first-in first-out within a cost, so the order is
//! a pure function of the trace. `max_schedules` bounds the search: the explored schedules
//! are then exactly the first ones of that order, and the result says the bound cut it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::ControlFlow;

use super::sched::{Branch, Guided};
use crate::check::CheckMode;
use crate::run::{run_guided, RunReport};
use crate::trace::Trace;

/// What to explore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExploreSpec {
    /// Highest number of preemptions a schedule may have.
    pub max_preemptions: u32,
    /// Highest number of schedules to run.
    pub max_schedules: u64,
    /// Check mode of every run.
    pub check: CheckMode,
}

/// One failure signature found (see [`RunReport::signature`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSignature {
    /// The signature (`dirty_log@harvest`).
    pub signature: String,
    /// Schedules that failed with it.
    pub schedules: u64,
    /// The first of them: its number in exploration order (from 0).
    pub first_schedule: u64,
    /// The first one's preemptions.
    pub preemptions: u32,
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Schedules run.
    pub schedules: u64,
    /// Schedules run, by their number of preemptions (index = preemptions).
    pub by_preemptions: Vec<u64>,
    /// Whether every schedule within the preemption bound ran (false: `max_schedules` cut
    /// the search).
    pub complete: bool,
    /// Schedules that failed.
    pub failures: u64,
    /// Failure signatures, in the order they were first found.
    pub signatures: Vec<FoundSignature>,
    /// The first failing run (its trace replays the failing schedule exactly).
    pub first_failure: Option<RunReport>,
    /// Distinct trace hashes among the schedules run (how many runs differed in what they
    /// did, or in the decisions they took).
    pub distinct_trace_hashes: u64,
    /// FNV-1a over every schedule's trace hash in exploration order: equal for equal
    /// explorations.
    pub combined_hash: u64,
}

/// Prefixes waiting to run, one FIFO queue per cost, holding at most what the schedule
/// bound can still run.
struct Frontier {
    levels: Vec<VecDeque<Vec<u8>>>,
    pending: u64,
    /// Something was dropped for the bound: the search is incomplete.
    cut: bool,
}

impl Frontier {
    fn new(max_preemptions: u32) -> Frontier {
        let mut levels = vec![VecDeque::new(); max_preemptions as usize + 1];
        levels[0].push_back(Vec::new());
        Frontier {
            levels,
            pending: 1,
            cut: false,
        }
    }

    /// Queues `prefix` at `cost` when `room` (schedules the bound still allows) exceeds what
    /// is queued. When it does not, the prefix that comes last in exploration order goes: the
    /// last one of the highest cost above `cost`, or else `prefix` itself. What is dropped is
    /// then never among the first `max_schedules` of the unbounded order, so a bounded search
    /// explores exactly those.
    fn push(&mut self, cost: usize, prefix: Vec<u8>, room: u64) {
        if self.pending >= room {
            self.cut = true;
            let Some(higher) = (cost + 1..self.levels.len())
                .rev()
                .find(|&c| !self.levels[c].is_empty())
            else {
                return;
            };
            self.levels[higher].pop_back();
            self.pending -= 1;
        }
        self.levels[cost].push_back(prefix);
        self.pending += 1;
    }

    /// The next prefix in exploration order, with its cost.
    fn pop(&mut self) -> Option<(usize, Vec<u8>)> {
        let cost = self.levels.iter().position(|l| !l.is_empty())?;
        self.pending -= 1;
        self.levels[cost].pop_front().map(|p| (cost, p))
    }
}

/// Explores every schedule of `trace` (a concurrent one) with at most
/// `spec.max_preemptions` preemptions, up to `spec.max_schedules` runs.
pub fn explore(trace: &Trace, spec: &ExploreSpec) -> Result<Exploration, String> {
    if trace.config.concurrency.is_none() {
        return Err("explore needs a concurrent trace (its configuration has no `concurrency`)".into());
    }
    if spec.max_schedules == 0 {
        return Err("the schedule bound must be at least 1".into());
    }
    let mut found = Found::new(spec.max_preemptions);
    let complete = search(trace, spec, &mut |cost, report| {
        found.record(cost, report);
        ControlFlow::Continue(())
    });
    Ok(found.finish(complete))
}

/// The first schedule of `trace` (a concurrent one), in exploration order within `spec`'s
/// bounds, whose run `wanted` accepts, and how many schedules ran to find it (the shrinker
/// searches a failing interleaving again after removing an operation).
pub fn first_schedule(
    trace: &Trace,
    spec: &ExploreSpec,
    wanted: &dyn Fn(&RunReport) -> bool,
) -> (Option<RunReport>, u64) {
    let (mut runs, mut hit) = (0, None);
    if trace.config.concurrency.is_none() || spec.max_schedules == 0 {
        return (None, 0);
    }
    search(trace, spec, &mut |_, report| {
        runs += 1;
        if wanted(&report) {
            hit = Some(report);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    (hit, runs)
}

/// Runs the schedules of `trace` breadth-first by preemptions, each handed to `visit` with
/// its cost, until `visit` breaks or `spec`'s bounds are reached; whether every schedule
/// within the preemption bound ran.
fn search(trace: &Trace, spec: &ExploreSpec, visit: &mut dyn FnMut(u32, RunReport) -> ControlFlow<()>) -> bool {
    let mut frontier = Frontier::new(spec.max_preemptions);
    let mut runs = 0u64;
    while let Some((cost, prefix)) = frontier.pop() {
        let start = prefix.len();
        let (report, guided) = run_guided(trace, spec.check, prefix);
        runs += 1;
        if visit(cost as u32, report).is_break() {
            return false;
        }
        let room = spec.max_schedules - runs;
        for (child, branch) in alternatives(&guided, start) {
            let child_cost = cost + usize::from(branch.preempting);
            if child_cost <= spec.max_preemptions as usize {
                frontier.push(child_cost, child, room);
            }
        }
    }
    !frontier.cut
}

/// Every prefix that branches off `guided`'s run at a point from `start` on: the decisions
/// taken before that point, then one of its alternatives other than the one taken (the
/// default, past the prefix). Yields each prefix with the point it branches at.
fn alternatives(guided: &Guided, start: usize) -> impl Iterator<Item = (Vec<u8>, Branch)> + '_ {
    let taken: Vec<u8> = guided.points.iter().map(|b| b.taken).collect();
    guided.points.iter().enumerate().skip(start).flat_map(move |(i, &b)| {
        let before = taken[..i].to_vec();
        (0..b.options).filter(move |&a| a != b.taken).map(move |a| {
            let mut p = before.clone();
            p.push(a);
            (p, b)
        })
    })
}

/// What the runs found so far.
struct Found {
    schedules: u64,
    by_preemptions: Vec<u64>,
    failures: u64,
    signatures: BTreeMap<String, usize>,
    list: Vec<FoundSignature>,
    first_failure: Option<RunReport>,
    hashes: BTreeSet<u64>,
    combined: u64,
}

impl Found {
    fn new(max_preemptions: u32) -> Found {
        Found {
            schedules: 0,
            by_preemptions: vec![0; max_preemptions as usize + 1],
            failures: 0,
            signatures: BTreeMap::new(),
            list: Vec::new(),
            first_failure: None,
            hashes: BTreeSet::new(),
            combined: FNV_OFFSET,
        }
    }

    /// Counts one schedule (with `preemptions` preemptions) and what it found.
    fn record(&mut self, preemptions: u32, report: RunReport) {
        let index = self.schedules;
        self.schedules += 1;
        self.by_preemptions[preemptions as usize] += 1;
        self.hashes.insert(report.trace_hash);
        for b in report.trace_hash.to_le_bytes() {
            self.combined = (self.combined ^ b as u64).wrapping_mul(FNV_PRIME);
        }
        let Some(signature) = report.signature() else { return };
        self.failures += 1;
        match self.signatures.get(&signature) {
            Some(&k) => self.list[k].schedules += 1,
            None => {
                self.signatures.insert(signature.clone(), self.list.len());
                self.list.push(FoundSignature {
                    signature,
                    schedules: 1,
                    first_schedule: index,
                    preemptions,
                });
            }
        }
        if self.first_failure.is_none() {
            self.first_failure = Some(report);
        }
    }

    fn finish(self, complete: bool) -> Exploration {
        Exploration {
            schedules: self.schedules,
            by_preemptions: self.by_preemptions,
            complete,
            failures: self.failures,
            signatures: self.list,
            first_failure: self.first_failure,
            distinct_trace_hashes: self.hashes.len() as u64,
            combined_hash: self.combined,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
