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
