//! Watching a run step by step: the observer interface, and the time limit.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::op::Op;

/// Why a run stopped before its last step without a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `--max-time` ran out.
    MaxTime,
    /// The observer could not keep up its side (a trace file could not be written).
    Output,
}

/// Sees every step as it is applied (failing or not), in order.
pub trait Observer {
    /// Step `op` was applied; `Err` stops the run after it.
    fn applied(&mut self, op: &Op) -> Result<(), Stop>;
}

/// Watches nothing.
impl Observer for () {
    fn applied(&mut self, _: &Op) -> Result<(), Stop> {
        Ok(())
    }
}

/// An observer lent out.
impl<O: Observer + ?Sized> Observer for &mut O {
    fn applied(&mut self, op: &Op) -> Result<(), Stop> {
        (**self).applied(op)
    }
}

/// Both, in order; the first stop wins.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn applied(&mut self, op: &Op) -> Result<(), Stop> {
        self.0.applied(op)?;
        self.1.applied(op)
    }
}

/// Stops a run (or a sweep) at a wall-clock deadline. The clock only bounds how long the
/// work takes; what ran is reported as incomplete, never mixed into a result that claims to
/// be the seed's.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Option<Instant>,
    countdown: u32,
}

/// Steps between two looks at the clock.
const CLOCK_EVERY: u32 = 64;

impl Deadline {
    /// `max` from now (`None`: never).
    pub fn after(max: Option<Duration>) -> Deadline {
        Deadline {
            at: max.map(|d| Instant::now() + d),
            countdown: 0,
        }
    }

    /// Whether the deadline has passed (looks at the clock every time).
    pub fn passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }
}

impl Observer for Deadline {
    fn applied(&mut self, _: &Op) -> Result<(), Stop> {
        if self.at.is_none() {
            return Ok(());
        }
        if self.countdown == 0 {
            self.countdown = CLOCK_EVERY;
            if self.passed() {
                return Err(Stop::MaxTime);
            }
        }
        self.countdown -= 1;
        Ok(())
    }
}
