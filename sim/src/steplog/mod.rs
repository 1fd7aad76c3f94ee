//! The step log of an observed trace (`pgmsim replay TRACE --log`): for each step the
//! operation, its result, the platform events and every page whose descriptor changed
//! (before -> after), addresses in hex, in the shared renderer's words; a failure ends it
//! with what the check found and the page maps of both sides around it. A concurrent trace's
//! log follows its run's timeline instead (`concurrent.rs`): each step names its thread, and
//! lock acquisitions and releases, inline accesses, shootdowns and their waits appear where
//! they happened.

mod concurrent;

use std::fmt::Write as _;

use pgmsim_testkit::render::{self, event_line, page_change_lines, LEGEND};

use crate::describe::{op_line, result_line};
use crate::observe::{Observation, StepRecord, FAILURE_WINDOW_PAGES};

/// Renders steps `from..=to` (clamped to the trace) of `obs`, then its failure, if any.
pub fn render(obs: &Observation, from: usize, to: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "world: {}", obs.config.summary());
    if let Some(lanes) = &obs.lanes {
        concurrent::render(&mut out, obs, lanes, from, to);
        failure(&mut out, obs);
        return out;
    }
    let last = obs.steps.len().saturating_sub(1);
    let to = to.min(last);
    if obs.steps.is_empty() || from > to {
        let _ = writeln!(
            out,
            "no steps in {from}..={to} ({} steps in the trace)",
            obs.steps.len()
        );
    } else {
        let _ = writeln!(out, "steps {from}..={to} of 0..={last}");
        for (i, s) in obs.steps.iter().enumerate().take(to + 1).skip(from) {
            step(&mut out, i, s, obs);
        }
    }
    failure(&mut out, obs);
    out
}

fn step(out: &mut String, i: usize, s: &StepRecord, obs: &Observation) {
    let _ = writeln!(out, "\nstep {i}: {}", op_line(&s.op, &obs.config));
    match &s.result {
        Some(r) => {
            let _ = writeln!(out, "  result: {}", result_line(r));
        }
        None => out.push_str("  result: FAILED (below)\n"),
    }
    details(out, s, obs);
}

/// A step's platform events, page changes and handler changes.
fn details(out: &mut String, s: &StepRecord, obs: &Observation) {
    section(out, "events", s.events.iter().map(event_line));
    section(
        out,
        "pages",
        page_change_lines(s.pages.iter().copied(), &obs.hosts).into_iter(),
    );
    if !s.handlers.is_empty() {
        section(out, "handlers", s.handlers.iter().cloned());
    }
}

/// `  name: first` then the other lines aligned under it; `  name: none` when empty.
fn section(out: &mut String, name: &str, lines: impl Iterator<Item = String>) {
    let pad = " ".repeat(name.len() + 4);
    let mut any = false;
    for (k, line) in lines.enumerate() {
        any = true;
        if k == 0 {
            let _ = writeln!(out, "  {name}: {line}");
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    if !any {
        let _ = writeln!(out, "  {name}: none");
    }
}

fn failure(out: &mut String, obs: &Observation) {
    let Some(f) = &obs.failure else {
        out.push_str("\nevery invariant held\n");
        return;
    };
    let at = match obs.failing_step() {
        Some(i) => format!("at step {i}"),
        None if obs.lanes.is_some() => "outside every operation (a quiescent point's checks or the final check)".into(),
        None => format!(
            "in the final full check after step {}",
            obs.steps.len().saturating_sub(1)
        ),
    };
    let _ = writeln!(out, "\nFAILED {at}: invariant {:?}", f.failure.invariant);
    let _ = writeln!(out, "  expected vs actual: {}", f.failure.detail);
    if f.production.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  page map around {} ({FAILURE_WINDOW_PAGES} pages), production (actual):",
        render::addr(f.window)
    );
    out.push_str(&f.production);
    out.push_str("  model (expected):\n");
    out.push_str(&f.model);
    let diff = differing_pages(&f.production, &f.model);
    if !diff.is_empty() {
        let _ = writeln!(out, "  the maps differ on the lines of {}", diff.join(", "));
    }
    out.push_str(LEGEND);
    out.push('\n');
}

/// The line addresses where two page maps of the same window differ.
fn differing_pages(a: &str, b: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut addr = "";
    for (x, y) in a.lines().zip(b.lines()) {
        if let Some(a) = x.split_whitespace().next().filter(|w| w.starts_with("0x")) {
            addr = a;
        }
        if x != y && !out.iter().any(|o| o == addr) {
            out.push(addr.to_string());
        }
    }
    out
}
