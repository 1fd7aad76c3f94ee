//! Shrinking: a failing trace is minimised to one that fails the same invariant: truncate
//! after the failing step, delta-debug the operation list, simplify operands one at a time,
//! then shrink the configuration to what the failure needs (`config`). Every candidate is
//! judged by replaying it; candidates that are not valid traces are never replayed.

mod config;

use pgmsim_testkit::call::PINNED;
use pgmsim_testkit::{ApiCall, Operand};

use crate::check::{CheckMode, Invariant};
use crate::op::{AccessKind, Op};
use crate::run::replay_watched;
use crate::trace::Trace;

/// Outcome of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The minimised trace (it still fails the same invariant).
    pub trace: Trace,
    /// Replays spent.
    pub replays: u64,
}

pub(crate) struct Judge {
    invariant: Invariant,
    check: CheckMode,
    replays: u64,
    budget: u64,
    /// For the last accepted candidate (the current best) of a concurrent trace: the
    /// operation each decision of its schedule belongs to.
    attribution: Vec<u32>,
    /// For the current best: which operations created a handler node (empty for concurrent
    /// traces, whose creations are counted from the operations themselves).
    created: Vec<bool>,
    /// Threads the watchdog had abandoned when this shrink began.
    abandoned_at_start: u64,
}

/// Candidates a shrink may leave hung under the watchdog before it stops judging more.
const MAX_ABANDONED_CANDIDATES: u64 = 8;

impl Judge {
    /// The candidate's own replay as a trace, if it fails the same invariant (a concurrent
    /// trace comes back with the threads and schedule that replay took).
    pub(crate) fn fails(&mut self, t: &Trace) -> Option<Trace> {
        if self.replays >= self.budget || t.validate().is_err() || self.abandoned_too_many() {
            return None;
        }
        self.replays += 1;
        // Watched by the step budget: a candidate that hangs fails with `Hang`.
        let (r, _) = replay_watched(t, self.check, ());
        match &r.failure {
            Some(f) if f.invariant == self.invariant => {
                self.attribution = r.decision_ops.clone();
                self.created = r.created_nodes.clone();
                Some(r.trace())
            }
            _ => None,
        }
    }

    /// Whether this shrink has left [`MAX_ABANDONED_CANDIDATES`] threads stuck in candidates
    /// that hung under the watchdog: each may spin on a core until the process exits, so
    /// judging more would slow every later replay until they too looked hung.
    fn abandoned_too_many(&self) -> bool {
        crate::run::watchdog::abandoned_threads() >= self.abandoned_at_start + MAX_ABANDONED_CANDIDATES
    }

    /// [`Judge::fails`], or else, for a small concurrent trace, the candidate under the first
    /// schedule (fewest preemptions first, `pgmsim explore`'s order) that fails the same way:
    /// removing an operation or moving it to another thread changes what the default choices
    /// after it do, so the recorded decisions may no longer make the interleaving the failure
    /// needs, although another schedule of the smaller trace still does. Each schedule run
    /// counts as a replay.
    pub(crate) fn fails_rescheduled(&mut self, t: &Trace) -> Option<Trace> {
        if let Some(found) = self.fails(t) {
            return Some(found);
        }
        if t.config.concurrency.is_none()
            || t.ops.len() > RESCHEDULE_MAX_OPS
            || self.replays >= self.budget
            || t.validate().is_err()
        {
            return None;
        }
        let invariant = self.invariant;
        let wanted = |r: &crate::run::RunReport| r.failure.as_ref().is_some_and(|f| f.invariant == invariant);
        // Schedules with the fewest preemptions first, then random ones (a race that needs
        // a vCPU step at one particular point of an operation, and another before it, is
        // often beyond two preemptions of the explorer's order but within a random
        // scheduler's reach on a trace this small).
        let spec = crate::conc::explore::ExploreSpec {
            max_preemptions: RESCHEDULE_PREEMPTIONS,
            max_schedules: RESCHEDULE_EXPLORED.min(self.budget - self.replays),
            check: self.check,
        };
        let (mut found, runs) = crate::conc::explore::first_schedule(t, &spec, &wanted);
        self.replays += runs;
        let mut seed = 0;
        while found.is_none() && seed < RESCHEDULE_RANDOM && self.replays < self.budget {
            let r = crate::run::run_rescheduled(t, self.check, crate::conc::SchedulerKind::Random, seed);
            self.replays += 1;
            seed += 1;
            found = Some(r).filter(|r| wanted(r));
        }
        let r = found?;
        self.attribution = r.decision_ops.clone();
        self.created = r.created_nodes.clone();
        Some(r.trace())
    }

