//! `--log` of `run` and `replay`: the step log of the run, optionally limited to a range of
//! steps.

use clap::Args;

use crate::check::CheckMode;
use crate::observe::Observation;
use crate::trace::Trace;

/// The step-log flags.
#[derive(Debug, Args, Clone)]
pub(crate) struct LogArgs {
    /// Print a step log: each step's operation, result, platform events and the pages whose
    /// descriptor changed (before -> after), addresses in hex; a failure ends it with expected
    /// versus actual and the page maps around it. A concurrent trace's log follows its
    /// schedule: threads named, the PGM lock, inline steps and shootdown waits where they
    /// happened.
    #[arg(long, conflicts_with = "json")]
    pub(crate) log: bool,
    /// First step of the log (0-based).
    #[arg(long, requires = "log")]
    pub(crate) from: Option<usize>,
    /// Last step of the log (inclusive).
    #[arg(long, requires = "log")]
    pub(crate) to: Option<usize>,
}

impl LogArgs {
    /// Prints the log of `trace` if `--log` was given (exit code 2 when it cannot be logged).
    pub(crate) fn print(&self, trace: &Trace, check: CheckMode) -> Result<(), i32> {
        if !self.log {
            return Ok(());
        }
        let obs = Observation::of(trace, check).map_err(|e| {
            super::out::errln!("pgmsim: --log: {e}");
            2
        })?;
        let text = crate::steplog::render(&obs, self.from.unwrap_or(0), self.to.unwrap_or(usize::MAX));
        super::out::outln!("{}", text.trim_end());
        Ok(())
    }
}
