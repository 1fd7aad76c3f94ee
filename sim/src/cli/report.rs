//! `pgmsim report TRACE -o report.html`, the report a failing `run` / `sweep` writes next to
//! the minimised trace, and `sweep --report`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::args::CheckArg;
use crate::check::CheckMode;
use crate::coverage::Coverage;
use crate::observe::Observation;
use crate::report::{self, SweepFailure, SweepSummary};
use crate::trace::Trace;

/// `pgmsim report` flags.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Trace file.
    pub(crate) trace: PathBuf,
    /// Output file (default: TRACE with `.html`).
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Check mode (default: the trace's own).
    #[arg(long, value_enum)]
    pub(crate) check: Option<CheckArg>,
}

/// Observes `trace` and writes its report to `out` (a concurrent trace's with one lane per
/// thread, from its replayed schedule); returns the observation.
pub(crate) fn write_trace_report(
    trace: &Trace,
    check: CheckMode,
    title: &str,
    out: &Path,
) -> Result<Observation, String> {
    let obs = Observation::of(trace, check)?;
    let html = report::trace_report(&obs, title);
    std::fs::write(out, html).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(obs)
}

/// `pgmsim report`.
pub(crate) fn report(a: ReportArgs) -> i32 {
    let trace = match Trace::load(&a.trace) {
        Ok(t) => t,
        Err(e) => {
            super::out::errln!("pgmsim: {e}");
            return 2;
        }
    };
    let out = a.output.clone().unwrap_or_else(|| a.trace.with_extension("html"));
    let check = a.check.map_or(trace.check, CheckMode::from);
    let title = format!("pgmsim report: {}", a.trace.display());
    match write_trace_report(&trace, check, &title, &out) {
        Ok(obs) => {
            let verdict = match &obs.failure {
                Some(f) => format!("fails: {}", f.failure),
                None => "every invariant held".to_string(),
            };
            super::out::outln!(
                "report written to {} ({} steps; {verdict})",
                out.display(),
                obs.steps.len()
            );
            0
        }
        Err(e) => {
            super::out::errln!("pgmsim: {e}");
            2
        }
    }
}

/// `href` of `file` as seen from the report at `report`: relative when the file lies under
/// the report's directory, else the path as given.
pub(crate) fn href(report: &Path, file: &Path) -> String {
    let dir = report.parent().unwrap_or(Path::new(""));
    let rel = if dir.as_os_str().is_empty() {
        Some(file)
    } else {
        file.strip_prefix(dir).ok()
    };
    rel.unwrap_or(file).display().to_string()
}

/// Writes the sweep report to `path`.
pub(crate) fn write_sweep_report(
    path: &Path,
    summary: &SweepSummary,
    cov: &Coverage,
    failures: &[SweepFailure],
) -> Result<(), String> {
    let html = report::sweep_page(summary, cov, failures);
    std::fs::write(path, html).map_err(|e| format!("{}: {e}", path.display()))
}
