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
    let ov = Overrides { mode: Some(Mode::Shadow), ..Overrides::default() };
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
    let faulty = PlatformFaults { forget_tlb_flushes: true };
    let caught: Vec<(u64, Invariant)> =
        (0..40).filter_map(|s| first_failure(s, faulty).map(|i| (s, i))).collect();
    assert!(!caught.is_empty(), "no seed in 0..40 caught a platform that never flushes TLBs");
    assert!(
        caught.iter().any(|(_, i)| *i == Invariant::TranslationSafety),
        "caught, but not by translation safety: {caught:?}"
    );
    // The same seeds with a correct platform pass.
    for (seed, _) in caught.iter().take(3) {
        assert_eq!(first_failure(*seed, PlatformFaults::default()), None, "seed {seed} fails even without the fault");
    }
}
