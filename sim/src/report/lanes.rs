//! The optional concurrency data of a trace: which thread ran each step and whether it held
//! the PGM lock. The report draws one lane per thread under the timeline when it is present.
//!
//! This is the input the concurrent world fills once traces carry a schedule; until then it
//! comes from a JSON file (`pgmsim report TRACE --lanes LANES.json`), e.g.
//! `{"threads": 2, "per_step": [[0, true], [1, false], [0, false]]}`.

use serde::{Deserialize, Serialize};

/// One lane per thread: the schedule and where the lock was held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneData {
    /// Number of threads (one lane each), at least 1.
    pub threads: u32,
    /// For every step of the trace, in order: `(thread that ran it, whether it held the PGM
    /// lock during the step)`. A held lock followed by a step that does not hold it is drawn
    /// as a release.
    pub per_step: Vec<(u32, bool)>,
}

impl LaneData {
    /// Checks the data fits a trace of `steps` steps: one entry per step, threads in range.
    pub fn validate(&self, steps: usize) -> Result<(), String> {
        if self.threads == 0 || self.threads > 1024 {
            return Err(format!("threads must be 1..=1024, not {}", self.threads));
        }
        if self.per_step.len() != steps {
            return Err(format!(
                "per_step has {} entries, the trace has {steps} steps",
                self.per_step.len()
            ));
        }
        if let Some((i, (t, _))) = self.per_step.iter().enumerate().find(|(_, (t, _))| *t >= self.threads) {
            return Err(format!("step {i}: thread {t} of {} threads", self.threads));
        }
        Ok(())
    }
}
