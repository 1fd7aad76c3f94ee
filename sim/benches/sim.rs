//! Simulator benchmarks: one default-mix step, one TLB-hit guest access. `pgmsim bench`
//! reports the same quantities as rates; the fuzz targets have their own (`benches/fuzz.rs`).

use criterion::{criterion_group, criterion_main, Criterion};
use pgmsim_sim::check::CheckMode;
use pgmsim_sim::config::{Overrides, SimConfig};
use pgmsim_sim::gen::next_op;
use pgmsim_sim::World;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn bench(c: &mut Criterion) {
    let mut world = World::new(SimConfig::from_seed(5, &Overrides::default())).expect("world");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    c.bench_function("default_mix_step_incremental", |b| {
        b.iter(|| {
            let op = next_op(&world, &mut rng);
            world.apply(&op, CheckMode::Incremental).expect("step")
        })
    });

    let (mut w, read) = pgmsim_sim::cli::bench::tlb_hit_world();
    let read = read(1);
    w.apply(&read, CheckMode::Incremental).expect("warm");
    c.bench_function("tlb_hit_access_with_differential_check", |b| {
        b.iter(|| w.apply(&read, CheckMode::Incremental).expect("access"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
