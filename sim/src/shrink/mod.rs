//! Shrinking: a failing trace is minimised to one that fails the same invariant: truncate
//! after the failing step, delta-debug the operation list, simplify operands one at a time,
//! then shrink the configuration to what the failure needs (`config`). Every candidate is
//! judged by replaying it; candidates that are not valid traces are never replayed.

mod config;

use pgmsim_testkit::ApiCall;

use crate::check::{CheckMode, Invariant};
use crate::op::{AccessKind, Op};
use crate::run::replay;
use crate::trace::Trace;

/// Outcome of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The minimised trace (it still fails the same invariant).
    pub trace: Trace,
    /// Replays spent.
    pub replays: u64,
}

struct Judge {
    invariant: Invariant,
    check: CheckMode,
    replays: u64,
    budget: u64,
}

impl Judge {
    /// The candidate's own replay as a trace, if it fails the same invariant (a concurrent
    /// trace comes back with the threads and schedule that replay took).
    fn fails(&mut self, t: &Trace) -> Option<Trace> {
        if self.replays >= self.budget || t.validate().is_err() {
            return None;
        }
        self.replays += 1;
        let r = replay(t, self.check);
        match &r.failure {
            Some(f) if f.invariant == self.invariant => Some(r.trace()),
            _ => None,
        }
    }
}

/// Removes steps `range` (and, in a concurrent trace, their threads).
fn remove_ops(t: &mut Trace, range: std::ops::Range<usize>) {
    if let Some(threads) = &mut t.threads {
        threads.drain(range.start.min(threads.len())..range.end.min(threads.len()));
    }
    t.ops.drain(range);
}

/// Minimises `trace`, which must fail when replayed; `None` if it does not.
///
/// Candidates that panic are judged like any other failure (the run loop turns panics into
/// [`Invariant::Panic`]); the default panic hook is silenced meanwhile so a shrink of a panic
/// does not print thousands of backtraces.
pub fn shrink(trace: &Trace, budget: u64) -> Option<Shrunk> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = shrink_quietly(trace, budget);
    std::panic::set_hook(previous);
    result
}

fn shrink_quietly(trace: &Trace, budget: u64) -> Option<Shrunk> {
    let first = replay(trace, trace.check);
    let failure = first.failure.as_ref()?;
    let mut judge = Judge {
        invariant: failure.invariant,
        check: trace.check,
        replays: 1,
        budget,
    };
    let mut best = first.trace();

    // Delta debugging over operations: remove chunks, halving the chunk size.
    let mut chunk = best.ops.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < best.ops.len() {
            let mut cand = best.clone();
            let end = (i + chunk).min(cand.ops.len());
            remove_ops(&mut cand, i..end);
            match judge.fails(&cand) {
                Some(t) => best = t,
                None => i += chunk,
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }

    // Operand simplification (a simpler step may fail earlier: the trace can shrink under it).
    let mut i = 0;
    while i < best.ops.len() {
        for simpler in simplify(&best.ops[i]) {
            if i >= best.ops.len() {
                break;
            }
            let mut cand = best.clone();
            cand.ops[i] = simpler;
            if let Some(t) = judge.fails(&cand) {
                best = t;
            }
        }
        i += 1;
    }

    best = config::shrink(best, &mut |cand| judge.fails(cand));
    Some(Shrunk {
        trace: best,
        replays: judge.replays,
    })
}

/// Simpler variants of an API call: user arguments zeroed, descriptions dropped.
fn simplify_call(call: &ApiCall) -> Vec<ApiCall> {
    let mut simpler = call.clone();
    match &mut simpler {
        ApiCall::Register { user, described, .. } | ApiCall::Create { user, described, .. } => {
            *user = 0;
            *described = false;
        }
        ApiCall::ChangeUserArg { user, .. } => *user = 0,
        ApiCall::ResetMmio2WithBitmap { fill, .. } => *fill = 0,
        _ => {}
    }
    if simpler == *call {
        Vec::new()
    } else {
        vec![simpler]
    }
}

/// Simpler variants of an operation, simplest first.
fn simplify(op: &Op) -> Vec<Op> {
    let mut v = Vec::new();
    match *op {
        Op::Access {
            vcpu,
            va,
            size,
            kind,
            value,
        } => {
            if value != 0 {
                v.push(Op::Access {
                    vcpu,
                    va,
                    size,
                    kind,
                    value: 0,
                });
            }
            if size != 1 {
                v.push(Op::Access {
                    vcpu,
                    va,
                    size: 1,
                    kind,
                    value,
                });
            }
            if vcpu != 0 {
                v.push(Op::Access {
                    vcpu: 0,
                    va,
                    size,
                    kind,
                    value,
                });
            }
            if kind == AccessKind::Exec {
                v.push(Op::Access {
                    vcpu,
                    va,
                    size,
                    kind: AccessKind::Read,
                    value,
                });
            }
        }
        Op::Call(ref call) => v.extend(simplify_call(call).into_iter().map(Op::Call)),
        Op::Map {
            space,
            vpi,
            gp,
            write,
            exec,
        } => {
            if space != 0 {
                v.push(Op::Map {
                    space: 0,
                    vpi,
                    gp,
                    write,
                    exec,
                });
            }
            if exec {
                v.push(Op::Map {
                    space,
                    vpi,
                    gp,
                    write,
                    exec: false,
                });
            }
        }
        Op::SwitchCr3 { vcpu, space } if vcpu != 0 => v.push(Op::SwitchCr3 { vcpu: 0, space }),
        _ => {}
    }
    v
}
