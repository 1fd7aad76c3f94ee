//! Schedulers: who moves at each decision point of a concurrent run.
//!
//! There are three kinds of decision point:
//! * **top**: which thread (vCPU or device) takes its next step;
//! * **inline**: at a platform call of a manager operation (before the call takes effect,
//!   and after), whether a lock-free hardware step of another vCPU runs now, and whose;
//! * **flush**: while a synchronous shootdown waits for acknowledgements, which pending
//!   vCPU moves.
//!
//! Every decision is recorded (the chosen thread, or [`NONE`] for "the lock holder goes
//! on"), so a run replays exactly from its recorded schedule. A recorded decision that is
//! not possible any more (a shrinker removed the operation it belonged to) falls back to
//! the default: the thread that moved last keeps moving, else the lowest-numbered one.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::SchedulerKind;

/// "No thread": the lock holder goes on (inline points only).
pub const NONE: u8 = u8::MAX;

/// Highest number of inline steps one preemption point runs.
pub const MAX_INLINE_STEPS: usize = 4;

/// Which kind of decision is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Which thread takes its next step.
    Top,
    /// Whether (and which) vCPU runs a lock-free step inside `holder`'s operation.
    Inline {
        /// The thread running the manager operation.
        holder: u8,
    },
    /// Which pending vCPU moves while a synchronous shootdown waits.
    Flush,
}

/// The default choice: the thread that moved last if it can, else the lowest; `NONE` at
/// inline points.
pub fn default_choice(point: Point, last: u8, candidates: &[u8]) -> u8 {
    match point {
        Point::Inline { .. } => NONE,
        _ if candidates.contains(&last) => last,
        _ => candidates[0],
    }
}

/// The scheduler state of a run (plain data, so a machine stays `Clone`).
#[derive(Debug, Clone)]
pub enum Scheduler {
    /// Uniform random choices.
    Random(ChaCha8Rng),
    /// PCT priorities and change points.
    Pct(Pct),
    /// Replays recorded decisions.
    Replay {
        /// The decisions.
        decisions: Vec<u8>,
        /// The next one.
        at: usize,
    },
    /// Follows `prefix` (choices by candidate position), then the default; records how many
    /// candidates each point had (for a search over schedules).
    Guided {
        /// Candidate positions to take, in order.
        prefix: Vec<u8>,
        /// Decisions made so far.
        at: usize,
        /// For each decision: number of alternatives and whether a non-default choice
        /// there is a preemption.
        branching: Vec<(u8, bool)>,
    },
}

/// PCT's state.
#[derive(Debug, Clone)]
pub struct Pct {
    priority: Vec<u32>,
    /// Decision indices (sorted) at which the thread that moves drops in priority.
    change_points: Vec<u64>,
    next_change: usize,
    decisions: u64,
}

impl Scheduler {
    /// A fresh scheduler of `kind` for `threads` threads and about `horizon` decisions.
    pub fn new(kind: SchedulerKind, seed: u64, threads: usize, horizon: u64) -> Scheduler {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match kind {
            SchedulerKind::Random => Scheduler::Random(rng),
            SchedulerKind::Pct { depth } => {
                let d = depth.max(1) as u32;
                // Distinct initial priorities d.., shuffled; change points lower a thread to
                // 0..d-1, below every initial priority.
                let mut priority: Vec<u32> = (0..threads as u32).map(|i| d + i).collect();
                for i in (1..priority.len()).rev() {
                    priority.swap(i, rng.random_range(0..=i));
                }
                let mut change_points: Vec<u64> = (1..d).map(|_| rng.random_range(0..horizon.max(1))).collect();
                change_points.sort_unstable();
                Scheduler::Pct(Pct {
                    priority,
                    change_points,
                    next_change: 0,
                    decisions: 0,
                })
            }
        }
    }

    /// Picks among `candidates` (ascending thread ids, non-empty except at inline points).
    pub fn pick(&mut self, point: Point, last: u8, candidates: &[u8]) -> u8 {
        match self {
            Scheduler::Random(rng) => random_pick(rng, point, candidates),
            Scheduler::Pct(p) => p.pick(point, candidates),
            Scheduler::Replay { decisions, at } => {
                let d = decisions.get(*at).copied();
                *at += 1;
                match (d, point) {
                    (Some(NONE), Point::Inline { .. }) => NONE,
                    (Some(t), _) if candidates.contains(&t) => t,
                    _ => default_choice(point, last, candidates),
                }
            }
            Scheduler::Guided { prefix, at, branching } => {
                let options = options(point, candidates);
                let default = default_choice(point, last, candidates);
                let choice = match prefix.get(*at) {
                    Some(&i) if (i as usize) < options.len() => options[i as usize],
                    _ => default,
                };
                let preempting = match point {
                    Point::Inline { .. } => true,
                    _ => candidates.contains(&last),
                };
                branching.push((options.len() as u8, preempting));
                *at += 1;
                choice
            }
        }
    }
}

/// The alternatives at a point: the candidates, plus "none" at inline points (first, as
/// the default).
fn options(point: Point, candidates: &[u8]) -> Vec<u8> {
    match point {
        Point::Inline { .. } => std::iter::once(NONE).chain(candidates.iter().copied()).collect(),
        _ => candidates.to_vec(),
    }
}

/// Random choice; at an inline point a lock-free step runs one time in four.
fn random_pick(rng: &mut ChaCha8Rng, point: Point, candidates: &[u8]) -> u8 {
    if candidates.is_empty() {
        return NONE;
    }
    if let Point::Inline { .. } = point {
        if !rng.random_ratio(1, 4) {
            return NONE;
        }
    }
    candidates[rng.random_range(0..candidates.len())]
}

impl Pct {
    /// PCT's rule: the highest-priority thread that can move runs; at a change point the
    /// thread that would run this step (the holder, at an inline point) first drops below
    /// every initial priority. Every decision counts as a step, "the holder goes on" too,
    /// so a change point can fall between any two platform calls of an operation.
    fn pick(&mut self, point: Point, candidates: &[u8]) -> u8 {
        let best = |p: &Pct| candidates.iter().copied().max_by_key(|&t| p.priority[t as usize]);
        let running = match point {
            Point::Inline { holder } => Some(holder),
            _ => best(self),
        };
        while self.change_points.get(self.next_change) == Some(&self.decisions) {
            // Later change points rank lower still.
            let rank = (self.change_points.len() - 1 - self.next_change) as u32;
            if let Some(t) = running {
                self.priority[t as usize] = rank;
            }
            self.next_change += 1;
        }
        self.decisions += 1;
        match (point, best(self)) {
            (Point::Inline { holder }, Some(t)) if self.priority[t as usize] > self.priority[holder as usize] => t,
            (Point::Inline { .. }, _) | (_, None) => NONE,
            (_, Some(t)) => t,
        }
    }
}
