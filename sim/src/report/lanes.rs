//! The lanes of a concurrent trace's report, derived from the replayed run's timeline
//! ([`crate::observe::Lanes`]): per thread, its operations (began .. ended), the intervals it
//! held the PGM lock, and marks for its lock-free steps (its own, inline inside another
//! thread's operation, or while a synchronous shootdown waited), shootdowns,
//! acknowledgements, preemptions and quiescent points.
//!
//! Positions are on the timeline's step axis, so the lanes line up with the page states and
//! the operation strip: operation `k` begins at `k` (a concurrent trace lists its operations
//! in the order they began), and what happens before the next operation begins is spread
//! evenly, in order, over `k..k+1`. The order of everything in a lane, and across lanes, is
//! exactly the order of the run; only the spacing inside a step is drawn.

use serde_json::{json, Value};

use crate::conc::timeline::{Event, HwStep, Mark, Within};
use crate::observe::{Lanes, Observation};

/// Mark kinds, as the script numbers them.
const MARK_INLINE: u8 = 0;
const MARK_OWN: u8 = 1;
const MARK_FLUSH_WAIT: u8 = 2;
const MARK_ACK: u8 = 3;
const MARK_SHOOTDOWN: u8 = 4;
const MARK_PREEMPT: u8 = 5;
const MARK_QUIESCENT: u8 = 6;

/// Rounded to 1/10000 of a step: exact enough to order marks, small in JSON.
fn x(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn step_code(s: HwStep) -> u8 {
    match s {
        HwStep::Ack => 0,
        HwStep::Begin => 1,
        HwStep::Lookup => 2,
        HwStep::Walk => 3,
        HwStep::Access => 4,
        HwStep::Exited => 5,
    }
}

fn opt(op: Option<u32>) -> i64 {
    op.map_or(-1, i64::from)
}

/// One mark as `[kind, thread, x, step, decision, a, b]` (`a`, `b` by kind; -1 when unused).
fn mark_json(e: &Event, pos: f64) -> Option<Value> {
    let (kind, thread, step, a, b) = match e.mark {
        Mark::Hw { vcpu, op, step, within } => {
            let (kind, b) = match within {
                Within::Own => (MARK_OWN, -1),
                Within::Inline { holder, .. } => (MARK_INLINE, i64::from(holder)),
                Within::FlushWait { requester, .. } => (MARK_FLUSH_WAIT, i64::from(requester)),
            };
            (kind, i64::from(vcpu), opt(op), i64::from(step_code(step)), b)
        }
        Mark::Ack { vcpu } => (MARK_ACK, i64::from(vcpu), -1, -1, -1),
        Mark::Shootdown { thread, op, pending } => (MARK_SHOOTDOWN, i64::from(thread), opt(op), i64::from(pending), -1),
        Mark::Preempt { from, to } => (MARK_PREEMPT, i64::from(to), -1, i64::from(from), -1),
        Mark::Quiescent => (MARK_QUIESCENT, -1, -1, -1, -1),
        _ => return None,
    };
    Some(json!([kind, thread, x(pos), step, e.at, a, b]))
}

/// Intervals `[thread, x0, x1, step]` between an opening and a closing mark of the same
/// thread (and, for operations, the same step); still open at the end: up to `end`.
fn intervals(lanes: &Lanes, pos: &[f64], end: f64, locks: bool) -> Vec<Value> {
    let mut open: Vec<Option<(f64, i64)>> = vec![None; lanes.threads as usize];
    let mut ops: std::collections::BTreeMap<u32, (u8, f64)> = Default::default();
    let mut out = Vec::new();
    for (e, &p) in lanes.events.iter().zip(pos) {
        match (locks, e.mark) {
            (true, Mark::Acquire { thread, op }) => open[thread as usize] = Some((p, opt(op))),
            (true, Mark::Release { thread, .. }) => {
                if let Some((x0, step)) = open[thread as usize].take() {
                    out.push(json!([thread, x(x0), x(p), step]));
                }
            }
            (false, Mark::Begin { thread, op }) => {
                ops.insert(op, (thread, p));
            }
            (false, Mark::End { thread, op }) => {
                if let Some((_, x0)) = ops.remove(&op) {
                    out.push(json!([thread, op, x(x0), x(p), 1]));
                }
            }
            _ => {}
        }
    }
    for (t, o) in open.iter().enumerate() {
        if let Some((x0, step)) = o {
            out.push(json!([t, x(*x0), x(end), step]));
        }
    }
    for (op, (t, x0)) in ops {
        out.push(json!([t, op, x(x0), x(end), 0]));
    }
    out
}

/// The lanes as the script reads them: `threads`, `names`, `vcpus`, `decisions`, `ops`
/// (`[thread, step, x0, x1, completed]`), `locks` (`[thread, x0, x1, step]`) and `marks`
/// (see `mark_json`); `null` for a sequential trace.
pub fn lanes_json(obs: &Observation) -> Value {
    let Some(lanes) = &obs.lanes else { return Value::Null };
    let pos = lanes.positions();
    let end = obs.steps.len() as f64;
    let marks: Vec<Value> = lanes
        .events
        .iter()
        .zip(&pos)
        .filter_map(|(e, &p)| mark_json(e, p))
        .collect();
    json!({
        "threads": lanes.threads,
        "vcpus": lanes.vcpus,
        "names": (0..lanes.threads).map(|t| lanes.thread_name(t)).collect::<Vec<_>>(),
        "decisions": lanes.decisions,
        "ops": intervals(lanes, &pos, end, false),
        "locks": intervals(lanes, &pos, end, true),
        "marks": marks,
    })
}
