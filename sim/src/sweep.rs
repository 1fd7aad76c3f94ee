//! The sweep engine: runs a range of seeds on worker threads and returns a report that is
//! the same for any number of workers.
//!
//! Seeds are claimed from an atomic counter and computed arithmetically (a range of any size
//! costs no memory). Results fold into the report in seed order: completed seeds wait in a
//! small reorder buffer until every lower seed is done, so the report's counters, its
//! combined hash and its failure list depend only on the seeds, never on thread timing.
//! Without `keep_going`, the sweep stops at the lowest failing seed: no seed above a known
//! failure is claimed, every seed below it is finished, and seeds above it that were already
//! running are left out of the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::check::CheckMode;
use crate::config::SimConfig;
use crate::coverage::Coverage;
use crate::run::{run_config, RunReport};

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
    pub steps: usize,
    /// Check mode.
    pub check: CheckMode,
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
    /// A hash of every covered seed's trace hash, in seed order.
    pub combined_hash: u64,
    /// Every covered seed's trace hash, in seed order (only when asked for).
    pub seed_hashes: Vec<(u64, u64)>,
    /// The failing runs, in seed order.
    pub failures: Vec<RunReport>,
    /// What the covered seeds exercised, merged.
    pub coverage: Coverage,
}

impl SweepReport {
    /// Folds one seed's run in (seeds arrive in order).
    fn fold(&mut self, r: RunReport, keep_hashes: bool) {
        let seed = r.seed.unwrap_or_default();
        self.seeds += 1;
        self.steps += r.ops.len() as u64;
        self.accesses += r.stats.accesses;
        self.invariant_checks += r.stats.invariant_checks;
        self.coverage.merge(&r.stats.coverage);
        self.combined_hash = combine(self.combined_hash, seed, r.trace_hash);
        if keep_hashes {
            self.seed_hashes.push((seed, r.trace_hash));
        }
        if r.failure.is_some() {
            self.failures.push(r);
        }
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

/// Progress callbacks (the caller draws bars or prints lines).
pub trait Progress: Sync {
    /// A seed finished (in completion order, not seed order).
    fn seed_done(&self, seed: u64, failed: Option<&RunReport>);
}

impl Progress for () {
    fn seed_done(&self, _: u64, _: Option<&RunReport>) {}
}

/// Shared state of the workers.
struct Shared {
    next: AtomicU64,
    /// Lowest index of a failing seed seen so far (`u64::MAX`: none).
    stop_at: AtomicU64,
    fold: Mutex<Reorder>,
}

/// Completed runs waiting for every lower seed.
struct Reorder {
    next_to_fold: u64,
    waiting: BTreeMap<u64, RunReport>,
    report: SweepReport,
}

/// Runs the sweep; `world(seed)` gives each seed's configuration.
pub fn sweep(
    spec: &SweepSpec,
    world: &(dyn Fn(u64) -> SimConfig + Sync),
    keep_hashes: bool,
    progress: &dyn Progress,
) -> SweepReport {
    let shared = Shared {
        next: AtomicU64::new(0),
        stop_at: AtomicU64::new(u64::MAX),
        fold: Mutex::new(Reorder {
            next_to_fold: 0,
            waiting: BTreeMap::new(),
            report: SweepReport::default(),
        }),
    };
    std::thread::scope(|s| {
        for _ in 0..spec.jobs.max(1) {
            s.spawn(|| worker(spec, world, keep_hashes, progress, &shared));
        }
    });
    let mut reorder = shared.fold.into_inner().expect("fold lock");
    let limit = shared.stop_at.into_inner();
    // Without keep-going, runs above the lowest failure that finished anyway stay out.
    while reorder.next_to_fold <= limit {
        let Some(r) = reorder.waiting.remove(&reorder.next_to_fold) else {
            break;
        };
        reorder.next_to_fold += 1;
        reorder.report.fold(r, keep_hashes);
    }
    reorder.report
}

fn worker(
    spec: &SweepSpec,
    world: &(dyn Fn(u64) -> SimConfig + Sync),
    keep: bool,
    progress: &dyn Progress,
    shared: &Shared,
) {
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= spec.len() || k > shared.stop_at.load(Ordering::Relaxed) {
            return;
        }
        let seed = spec.seed(k);
        let r = run_config(seed, world(seed), spec.steps, spec.check);
        progress.seed_done(seed, r.failure.as_ref().map(|_| &r));
        if r.failure.is_some() && !spec.keep_going {
            shared.stop_at.fetch_min(k, Ordering::Relaxed);
        }
        let mut guard = shared.fold.lock().expect("fold lock");
        let reorder = &mut *guard;
        reorder.waiting.insert(k, r);
        let limit = shared.stop_at.load(Ordering::Relaxed);
        while reorder.next_to_fold <= limit {
            let Some(r) = reorder.waiting.remove(&reorder.next_to_fold) else {
                break;
            };
            reorder.next_to_fold += 1;
            reorder.report.fold(r, keep);
        }
    }
}
