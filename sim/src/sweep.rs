//! The sweep engine: runs a range of seeds on worker threads and returns a report that is
//! the same for any number of workers.
//!
//! Seeds are claimed from an atomic counter and computed arithmetically (a range of any size
//! costs no memory). Results fold into the report in seed order: a completed seed waits in
//! a reorder window until every lower seed is done, so the report's counters, its combined
//! hash and its failure list depend only on the seeds, never on thread timing. The window
//! is bounded (a worker that runs too far ahead waits), and what waits is small (counters
//! and a hash; a failing seed's report without its operations), so memory stays flat for
//! ranges of any length.
//!
//! Without `keep_going`, the sweep stops at the lowest failing seed: no seed above a known
//! failure is claimed, every seed below it is finished, and seeds above it that were already
//! running are left out of the report. With a time limit, the report covers the longest
//! prefix of seeds that finished (`complete: false`); failures found beyond it are still
//! listed, since a found bug is never dropped.
//!
//! Each seed runs on its own thread watched by the step budget (`run::watchdog`, set by
//! `--step-timeout`): a seed whose step hangs comes back as a `Hang` failure, its thread
//! abandoned, and the worker goes on to the next seed, so no hang stalls the sweep.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::check::{CheckMode, Failure};
use crate::config::SimConfig;
use crate::coverage::Coverage;
use crate::run::{run_generated_watched, Deadline, RunReport};

/// Completed seeds that may wait for a lower one, per worker.
const WINDOW_PER_JOB: u64 = 256;

/// What to sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepSpec {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
    /// Only seeds with `(seed - start) % n == i`: `(i, n)`.
    pub shard: Option<(u64, u64)>,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Keep going after failures.
    pub keep_going: bool,
    /// Steps per seed.
    pub steps: u64,
    /// Check mode.
    pub check: CheckMode,
    /// Stop claiming seeds (and stop running ones) after this long.
    pub max_time: Option<Duration>,
    /// Keep every seed's trace hash in the report.
    pub seed_hashes: bool,
}

impl SweepSpec {
    /// Number of seeds the sweep covers.
    pub fn len(&self) -> u64 {
        let span = self.end.saturating_sub(self.start);
        match self.shard {
            Some((i, n)) => span.saturating_sub(i).div_ceil(n),
            None => span,
        }
    }

    /// Whether the sweep covers no seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th seed of the sweep.
    pub fn seed(&self, k: u64) -> u64 {
        match self.shard {
            Some((i, n)) => self.start + i + k * n,
            None => self.start + k,
        }
    }
}

/// One failing seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// Its failure signature ([`RunReport::signature`]).
    pub signature: String,
    /// The failure.
    pub failure: Failure,
}

/// One signature's first (lowest) failing seed: its run, whose trace is regenerated from
/// the seed when written.
#[derive(Debug, Clone)]
pub struct Representative {
    /// The signature.
    pub signature: String,
    /// Failing seeds with this signature.
    pub count: u64,
    /// The first failing seed's run.
    pub run: RunReport,
}

/// The report of a sweep: counters over the seeds it covers, in seed order.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Seeds covered.
    pub seeds: u64,
    /// Steps applied.
    pub steps: u64,
    /// Guest accesses.
    pub accesses: u64,
    /// Invariant checks.
    pub invariant_checks: u64,
    /// A hash of every covered seed's seed and trace hash, in seed order.
    pub combined_hash: u64,
    /// Every covered seed's trace hash, in seed order (only when asked for).
    pub seed_hashes: Vec<(u64, u64)>,
    /// Every failing seed, in seed order.
    pub failures: Vec<SeedFailure>,
    /// One run per failure signature (its first seed), in order of first appearance.
    pub representatives: Vec<Representative>,
    /// Whether every seed of the sweep (up to the first failure without `keep_going`) ran.
    pub complete: bool,
    /// What the covered seeds exercised, merged.
    pub coverage: Coverage,
    /// The first seed whose configuration is invalid (the sweep ends before it): the seed
    /// and the message.
    pub config_error: Option<(u64, String)>,
}

