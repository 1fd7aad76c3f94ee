//! Determinism is a feature: a seed always gives the same trace and trace hash, and a trace
//! replays to the same hash without the generator.

use pgmsim_sim::config::Overrides;
use pgmsim_sim::mmu::Mode;
use pgmsim_sim::{replay, run_seed, CheckMode};

#[test]
fn same_seed_same_trace_hash() {
    for mode in [Mode::Shadow, Mode::Nem] {
        let ov = Overrides {
            mode: Some(mode),
            ..Overrides::default()
        };
        for seed in [0u64, 7, 1234567] {
            let a = run_seed(seed, 500, &ov, CheckMode::Incremental);
            let b = run_seed(seed, 500, &ov, CheckMode::Incremental);
            assert_eq!(a.trace_hash, b.trace_hash, "{mode:?} seed {seed}");
            assert_eq!(a.ops, b.ops);
            assert_ne!(a.trace_hash, 0);
        }
    }
}

#[test]
fn replaying_a_trace_reproduces_the_run() {
    let r = run_seed(42, 400, &Overrides::default(), CheckMode::Incremental);
    let trace = r.trace();
    let json = serde_json::to_string(&trace).unwrap();
    let back = pgmsim_sim::Trace::from_json(&json, "memory").unwrap();
    let again = replay(&back, CheckMode::Incremental);
    assert_eq!(again.trace_hash, r.trace_hash);
    assert_eq!(again.failure, r.failure);
    // Full checks see the same run.
    let full = replay(&back, CheckMode::Full);
    assert_eq!(full.trace_hash, r.trace_hash);
}

#[test]
fn different_seeds_differ() {
    let a = run_seed(1, 300, &Overrides::default(), CheckMode::Incremental);
    let b = run_seed(2, 300, &Overrides::default(), CheckMode::Incremental);
    assert_ne!(a.trace_hash, b.trace_hash);
    assert_ne!(a.config, b.config);
}

/// Concurrent worlds too: the schedule comes from the seed (random and PCT schedulers, both
/// shootdown protocols), so two runs take the same decisions and hash the same, and the
/// trace (with its threads and schedule) replays to that hash.
#[test]
fn concurrent_worlds_are_deterministic() {
    use pgmsim_sim::conc::config::ConcurrencyOverrides;
    use pgmsim_sim::conc::{SchedulerKind, Shootdown};
    let schedulers = [SchedulerKind::Random, SchedulerKind::Pct { depth: 2 }];
    let shootdowns = [Shootdown::Sync, Shootdown::Async];
    for (i, seed) in [0u64, 3, 11, 4242].into_iter().enumerate() {
        let ov = Overrides {
            concurrency: ConcurrencyOverrides {
                enabled: Some(true),
                scheduler: Some(schedulers[i % 2]),
                shootdown: Some(shootdowns[i / 2 % 2]),
                ..ConcurrencyOverrides::default()
            },
            ..Overrides::default()
        };
        let a = run_seed(seed, 300, &ov, CheckMode::Incremental);
        let b = run_seed(seed, 300, &ov, CheckMode::Incremental);
        assert!(a.config.concurrency.is_some() && a.stats.threads > 1, "seed {seed}");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!((&a.ops, &a.threads, &a.schedule), (&b.ops, &b.threads, &b.schedule));
        assert!(
            !a.schedule.is_empty() && a.stats.preemptions > 0,
            "seed {seed}: a real interleaving"
        );
        let again = replay(&a.trace(), CheckMode::Incremental);
        assert_eq!(again.trace_hash, a.trace_hash, "seed {seed}: the trace replays exactly");
        assert_eq!(again.failure, a.failure);
    }
}
