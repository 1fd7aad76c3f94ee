//! What a user sees of a failure: the invariant and the step (numbered from 0, as the
//! trace's `ops` list is), the failing operation, the checker's expected-versus-actual
//! detail, the traces written (full and minimised) and the commands that replay them — as
//! an installed `pgmsim` and from a checkout.

use std::path::{Path, PathBuf};

use super::out::errln;
use crate::check::{Failure, Invariant};
use crate::run::RunReport;
use crate::shrink::shrink as shrink_trace;
use crate::trace::Trace;

/// The traces written for one failure.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// The full trace.
    pub(crate) trace: PathBuf,
    /// Its steps.
    pub(crate) steps: usize,
    /// The minimised trace and its steps, if the failure reproduced.
    pub(crate) minimised: Option<(PathBuf, usize)>,
}

/// The invariant's name as JSON and signatures spell it (`translation_safety`).
pub(crate) fn invariant_name(i: Invariant) -> String {
    serde_json::to_value(i)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{i:?}"))
}

/// Where a failure happened, in words: `step 17 (ops[17] of the trace)`.
pub(crate) fn where_(f: &Failure, steps: u64) -> String {
    match f.invariant {
        Invariant::Setup => "while building the world (before step 0)".into(),
        _ if f.step >= steps => format!(
            "in the final full check after the last step (step {})",
            steps.saturating_sub(1)
        ),
        _ => format!("at step {} (steps count from 0: ops[{}] of the trace)", f.step, f.step),
    }
}

/// Prints the failure of a run: what broke, where, the operation, expected versus actual.
pub(crate) fn print(r: &RunReport) {
    let Some(f) = &r.failure else { return };
    let seed = r.seed.map(|s| format!(" (seed {s})")).unwrap_or_default();
    errln!(
        "FAILURE{seed}: invariant {} {}",
        invariant_name(f.invariant),
        where_(f, r.steps)
    );
    if let Some(op) = r.failing_op() {
        errln!("  failing operation: {}", serde_json::to_string(op).unwrap_or_default());
    }
    errln!("  expected vs actual: {}", f.detail);
    errln!("  config: {}", r.config.summary());
}

/// The two ways to run a `pgmsim` subcommand: installed (`cargo install --path sim`) and
/// from a checkout.
pub(crate) fn hint(what: &str, args: &str) {
    errln!("  {what} with: pgmsim {args}");
    errln!("    (from a checkout without installing: cargo run --release -p pgmsim-sim -- {args})");
}

/// Writes `r`'s trace to `out/NAME.json` and its minimised form to `out/NAME.min.json`,
/// printing where; `None` (after printing why) when the trace could not be written.
pub(crate) fn write(r: &RunReport, out: &Path, name: &str, budget: u64) -> Option<Written> {
    let full = out.join(format!("{name}.json"));
    let trace = r.trace();
    if let Err(e) = trace.save(&full) {
        errln!("  could not write {}: {e}", full.display());
        return None;
    }
    errln!("  trace: {} ({} steps)", full.display(), trace.ops.len());
    let mut written = Written {
        trace: full,
        steps: trace.ops.len(),
        minimised: None,
    };
    let min = out.join(format!("{name}.min.json"));
    match shrink_trace(&trace, budget) {
        Some(s) => match s.trace.save(&min) {
            Ok(()) => {
                errln!(
                    "  minimised: {} ({} steps, {} replays; {})",
                    min.display(),
                    s.trace.ops.len(),
                    s.replays,
                    describe(&s.trace)
                );
                hint("replay", &format!("replay {} --log", min.display()));
                if s.trace
                    .failure
                    .as_ref()
                    .is_some_and(crate::run::watchdog::declared_by_watchdog)
                {
                    // Its report would replay the hang unwatched.
                    written.minimised = Some((min, s.trace.ops.len()));
                    return Some(written);
                }
                let html = out.join(format!("{name}.min.html"));
                let title = format!("pgmsim report: {}", min.display());
                match super::report::write_trace_report(&s.trace, s.trace.check, &title, &html) {
                    Ok(_) => errln!("  report: {}", html.display()),
                    Err(e) => errln!("  could not write the report: {e}"),
                }
                written.minimised = Some((min, s.trace.ops.len()));
            }
            Err(e) => errln!("  could not write {}: {e}", min.display()),
        },
        None => errln!("  (the failure did not reproduce on replay: nondeterminism?)"),
    }
    Some(written)
}

/// A trace's recorded failure in one line.
fn describe(t: &Trace) -> String {
    match &t.failure {
        Some(f) => format!(
            "invariant {} {}",
            invariant_name(f.invariant),
            where_(f, t.ops.len() as u64)
        ),
        None => "no failure".into(),
    }
}