impl SweepReport {
    /// Folds one seed's run in (seeds arrive in order).
    fn fold(&mut self, r: SeedResult, keep_hashes: bool) {
        self.seeds += 1;
        self.steps += r.steps;
        self.accesses += r.accesses;
        self.invariant_checks += r.invariant_checks;
        self.coverage.merge(&r.coverage);
        self.combined_hash = combine(self.combined_hash, r.seed, r.trace_hash);
        if keep_hashes {
            self.seed_hashes.push((r.seed, r.trace_hash));
        }
        if let Some(run) = r.failed {
            self.add_failure(*run);
        }
    }

    fn add_failure(&mut self, run: RunReport) {
        let (Some(seed), Some(signature), Some(failure)) = (run.seed, run.signature(), run.failure.clone()) else {
            return;
        };
        self.failures.push(SeedFailure {
            seed,
            signature: signature.clone(),
            failure,
        });
        match self.representatives.iter_mut().find(|r| r.signature == signature) {
            Some(rep) => rep.count += 1,
            None => self.representatives.push(Representative {
                signature,
                count: 1,
                run,
            }),
        }
    }

    /// The failing seeds, in seed order.
    pub fn failing_seeds(&self) -> Vec<u64> {
        self.failures.iter().map(|f| f.seed).collect()
    }
}