    /// The first of `candidates` that fails the same way (as its replay).
    pub(crate) fn fails_any(&mut self, candidates: Vec<Trace>) -> Option<Trace> {
        candidates.iter().find_map(|c| self.fails(c))
    }

    /// `best` without operations `range` (see [`Judge::without`]).
    fn without_ops(&self, best: &Trace, range: std::ops::Range<usize>) -> Trace {
        self.without(best, &|i| range.contains(&i))
    }

    /// `best` without the operations `gone` selects: in a concurrent trace, their threads
    /// and the scheduling decisions that belonged to them go too, decisions that moved them
    /// become the default, later operations' moves are renumbered (so every other decision
    /// still moves what it moved), and quiescent points after a removed operation come that
    /// much earlier.
    pub(crate) fn without(&self, best: &Trace, gone: &dyn Fn(usize) -> bool) -> Trace {
        use crate::conc::sched;
        // new_index[i]: operation i's index once the others are gone (= operations kept before it).
        let mut new_index = Vec::with_capacity(best.ops.len() + 1);
        let mut kept = 0u32;
        for i in 0..=best.ops.len() {
            new_index.push(kept);
            kept += u32::from(i < best.ops.len() && !gone(i));
        }
        let gone_op = |op: u32| (op as usize) < best.ops.len() && gone(op as usize);
        let mut t = best.clone();
        t.ops = renumber_nodes(&best.ops, &self.created, gone);
        t.threads = best.threads.as_ref().map(|th| keep(th, gone));
        if let Some(schedule) = &best.schedule {
            let moves: Vec<u32> = schedule
                .decode()
                .into_iter()
                .zip(self.attribution.iter().chain(std::iter::repeat(&u32::MAX)))
                .filter(|&(_, &op)| !gone_op(op))
                .map(|(d, _)| match sched::op_of(d) {
                    Some(op) if gone_op(op) => sched::defaulted(d),
                    Some(op) => sched::with_op(d, new_index[(op as usize).min(best.ops.len())]),
                    None => d,
                })
                .collect();
            t.schedule = Some(crate::trace::Schedule::encode(&moves));
        }
        if let Some(marks) = &mut t.quiesce {
            for m in marks.iter_mut() {
                *m = new_index[(*m as usize).min(best.ops.len())];
            }
            marks.dedup();
        }
        t
    }
}

/// The operations `gone` does not select, their handler-node references renumbered: traces
/// name nodes by creation index, so removing a `create` or `dup` shifts every later index
/// (without this, a shrink must keep every creation before the node a failure uses). A
/// reference to a removed node becomes one to a node that never exists, which both sides
/// refuse alike. `created` says which operations created a node in the best trace's replay;
/// without it (a concurrent trace) every `create` and `dup` counts, and where one had failed
/// the candidate is simply judged not to fail.
fn renumber_nodes(ops: &[Op], created_by: &[bool], gone: &dyn Fn(usize) -> bool) -> Vec<Op> {
    let creates = |i: usize, op: &Op| match created_by.get(i) {
        Some(&c) if created_by.len() == ops.len() => c,
        _ => matches!(op, Op::Call(call) if call.spec().creates_node),
    };
    let mut removed = Vec::new();
    let mut created = 0u32;
    for (i, op) in ops.iter().enumerate() {
        if creates(i, op) {
            if gone(i) {
                removed.push(created);
            }
            created += 1;
        }
    }
    let mut kept = keep(ops, gone);
    if removed.is_empty() {
        return kept;
    }
    let renumber = |h: &mut u32| {
        if *h & PINNED == 0 {
            *h = if removed.contains(h) {
                NO_NODE
            } else {
                *h - removed.iter().filter(|&&r| r < *h).count() as u32
            };
        }
    };
    for op in &mut kept {
        if let Op::Call(call) = op {
            call.visit_mut(&mut |o| {
                if let Operand::Node(h) = o {
                    renumber(h);
                }
            });
        }
    }
    kept
}

/// A node index no run creates (below the pinned range).
const NO_NODE: u32 = PINNED - 1;

/// The items of `v` whose index `gone` does not select.
fn keep<T: Clone>(v: &[T], gone: &dyn Fn(usize) -> bool) -> Vec<T> {
    v.iter()
        .enumerate()
        .filter(|&(i, _)| !gone(i))
        .map(|(_, x)| x.clone())
        .collect()
}

