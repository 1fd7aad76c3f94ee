//! Progress on a terminal: a bar for long single runs and replays (shown once a run has
//! taken a second, so short runs print nothing extra), and the sweep's bar or periodic lines.
//! Progress goes to standard error and never shapes a run.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::out::errln;
use crate::op::Op;
use crate::run::{Observer, RunReport, Stop};
use crate::sweep::Progress;

/// How long a run goes before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the bar is updated.
const UPDATE_EVERY: Duration = Duration::from_millis(100);

/// A bar over the steps of one run, on a terminal only.
pub(crate) struct StepProgress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_update: Instant,
    shown: bool,
    done: u64,
}

impl StepProgress {
    /// A bar over `total` steps if standard error is a terminal and `quiet` is off.
    pub(crate) fn new(total: u64, quiet: bool) -> StepProgress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed_precise} eta {eta}")
                    .expect("valid template"),
            );
            b
        });
        let now = Instant::now();
        StepProgress {
            bar,
            started: now,
            last_update: now,
            shown: false,
            done: 0,
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for StepProgress {
    fn applied(&mut self, _: &Op) -> Result<(), Stop> {
        self.done += 1;
        let Some(bar) = &self.bar else { return Ok(()) };
        let now = Instant::now();
        if now - self.last_update < UPDATE_EVERY {
            return Ok(());
        }
        self.last_update = now;
        if !self.shown && now - self.started >= SHOW_AFTER {
            self.shown = true;
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_position(self.done);
        Ok(())
    }
}

/// Prints failures as they happen and a progress bar (or periodic lines) on a terminal.
pub(crate) struct SweepProgress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: u64,
    done: AtomicU64,
}

impl SweepProgress {
    /// Progress over `total` seeds; `quiet` (JSON output) prints only failures' absence.
    pub(crate) fn new(total: u64, quiet: bool) -> SweepProgress {
        SweepProgress {
            bar: (std::io::stderr().is_terminal() && !quiet).then(|| {
                let b = ProgressBar::new(total);
                b.set_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed_precise} eta {eta} {msg}")
                        .expect("valid template"),
                );
                b
            }),
            quiet,
            total,
            done: AtomicU64::new(0),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for SweepProgress {
    fn seed_done(&self, seed: u64, failed: Option<&RunReport>) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let every = (self.total / 20).clamp(50, 100_000);
        let failure = failed.and_then(|r| Some((r.signature()?, r.failure.as_ref()?)));
        match (failure, &self.bar) {
            (Some((sig, f)), Some(b)) => b.println(format!("seed {seed}: FAILED ({sig}): {f}")),
            (Some((sig, f)), None) if !self.quiet => errln!("seed {seed}: FAILED ({sig}): {f}"),
            (None, Some(b)) => b.inc(1),
            (None, None) if !self.quiet && (n.is_multiple_of(every) || n == self.total) => {
                errln!("{n}/{} seeds done", self.total)
            }
            _ => {}
        }
    }
}