/// One FNV-1a round over a seed and its trace hash.
fn combine(h: u64, seed: u64, hash: u64) -> u64 {
    let mut h = if h == 0 { 0xcbf2_9ce4_8422_2325 } else { h };
    for b in seed.to_le_bytes().into_iter().chain(hash.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What a finished seed contributes: counters and a hash, and its run if it failed.
#[derive(Debug)]
struct SeedResult {
    seed: u64,
    steps: u64,
    accesses: u64,
    invariant_checks: u64,
    trace_hash: u64,
    coverage: Coverage,
    failed: Option<Box<RunReport>>,
}

impl SeedResult {
    fn of(mut r: RunReport) -> SeedResult {
        SeedResult {
            coverage: std::mem::take(&mut r.stats.coverage),
            seed: r.seed.unwrap_or_default(),
            steps: r.steps,
            accesses: r.stats.accesses,
            invariant_checks: r.stats.invariant_checks,
            trace_hash: r.trace_hash,
            failed: r.failure.is_some().then(|| Box::new(r)),
        }
    }
}

/// Progress callbacks (the caller draws bars or prints lines).
pub trait Progress: Sync {
    /// A seed finished (in completion order, not seed order).
    fn seed_done(&self, seed: u64, failed: Option<&RunReport>);
}

impl Progress for () {
    fn seed_done(&self, _: u64, _: Option<&RunReport>) {}
}

/// A seed's slot in the reorder window.
#[derive(Debug)]
enum Slot {
    Done(SeedResult),
    /// Stopped by the time limit: ends the covered prefix.
    Incomplete,
    /// The seed's configuration is invalid: ends the sweep (bad input, not a failure).
    Invalid(u64, String),
}

/// Shared state of the workers.
struct Shared {
    next: AtomicU64,
    /// Index of the seed that ends the sweep (`u64::MAX`: none): the lowest failing seed
    /// without keep-going (the report's last seed), or the lowest invalid configuration.
    fail_at: AtomicU64,
    /// The time limit passed: no more seeds are claimed.
    time_up: AtomicBool,
    fold: Mutex<Reorder>,
    /// Signalled when the window moves.
    moved: Condvar,
}

/// Completed runs waiting for every lower seed.
struct Reorder {
    next_to_fold: u64,
    waiting: BTreeMap<u64, Slot>,
    report: SweepReport,
}

impl Reorder {
    /// Folds every waiting seed whose lower seeds are all folded, up to index `limit`.
    fn advance(&mut self, limit: u64, keep: bool) {
        while self.next_to_fold <= limit {
            if !matches!(self.waiting.get(&self.next_to_fold), Some(Slot::Done(_))) {
                break;
            }
            if let Some(Slot::Done(r)) = self.waiting.remove(&self.next_to_fold) {
                self.next_to_fold += 1;
                self.report.fold(r, keep);
            }
        }
    }
}

/// Gives each seed's configuration, validated (`Err`: why it is unusable).
pub type WorldOf<'a> = &'a (dyn Fn(u64) -> Result<SimConfig, String> + Sync);

/// Runs the sweep; `world(seed)` gives each seed's configuration.
pub fn sweep(spec: &SweepSpec, world: WorldOf, progress: &dyn Progress) -> SweepReport {
    let shared = Shared {
        next: AtomicU64::new(0),
        fail_at: AtomicU64::new(u64::MAX),
        time_up: AtomicBool::new(false),
        fold: Mutex::new(Reorder {
            next_to_fold: 0,
            waiting: BTreeMap::new(),
            report: SweepReport::default(),
        }),
        moved: Condvar::new(),
    };
    let deadline = Deadline::after(spec.max_time);
    std::thread::scope(|s| {
        for _ in 0..spec.jobs.max(1) {
            s.spawn(|| worker(spec, world, progress, &shared, deadline));
        }
    });
    let mut reorder = shared.fold.into_inner().expect("fold lock");
    let fail_at = shared.fail_at.into_inner();
    reorder.advance(fail_at, spec.seed_hashes);
    let stopped_at_failure = fail_at != u64::MAX && reorder.next_to_fold == fail_at + 1;
    let complete = reorder.next_to_fold >= spec.len() || stopped_at_failure;
    let mut report = reorder.report;
    report.complete = complete;
    if let Some(Slot::Invalid(seed, msg)) = reorder.waiting.remove(&reorder.next_to_fold) {
        report.config_error = Some((seed, msg));
        report.complete = false;
    }
    // Beyond a gap the time limit left: failures found there are still reported.
    for (k, slot) in reorder.waiting {
        if let (true, Slot::Done(SeedResult { failed: Some(run), .. })) = (k <= fail_at, slot) {
            report.add_failure(*run);
        }
    }
    report
}

fn worker(spec: &SweepSpec, world: WorldOf, progress: &dyn Progress, shared: &Shared, deadline: Deadline) {
    let window = WINDOW_PER_JOB * spec.jobs.max(1) as u64;
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= spec.len() || k > shared.fail_at.load(Ordering::Relaxed) {
            return;
        }
        if deadline.passed() {
            shared.time_up.store(true, Ordering::Relaxed);
            return;
        }
        if !wait_for_window(shared, k, window) {
            return;
        }
        let seed = spec.seed(k);
        let slot = match world(seed) {
            Ok(config) => run_seed(spec, (seed, k), config, progress, shared, deadline),
            Err(msg) => {
                shared.fail_at.fetch_min(k, Ordering::Relaxed);
                Slot::Invalid(seed, msg)
            }
        };
        let mut reorder = shared.fold.lock().expect("fold lock");
        reorder.waiting.insert(k, slot);
        reorder.advance(shared.fail_at.load(Ordering::Relaxed), spec.seed_hashes);
        shared.moved.notify_all();
    }
}

/// Runs one seed of the sweep.
fn run_seed(
    spec: &SweepSpec,
    (seed, k): (u64, u64),
    config: SimConfig,
    progress: &dyn Progress,
    shared: &Shared,
    deadline: Deadline,
) -> Slot {
    // Watched by the step budget (`run::watchdog`): a seed whose step hangs comes back as a
    // `Hang` failure, its thread abandoned, and this worker moves on to the next seed.
    let (r, _) = run_generated_watched(seed, config, spec.steps, spec.check, deadline);
    if r.stopped.is_some() {
        shared.time_up.store(true, Ordering::Relaxed);
        return Slot::Incomplete;
    }
    progress.seed_done(seed, r.failure.as_ref().map(|_| &r));
    if r.failure.is_some() && !spec.keep_going {
        shared.fail_at.fetch_min(k, Ordering::Relaxed);
    }
    Slot::Done(SeedResult::of(r))
}

/// Waits until seed index `k` is within `window` of the lowest unfolded seed; `false` when
/// the sweep is ending instead (a failure below `k`, the time limit, or a seed that will
/// never fold because the time limit stopped it).
fn wait_for_window(shared: &Shared, k: u64, window: u64) -> bool {
    let mut reorder = shared.fold.lock().expect("fold lock");
    loop {
        if k < reorder.next_to_fold + window {
            return true;
        }
        let blocked = matches!(
            reorder.waiting.get(&reorder.next_to_fold),
            Some(Slot::Incomplete | Slot::Invalid(..))
        );
        if blocked || shared.time_up.load(Ordering::Relaxed) || k > shared.fail_at.load(Ordering::Relaxed) {
            return false;
        }
        reorder = shared
            .moved
            .wait_timeout(reorder, Duration::from_millis(100))
            .expect("fold lock")
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, PlatformFault};

    fn spec(start: u64, end: u64, jobs: usize, keep_going: bool) -> SweepSpec {
        SweepSpec {
            start,
            end,
            shard: None,
            jobs,
            keep_going,
            steps: 150,
            check: CheckMode::Incremental,
            max_time: None,
            seed_hashes: true,
        }
    }

    fn faulty(seed: u64) -> Result<SimConfig, String> {
        let ov = Overrides {
            mode: Some(crate::mmu::Mode::Shadow),
            platform_fault: Some(PlatformFault::ForgetTlbFlushes),
            ..Overrides::default()
        };
        Ok(SimConfig::from_seed(seed, &ov))
    }

    #[test]
    fn the_report_is_the_same_for_any_number_of_workers() {
        let one = sweep(&spec(0, 24, 1, true), &faulty, &());
        assert!(
            !one.failures.is_empty(),
            "a platform that forgets TLB flushes fails some seed"
        );
        for jobs in [2, 3, 8] {
            let many = sweep(&spec(0, 24, jobs, true), &faulty, &());
            assert_eq!(many.failures, one.failures, "{jobs} jobs");
            assert_eq!(many.seed_hashes, one.seed_hashes);
            assert_eq!(
                (many.combined_hash, many.seeds, many.steps),
                (one.combined_hash, one.seeds, one.steps)
            );
            let stop = sweep(&spec(0, 24, jobs, false), &faulty, &());
            assert_eq!(
                stop.failing_seeds(),
                vec![one.failures[0].seed],
                "{jobs} jobs, stopping at the first"
            );
            assert!(stop.complete);
        }
    }

    #[test]
    fn a_time_limit_reports_a_covered_prefix() {
        let mut s = spec(0, u64::MAX, 2, true);
        s.max_time = Some(Duration::from_millis(300));
        let r = sweep(&s, &|seed| Ok(SimConfig::from_seed(seed, &Overrides::default())), &());
        assert!(!r.complete);
        assert!(r.seeds > 0);
        let covered: Vec<u64> = r.seed_hashes.iter().map(|&(seed, _)| seed).collect();
        assert_eq!(covered, (0..r.seeds).collect::<Vec<_>>(), "a prefix, in order");
    }

    #[test]
    fn an_invalid_configuration_ends_the_sweep_before_its_seed() {
        let world = |seed: u64| {
            if seed == 5 {
                Err("bad".to_string())
            } else {
                Ok(SimConfig::from_seed(seed, &Overrides::default()))
            }
        };
        for jobs in [1, 3] {
            let r = sweep(&spec(0, 12, jobs, true), &world, &());
            assert_eq!(r.config_error, Some((5, "bad".to_string())));
            assert_eq!(r.seeds, 5);
            assert!(!r.complete);
        }
    }
}
