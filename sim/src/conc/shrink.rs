//! Shrinking a concurrent trace beyond its operations: fewer threads, fewer preemptions.
//!
//! In order: try the trace as a sequential one (a failure that needs no interleaving is not
//! a race); drop threads left without operations, renumbering the others (fewer vCPUs, one
//! device thread); then delta-debug the schedule — removing decisions makes the replay fall
//! back to the default, non-preemptive choice, so every removal that still fails removes a
//! preemption or a step of needless interleaving.

use super::sched::{self, Move};
use crate::op::Op;
use crate::shrink::Judge;
use crate::trace::{Schedule, Trace};

/// The trace as a sequential one (its operations in start order, every step atomic), if
/// that fails the same way: the failure needs no interleaving.
pub(crate) fn try_sequential(best: Trace, judge: &mut Judge) -> Trace {
    let mut sequential = best.clone();
    sequential.config.concurrency = None;
    sequential.threads = None;
    sequential.schedule = None;
    judge.fails(&sequential).unwrap_or(best)
}

/// Removes every operation of one thread at a time (a race usually needs two or three
/// threads of many; removing them one operation at a time would take far longer).
pub(crate) fn drop_threads(mut best: Trace, judge: &mut Judge) -> Trace {
    let threads = best.config.vcpus + best.config.concurrency.map_or(0, |c| c.devices);
    for t in (0..threads).rev() {
        let owners = best.threads.clone().unwrap_or_default();
        if !owners.contains(&t) {
            continue;
        }
        let cand = judge.without(&best, &|i| owners.get(i) == Some(&t));
        if let Some(shrunk) = judge.fails(&cand) {
            best = shrunk;
        }
    }
    best
}

/// Minimises a failing concurrent trace's threads and schedule.
pub(crate) fn shrink_concurrency(best: Trace, judge: &mut Judge) -> Trace {
    let best = merge_vcpus(best, judge);
    let best = drop_idle_threads(best, judge);
    shrink_schedule(best, judge)
}

/// Moves every operation of the highest vCPU in use to a lower one, while that still fails:
/// a race that needs two vCPUs rarely needs a third.
fn merge_vcpus(mut best: Trace, judge: &mut Judge) -> Trace {
    loop {
        let threads = best.threads.clone().unwrap_or_default();
        let Some(&from) = threads.iter().filter(|&&t| t < best.config.vcpus).max() else {
            return best;
        };
        let merged = (0..from).find_map(|to| judge.fails(&with_ops_moved(&best, from, to)));
        match merged {
            Some(t) => best = t,
            None => return best,
        }
    }
}

/// Moves every operation of one vCPU to another one (any pair, the highest vCPU first),
/// searching a failing schedule again for each candidate ([`Judge::fails_rescheduled`]):
/// the vCPU left idle then goes ([`shrink_concurrency`]).
pub(crate) fn merge_vcpus_rescheduled(mut best: Trace, judge: &mut Judge) -> Trace {
    'again: loop {
        let threads = best.threads.clone().unwrap_or_default();
        let mut used: Vec<u8> = threads.iter().copied().filter(|&t| t < best.config.vcpus).collect();
        used.sort_unstable();
        used.dedup();
        for &from in used.iter().rev() {
            for &to in used.iter().filter(|&&to| to != from) {
                if let Some(t) = judge.fails_rescheduled(&with_ops_moved(&best, from, to)) {
                    best = t;
                    continue 'again;
                }
            }
        }
        return best;
    }
}

/// `trace` with every operation of vCPU `from` run by vCPU `to` instead.
fn with_ops_moved(trace: &Trace, from: u8, to: u8) -> Trace {
    let mut cand = trace.clone();
    let threads = cand.threads.get_or_insert_with(Vec::new);
    for (t, op) in threads.iter_mut().zip(cand.ops.iter_mut()) {
        if *t == from {
            *t = to;
            set_vcpu(op, &|_| to);
        }
    }
    cand
}

/// Renames the vCPU an operation names (accesses and address-space switches do).
fn set_vcpu(op: &mut Op, f: &dyn Fn(u8) -> u8) {
    if let Op::Access { vcpu, .. } | Op::SwitchCr3 { vcpu, .. } = op {
        *vcpu = f(*vcpu);
    }
}

