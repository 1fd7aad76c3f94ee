//! A platform that forgets TLB flushes must be caught by the translation-safety check
//! within a short seed sweep: proof that the checks can fail.

use pgmsim_sim::check::{CheckMode, Invariant};
use pgmsim_sim::config::{Overrides, SimConfig};
use pgmsim_sim::gen::next_op;
use pgmsim_sim::mmu::{Mode, PlatformFaults};
use pgmsim_sim::World;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn first_failure(seed: u64, faults: PlatformFaults) -> Option<Invariant> {
    let ov = Overrides {
        mode: Some(Mode::Shadow),
        ..Overrides::default()
    };
    let mut world = World::with_faults(SimConfig::from_seed(seed, &ov), faults).ok()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..3000 {
        let op = next_op(&world, &mut rng);
        if let Err(f) = world.apply(&op, CheckMode::Incremental) {
            return Some(f.invariant);
        }
    }
    None
}

#[test]
fn forgotten_tlb_flush_is_caught_by_translation_safety() {
    let faulty = PlatformFaults {
        forget_tlb_flushes: true,
        ..PlatformFaults::default()
    };
    let caught: Vec<(u64, Invariant)> = (0..40)
        .filter_map(|s| first_failure(s, faulty).map(|i| (s, i)))
        .collect();
    assert!(
        !caught.is_empty(),
        "no seed in 0..40 caught a platform that never flushes TLBs"
    );
    assert!(
        caught.iter().any(|(_, i)| *i == Invariant::TranslationSafety),
        "caught, but not by translation safety: {caught:?}"
    );
    // The same seeds with a correct platform pass.
    for (seed, _) in caught.iter().take(3) {
        assert_eq!(
            first_failure(*seed, PlatformFaults::default()),
            None,
            "seed {seed} fails even without the fault"
        );
    }
}

fn first_failure_mode(seed: u64, mode: CheckMode) -> Option<(u64, Invariant)> {
    let ov = Overrides {
        mode: Some(Mode::Shadow),
        ..Overrides::default()
    };
    let faults = PlatformFaults {
        forget_tlb_flushes: true,
        ..PlatformFaults::default()
    };
    let mut world = World::with_faults(SimConfig::from_seed(seed, &ov), faults).ok()?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..3000 {
        let op = next_op(&world, &mut rng);
        if let Err(f) = world.apply(&op, mode) {
            return Some((f.step, f.invariant));
        }
    }
    None
}

#[test]
fn incremental_and_full_checks_find_the_same_failures() {
    let mut compared = 0;
    for seed in 0..40 {
        let full = first_failure_mode(seed, CheckMode::Full);
        let inc = first_failure_mode(seed, CheckMode::Incremental);
        assert_eq!(
            full.is_some(),
            inc.is_some(),
            "seed {seed}: full {full:?}, incremental {inc:?}"
        );
        if let (Some((sf, _)), Some((si, _))) = (full, inc) {
            assert!(si >= sf, "incremental cannot fail before the full check ({si} < {sf})");
            compared += 1;
        }
    }
    assert!(compared > 0);
}

#[test]
fn both_modes_run_clean_on_a_correct_platform() {
    for mode in [Mode::Shadow, Mode::Nem] {
        for seed in 0..6 {
            let ov = Overrides {
                mode: Some(mode),
                ..Overrides::default()
            };
            let r = pgmsim_sim::run_seed(seed, 600, &ov, CheckMode::Incremental);
            assert!(r.failure.is_none(), "{mode:?} seed {seed}: {:?}", r.failure);
            assert!(r.stats.accesses > 0);
        }
    }
}