/// Minimises `trace`, which must fail when replayed; `None` if it does not.
///
/// Candidates that panic are judged like any other failure (the run loop turns panics into
/// [`Invariant::Panic`], loops past their bound into [`Invariant::Hang`]); every replay is
/// watched by the step budget when one is set (`run::watchdog`), so a candidate that hangs
/// is one that fails with `Hang`, and the shrink never stalls. The default panic hook is silenced meanwhile so a shrink of a panic
/// does not print thousands of backtraces.
pub fn shrink(trace: &Trace, budget: u64) -> Option<Shrunk> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = shrink_quietly(trace, budget);
    std::panic::set_hook(previous);
    result
}

fn shrink_quietly(trace: &Trace, budget: u64) -> Option<Shrunk> {
    let abandoned_at_start = crate::run::watchdog::abandoned_threads();
    let (first, _) = replay_watched(trace, trace.check, ());
    let failure = first.failure.as_ref()?;
    let mut judge = Judge {
        invariant: failure.invariant,
        check: trace.check,
        replays: 1,
        budget,
        attribution: first.decision_ops.clone(),
        created: first.created_nodes.clone(),
        abandoned_at_start,
    };
    let mut best = first.trace();
    // Each pass can open the way for another (a simpler operand lets an operation go, a
    // removed thread frees its operations, a smaller handler table needs fewer handlers to
    // fill it): repeat them until none makes progress.
    loop {
        let before = best.clone();
        loop {
            let size = size_of(&best);
            if best.config.concurrency.is_some() {
                best = crate::conc::shrink::try_sequential(best, &mut judge);
                best = crate::conc::shrink::drop_threads(best, &mut judge);
            }
            best = shrink_ops(best, &mut judge);
            best = simplify_operands(best, &mut judge);
            if best.config.concurrency.is_some() {
                best = crate::conc::shrink::shrink_concurrency(best, &mut judge);
            }
            if size_of(&best) == size && best.config.concurrency.is_some() {
                // Stalled on the recorded schedule: search the interleaving again.
                best = reschedule(best, &mut judge);
                best = crate::conc::shrink::shrink_concurrency(best, &mut judge);
            }
            if size_of(&best) == size || judge.replays >= judge.budget {
                break;
            }
        }
        best = config::shrink(best, &mut |cand| judge.fails(cand));
        if best == before || judge.replays >= judge.budget {
            break;
        }
    }
    Some(Shrunk {
        trace: best,
        replays: judge.replays,
    })
}

/// The longest concurrent trace whose candidates get their schedule searched again.
const RESCHEDULE_MAX_OPS: usize = 24;
/// Schedules explored at most for one candidate (fewest preemptions first).
const RESCHEDULE_EXPLORED: u64 = 100;
/// Random schedules run at most for one candidate after those.
const RESCHEDULE_RANDOM: u64 = 200;
/// Preemptions a re-searched schedule may have.
const RESCHEDULE_PREEMPTIONS: u32 = 2;

/// For a small concurrent trace the passes on the recorded schedule stalled on: removes
/// each operation (last first) and moves each vCPU's operations to another vCPU, searching a
/// failing schedule again for each candidate ([`Judge::fails_rescheduled`]).
fn reschedule(mut best: Trace, judge: &mut Judge) -> Trace {
    if best.ops.len() > RESCHEDULE_MAX_OPS {
        return best;
    }
    let mut i = best.ops.len();
    while i > 0 && judge.replays < judge.budget {
        i -= 1;
        if i < best.ops.len() {
            let cand = judge.without_ops(&best, i..i + 1);
            if let Some(t) = judge.fails_rescheduled(&cand) {
                best = t;
            }
        }
    }
    crate::conc::shrink::merge_vcpus_rescheduled(best, judge)
}

/// What the passes make smaller: operations, then preemptions.
fn size_of(t: &Trace) -> (usize, usize) {
    (t.ops.len(), crate::conc::shrink::preemptions(t))
}

/// Delta debugging over operations: remove chunks, halving the chunk size.
fn shrink_ops(mut best: Trace, judge: &mut Judge) -> Trace {
    let mut chunk = best.ops.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < best.ops.len() {
            let end = (i + chunk).min(best.ops.len());
            let cand = judge.without_ops(&best, i..end);
            match judge.fails(&cand) {
                Some(t) => best = t,
                None => i += chunk,
            }
        }
        if chunk == 1 {
            return best;
        }
        chunk = chunk.div_ceil(2);
    }
}