/// Removes idle threads (running no operation), one at a time, while that still fails.
fn drop_idle_threads(mut best: Trace, judge: &mut Judge) -> Trace {
    while let Some(t) = judge.fails_any(idle_thread_removals(&best)) {
        best = t;
    }
    best
}

/// `trace` without each of its idle threads (a device thread when there are two, any vCPU
/// while more than two are left), threads, operations and schedule renumbered.
fn idle_thread_removals(trace: &Trace) -> Vec<Trace> {
    let Some(c) = trace.config.concurrency else {
        return Vec::new();
    };
    let vcpus = trace.config.vcpus;
    let threads = trace.threads.as_deref().unwrap_or_default();
    let mut gone: Vec<u8> = Vec::new();
    if c.devices == 2 && !threads.contains(&(vcpus + 1)) {
        gone.push(vcpus + 1);
    }
    if vcpus > 2 {
        gone.extend((0..vcpus).rev().filter(|v| !threads.contains(v)));
    }
    gone.into_iter().map(|g| without_thread(trace, g)).collect()
}

/// `trace` without idle thread `gone`: later threads (and the vCPUs operations and moves
/// name) are renumbered.
fn without_thread(trace: &Trace, gone: u8) -> Trace {
    let mut cand = trace.clone();
    let vcpus = trace.config.vcpus;
    if let Some(conc) = cand.config.concurrency.as_mut().filter(|_| gone >= vcpus) {
        conc.devices -= 1;
    } else {
        cand.config.vcpus -= 1;
    }
    let renumber = |t: u8| if t > gone { t - 1 } else { t };
    if let Some(threads) = cand.threads.as_mut() {
        threads.iter_mut().for_each(|t| *t = renumber(*t));
    }
    cand.ops.iter_mut().for_each(|op| set_vcpu(op, &renumber));
    // A vCPU named by itself in the schedule is renumbered; the one that goes has nothing
    // to acknowledge any more.
    let rename = |m: Move| match sched::vcpu_of(m) {
        Some(v) if v == gone => sched::defaulted(m),
        Some(v) => sched::with_vcpu(m, renumber(v)),
        None => m,
    };
    let decisions = cand.schedule.as_ref().map(Schedule::decode).unwrap_or_default();
    cand.schedule = Some(Schedule::encode(&decisions.into_iter().map(rename).collect::<Vec<_>>()));
    cand
}

/// Delta debugging over the schedule's preemptions: chunks of them become the default
/// choice, halving the chunk size; a candidate counts when its replay has fewer.
fn shrink_schedule(mut best: Trace, judge: &mut Judge) -> Trace {
    let mut chunk = preemption_points(&best).len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        loop {
            let at = preemption_points(&best);
            if i >= at.len() {
                break;
            }
            let mut d = best.schedule.as_ref().map(Schedule::decode).unwrap_or_default();
            for &k in &at[i..(i + chunk).min(at.len())] {
                d[k] = sched::defaulted(d[k]);
            }
            let mut cand = best.clone();
            cand.schedule = Some(Schedule::encode(&d));
            match judge.fails(&cand) {
                Some(t) if preemption_points(&t).len() < at.len() => best = t,
                _ => i += chunk,
            }
        }
        if chunk == 1 {
            return best;
        }
        chunk = chunk.div_ceil(2);
    }
}

/// Where a trace's schedule preempts: top decisions that move another thread than the
/// previous top decision, and inline or flush decisions other than the default.
fn preemption_points(t: &Trace) -> Vec<usize> {
    let moves = t.schedule.as_ref().map(Schedule::decode).unwrap_or_default();
    let threads = t.threads.as_deref().unwrap_or_default();
    let mut last: Option<u8> = None;
    let mut points = Vec::new();
    for (i, &m) in moves.iter().enumerate() {
        if sched::is_local(m) {
            if !sched::is_default(m) {
                points.push(i);
            }
            continue;
        }
        let thread = match (sched::op_of(m), sched::vcpu_of(m)) {
            (Some(op), _) => threads.get(op as usize).copied(),
            (_, Some(v)) => Some(v),
            _ => last,
        };
        if last.is_some() && thread != last {
            points.push(i);
        }
        last = thread.or(last);
    }
    points
}

/// Preemptions a trace's schedule spells out (see [`preemption_points`]).
pub(crate) fn preemptions(t: &Trace) -> usize {
    preemption_points(t).len()
}
