//! The step log of a concurrent trace: the run's timeline in order, one line per thing that
//! happened, each stamped `[dN]` with the scheduler decisions taken before it. An operation
//! begins and ends on its thread (the end carries its result, platform events and page
//! changes); between them, indented, what happened inside operations: the PGM lock taken and
//! released, lock-free vCPU steps run inline in another thread's operation, shootdowns and
//! the steps run while they waited, acknowledgements; preemptions and quiescent points at
//! the top level.

use std::fmt::Write as _;

use crate::conc::timeline::{HwStep, Mark, Within};
use crate::describe::op_line;
use crate::observe::{Lanes, Observation};

/// Renders the events of steps `from..=to` (those from the beginning of step `from` to the
/// beginning of step `to + 1`, and the ends of the steps in range wherever they fall).
pub fn render(out: &mut String, obs: &Observation, lanes: &Lanes, from: usize, to: usize) {
    let names: Vec<String> = (0..lanes.threads).map(|t| lanes.thread_name(t)).collect();
    let _ = writeln!(
        out,
        "threads: {}; {} scheduler decisions ([dN]: N decisions taken before the line)",
        names.join(", "),
        lanes.decisions
    );
    let last = obs.steps.len().saturating_sub(1);
    let to = to.min(last);
    if obs.steps.is_empty() || from > to {
        let _ = writeln!(
            out,
            "no steps in {from}..={to} ({} steps in the trace)",
            obs.steps.len()
        );
        return;
    }
    let _ = writeln!(out, "steps {from}..={to} of 0..={last}\n");
    let mut ended = vec![false; obs.steps.len()];
    for (e, pos) in lanes.events.iter().zip(lanes.positions()) {
        let in_range = (from as f64..(to + 1) as f64).contains(&pos) || (from == 0 && pos == 0.0);
        let end_in_range = matches!(e.mark, Mark::End { op, .. } if (from..=to).contains(&(op as usize)));
        if !(in_range || end_in_range) {
            continue;
        }
        if let Mark::End { op, .. } = e.mark {
            if let Some(done) = ended.get_mut(op as usize) {
                *done = true;
            }
        }
        line(out, e.at, e.mark, obs, &names);
    }
    for (i, s) in obs.steps.iter().enumerate().take(to + 1).skip(from) {
        if !ended[i] {
            let t = s
                .thread
                .map_or("?", |t| names.get(t as usize).map_or("?", |n| n.as_str()));
            let why = if obs.failing == Some(i) {
                "FAILED (below)"
            } else {
                "did not complete (the run stopped at the failure)"
            };
            let _ = writeln!(out, "step {i} on {t}: {}\n  result: {why}", op_line(&s.op, &obs.config));
            super::details(out, s, obs);
        }
    }
}

/// One event's line (and, for an operation's end, its details).
fn line(out: &mut String, at: u64, mark: Mark, obs: &Observation, names: &[String]) {
    let name = |t: u8| names.get(t as usize).map_or("?", |n| n.as_str());
    let step = |op: Option<u32>| op.map_or_else(|| "no operation".to_string(), |o| format!("step {o}"));
    let op_text = |o: u32| {
        obs.steps
            .get(o as usize)
            .map_or_else(String::new, |s| op_line(&s.op, &obs.config))
    };
    let text = match mark {
        Mark::Begin { thread, op } => format!("step {op} begins on {}: {}", name(thread), op_text(op)),
        Mark::End { thread, op } => {
            let _ = writeln!(out, "[d{at}] step {op} ends on {}: {}", name(thread), op_text(op));
            if let Some(s) = obs.steps.get(op as usize) {
                match &s.result {
                    Some(r) => {
                        let _ = writeln!(out, "  result: {}", crate::describe::result_line(r));
                    }
                    None => out.push_str("  result: FAILED (below)\n"),
                }
                super::details(out, s, obs);
            }
            return;
        }
        Mark::Acquire { thread, op } => format!("  {} takes the PGM lock ({})", name(thread), step(op)),
        Mark::Release { thread, op } => format!("  {} releases the PGM lock ({})", name(thread), step(op)),
        Mark::Preempt { from, to } => format!("preemption: {} runs, {} could have gone on", name(to), name(from)),
        Mark::Hw {
            vcpu,
            op,
            step: s,
            within,
        } => hw_line(name(vcpu), &step(op), s, within, &name),
        Mark::Shootdown { thread, op, pending } => {
            let owed: Vec<&str> = (0..16u8).filter(|v| pending & (1 << v) != 0).map(name).collect();
            let owed = if owed.is_empty() {
                "every vCPU was in the VMM and flushed at once".to_string()
            } else {
                format!("{} must acknowledge", owed.join(", "))
            };
            format!("  {} requests a TLB shootdown ({}); {owed}", name(thread), step(op))
        }
        Mark::Ack { vcpu } => format!("  {} flushes its TLB: shootdown acknowledged", name(vcpu)),
        Mark::Quiescent => "quiescent point: no lock, no shootdown, no access in flight; invariants checked".into(),
    };
    let _ = writeln!(out, "[d{at}] {text}");
}

/// A lock-free step's line: whose, for which operation, and inside what it ran.
fn hw_line<'n>(vcpu: &str, step: &str, s: HwStep, within: Within, name: &dyn Fn(u8) -> &'n str) -> String {
    let what = format!("{vcpu} {} ({step})", s.verb());
    match within {
        Within::Own => what,
        Within::Inline { holder, op } => {
            let inside = op.map_or_else(|| name(holder).to_string(), |o| format!("step {o} of {}", name(holder)));
            format!("  inline in {inside}: {what}")
        }
        Within::FlushWait { requester, op } => {
            let inside = op.map_or_else(
                || name(requester).to_string(),
                |o| format!("step {o} of {}", name(requester)),
            );
            format!("  while {inside} waits for its shootdown: {what}")
        }
    }
}
