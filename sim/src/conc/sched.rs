//! Schedulers: who moves at each decision point of a concurrent run.
//!
//! There are three kinds of decision point:
//! * **top**: which thread (vCPU or device) takes its next step;
//! * **inline**: at a platform call of a manager operation (before the call takes effect,
//!   and after), whether a lock-free hardware step of another vCPU runs now, and whose;
//! * **flush**: while a synchronous shootdown waits for acknowledgements, which pending
//!   vCPU moves.
//!
//! Every decision is recorded, so a run replays exactly from its recorded schedule, as the
//! [`Move`] it made — named by the *operation* the chosen thread works on (its index in the
//! trace), or by the vCPU when it works on none (an exit that acknowledges a shootdown).
//! Decisions taken inside an operation (inline and flush points) are marked [`LOCAL`]: they
//! belong to the top step before them, and "the lock holder goes on" at an inline point is
//! recorded as the default. Named moves survive the removal of unrelated operations: a
//! shrinker that drops operation k drops k's decisions and renumbers the rest, and every
//! other decision still moves what it moved. A recorded move that is not possible any more
//! falls back to [`default_choice`]. Inline points record a decision even when no vCPU can
//! step there, so an operation's local decisions line up with its own platform calls.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::SchedulerKind;

/// "No thread": the lock holder goes on (inline points only).
pub const NONE: u8 = u8::MAX;

/// What a recorded decision moved: an operation's index in the trace, or a vCPU ([`THREAD`]),
/// or the default ([`DEFAULT`]); [`LOCAL`] marks a decision taken inside the operation of
/// the top decision before it (an inline or flush point).
pub type Move = u32;

/// Marks a move named by its vCPU (one with no operation, acknowledging a shootdown).
pub const THREAD: Move = 1 << 31;

/// Marks a decision local to the current top step (an inline or flush point).
pub const LOCAL: Move = 1 << 30;

/// With [`LOCAL`]: a decision of a synchronous shootdown's wait (a flush point). A wait
/// makes as many decisions as its vCPUs need steps, which may change when a shrinker
/// removes operations: its decisions are told apart so the inline points after it stay
/// aligned.
pub const FLUSH: Move = 1 << 29;

/// The index bits of a move.
const INDEX: Move = FLUSH - 1;

/// The default choice ([`default_choice`]): recorded at inline points where the holder
/// went on (`LOCAL | DEFAULT`); a shrinker also writes it to drop a preemption.
pub const DEFAULT: Move = INDEX;

/// Whether `m` took the default choice.
pub fn is_default(m: Move) -> bool {
    m & INDEX == INDEX
}

/// Whether `m` was taken inside an operation (an inline or flush point).
pub fn is_local(m: Move) -> bool {
    m & LOCAL != 0
}

/// Whether `m` was taken while a synchronous shootdown waited.
pub fn is_flush(m: Move) -> bool {
    m & (LOCAL | FLUSH) == LOCAL | FLUSH
}

/// The kind of point `m` was recorded at.
fn point_kind(m: Move) -> u8 {
    match (is_local(m), is_flush(m)) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    }
}

/// The kind of `point`, as [`point_kind`] numbers it.
fn kind_of(point: Point) -> u8 {
    match point {
        Point::Top => 0,
        Point::Inline { .. } => 1,
        Point::Flush => 2,
    }
}

/// What `m` names, without its point marks (what [`Scheduler::pick`]'s names look like).
fn name_of(m: Move) -> Move {
    m & !(LOCAL | FLUSH)
}

/// The operation `m` moved, if it names one.
pub fn op_of(m: Move) -> Option<u32> {
    (!is_default(m) && m & THREAD == 0).then_some(m & INDEX)
}

/// The vCPU `m` moved, if it names one by itself.
pub fn vcpu_of(m: Move) -> Option<u8> {
    (!is_default(m) && m & THREAD != 0).then_some((m & INDEX) as u8)
}

/// `m` turned into the default choice (its point marks kept).
pub fn defaulted(m: Move) -> Move {
    (m & (LOCAL | FLUSH)) | DEFAULT
}

/// `m` naming operation `op` instead (its point marks kept).
pub fn with_op(m: Move, op: u32) -> Move {
    debug_assert!(op < DEFAULT, "operation index {op} out of range");
    (m & (LOCAL | FLUSH)) | op
}

/// `m` naming vCPU `v` instead (its point marks kept).
pub fn with_vcpu(m: Move, v: u8) -> Move {
    (m & (LOCAL | FLUSH)) | THREAD | v as Move
}