/// Simpler operands, one operation at a time (a simpler step may fail earlier: the trace can
/// shrink under it).
fn simplify_operands(mut best: Trace, judge: &mut Judge) -> Trace {
    let mut i = 0;
    while i < best.ops.len() {
        for simpler in simplify(&best.ops[i]) {
            if i >= best.ops.len() {
                break;
            }
            let mut cand = best.clone();
            if let (Some(threads), Op::Access { vcpu, .. } | Op::SwitchCr3 { vcpu, .. }) = (&mut cand.threads, &simpler)
            {
                // In a concurrent trace a vCPU's operation moves to that vCPU's thread.
                threads[i] = *vcpu;
            }
            cand.ops[i] = simpler;
            if let Some(t) = judge.fails(&cand) {
                best = t;
            }
        }
        i += 1;
    }
    best
}

/// Simpler variants of an API call: user arguments zeroed, descriptions dropped, bitmap
/// fills cleared.
fn simplify_call(call: &ApiCall) -> Vec<ApiCall> {
    let mut simpler = *call;
    simpler.visit_mut(&mut |o| match o {
        Operand::User(v) | Operand::Fill(v) => *v = 0,
        Operand::Described(b) => *b = false,
        _ => {}
    });
    if simpler == *call {
        Vec::new()
    } else {
        vec![simpler]
    }
}

/// Simpler variants of an operation, simplest first.
fn simplify(op: &Op) -> Vec<Op> {
    let edit = |f: fn(&mut Op)| {
        let mut o = op.clone();
        f(&mut o);
        o
    };
    let mut v = Vec::new();
    match *op {
        Op::Access {
            vcpu,
            size,
            kind,
            value,
            ..
        } => {
            if value != 0 {
                v.push(edit(|o| {
                    if let Op::Access { value, .. } = o {
                        *value = 0
                    }
                }));
            }
            if size != 1 {
                v.push(edit(|o| {
                    if let Op::Access { size, .. } = o {
                        *size = 1
                    }
                }));
            }
            if vcpu != 0 {
                v.push(edit(|o| {
                    if let Op::Access { vcpu, .. } = o {
                        *vcpu = 0
                    }
                }));
            }
            if kind == AccessKind::Exec {
                v.push(edit(|o| {
                    if let Op::Access { kind, .. } = o {
                        *kind = AccessKind::Read
                    }
                }));
            }
        }
        Op::Call(ref call) => v.extend(simplify_call(call).into_iter().map(Op::Call)),
        Op::Map { space, exec, .. } => {
            if space != 0 {
                v.push(edit(|o| {
                    if let Op::Map { space, .. } = o {
                        *space = 0
                    }
                }));
            }
            if exec {
                v.push(edit(|o| {
                    if let Op::Map { exec, .. } = o {
                        *exec = false
                    }
                }));
            }
        }
        Op::SwitchCr3 { vcpu, space } if vcpu != 0 => v.push(Op::SwitchCr3 { vcpu: 0, space }),
        _ => {}
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> Op {
        Op::Call(ApiCall::Create {
            ty: 0,
            user: 0,
            described: false,
        })
    }

    fn call(c: ApiCall) -> Op {
        Op::Call(c)
    }

    #[test]
    fn removing_a_creation_renumbers_later_node_references() {
        let ops = vec![
            create(),
            create(),
            call(ApiCall::Dup { h: 1 }),
            call(ApiCall::RegisterEx {
                h: 2,
                first: 0,
                last: 0xfff,
            }),
            call(ApiCall::Destroy { h: 0 }),
            call(ApiCall::PageTempOffEx { h: PINNED | 1, page: 0 }),
        ];
        let kept = renumber_nodes(&ops, &[], &|i| i == 0);
        assert_eq!(
            kept,
            vec![
                create(),
                call(ApiCall::Dup { h: 0 }),
                call(ApiCall::RegisterEx {
                    h: 1,
                    first: 0,
                    last: 0xfff
                }),
                call(ApiCall::Destroy { h: NO_NODE }),
                call(ApiCall::PageTempOffEx { h: PINNED | 1, page: 0 }),
            ]
        );
        // Removing something that creates nothing changes no reference.
        assert_eq!(renumber_nodes(&ops, &[], &|i| i == 4), keep(&ops, &|i| i == 4));
        // A creation that failed (as the replay says) shifts nothing.
        let created = [false, true, true, false, false, false];
        assert_eq!(renumber_nodes(&ops, &created, &|i| i == 0), keep(&ops, &|i| i == 0));
    }
}