/// The move recorded at `point` for `name` (`None`: the default).
pub fn recorded(point: Point, name: Option<Move>) -> Move {
    let marks = match point {
        Point::Top => 0,
        Point::Inline { .. } => LOCAL,
        Point::Flush => LOCAL | FLUSH,
    };
    marks | name.unwrap_or(DEFAULT)
}

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
    /// Uniform random choices (boxed: the generator is five times the other variants).
    Random(Box<ChaCha8Rng>),
    /// PCT priorities and change points.
    Pct(Pct),
    /// Replays recorded decisions.
    Replay {
        /// The decisions.
        decisions: Vec<Move>,
        /// The next one.
        at: usize,
        /// Whether the last pick fell back to the default (its recorded move was not
        /// possible).
        fell_back: bool,
    },
    /// Follows a prefix of choices, then the default, recording every point's alternatives
    /// (the systematic search of `pgmsim explore`).
    Guided(Guided),
    /// Reads each decision from bytes (a fuzzer's input), then the default
    /// (`super::bytes`).
    Bytes(super::bytes::ByteSchedule),
}

/// The state of a guided run: the choices to take, and what each point offered.
#[derive(Debug, Clone, Default)]
pub struct Guided {
    /// Alternatives to take at the first points, by position among the point's options.
    pub prefix: Vec<u8>,
    /// Every point of the run so far.
    pub points: Vec<Branch>,
}

/// One decision point of a guided run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch {
    /// How many alternatives the point had.
    pub options: u8,
    /// The position of the default choice among them.
    pub default: u8,
    /// Whether taking another alternative preempts a thread that could go on (a top point
    /// where the last thread can move, every inline and flush point).
    pub preempting: bool,
    /// The alternative taken.
    pub taken: u8,
}

impl Guided {
    fn pick(&mut self, point: Point, last: u8, candidates: &[u8]) -> u8 {
        let options = options(point, candidates);
        let default_choice = default_choice(point, last, candidates);
        let default = options.iter().position(|&o| o == default_choice).unwrap_or(0) as u8;
        let taken = match self.prefix.get(self.points.len()) {
            Some(&i) if (i as usize) < options.len() => i,
            _ => default,
        };
        self.points.push(Branch {
            options: options.len() as u8,
            default,
            preempting: !matches!(point, Point::Top) || candidates.contains(&last),
            taken,
        });
        options[taken as usize]
    }
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
            SchedulerKind::Random => Scheduler::Random(Box::new(rng)),
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

    /// Picks among `candidates` (ascending thread ids, non-empty except at inline points);
    /// `names[i]` is the [`Move`] that choosing `candidates[i]` makes.
    pub fn pick(&mut self, point: Point, last: u8, candidates: &[u8], names: &[Move]) -> u8 {
        match self {
            Scheduler::Random(rng) => random_pick(rng, point, candidates),
            Scheduler::Pct(p) => p.pick(point, candidates),
            Scheduler::Replay {
                decisions,
                at,
                fell_back,
            } => {
                let d = replay_next(decisions, at, point);
                let named = d.filter(|&d| !is_default(d)).map(name_of);
                *fell_back = false;
                match named.map(|d| names.iter().position(|&n| n == d)) {
                    Some(Some(i)) => candidates[i],
                    Some(None) => {
                        *fell_back = true;
                        default_choice(point, last, candidates)
                    }
                    None => default_choice(point, last, candidates),
                }
            }
            Scheduler::Guided(g) => g.pick(point, last, candidates),
            Scheduler::Bytes(b) => b.pick(point, last, candidates),
        }
    }
}

/// The recorded decision for `point`. Points are ordered top > inline > flush: a point
/// first skips what is left of recorded decisions of lower kinds (a step, or a shootdown's
/// wait, that now makes fewer decisions than it did), and takes the next decision only if
/// it is of its own kind (one that now makes more takes the default for the extra ones).
/// Either way the decisions after stay aligned with the points they were made at.
fn replay_next(decisions: &[Move], at: &mut usize, point: Point) -> Option<Move> {
    let kind = kind_of(point);
    while decisions.get(*at).is_some_and(|&d| point_kind(d) > kind) {
        *at += 1;
    }
    let d = decisions.get(*at).copied().filter(|&d| point_kind(d) == kind)?;
    *at += 1;
    Some(d)
}

impl Scheduler {
    /// Whether the last pick fell back to the default because its recorded move was not
    /// possible (replays only).
    pub fn fell_back(&self) -> bool {
        matches!(self, Scheduler::Replay { fell_back: true, .. })
    }

    /// After a fallback at an inline point that had taken `steps` steps: skips what is left
    /// of that point's recorded decisions (up to its "holder goes on", at most
    /// [`MAX_INLINE_STEPS`] in all), so the next point takes its own.
    pub fn skip_inline_rest(&mut self, steps: usize) {
        let Scheduler::Replay { decisions, at, .. } = self else {
            return;
        };
        for _ in steps + 1..MAX_INLINE_STEPS {
            match decisions.get(*at) {
                Some(&d) if point_kind(d) == 1 => {
                    *at += 1;
                    if is_default(d) {
                        return;
                    }
                }
                _ => return,
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
