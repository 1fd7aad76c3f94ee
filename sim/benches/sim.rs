//! Simulator benchmarks: one `ops_differential` fuzz input (64 operations, world built and
//! fully checked), one default-mix step, one TLB-hit guest access. `pgmsim bench` reports the
//! same quantities as rates.

use criterion::{criterion_group, criterion_main, Criterion};
use pgmsim_sim::check::CheckMode;
use pgmsim_sim::config::{Overrides, SimConfig};
use pgmsim_sim::gen::next_op;
use pgmsim_sim::World;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/ops_differential");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("input"))
        .filter(|b| b.len() >= 1032)
        .collect()
}

fn bench(c: &mut Criterion) {
    let inputs = corpus();
    let mut i = 0;
    c.bench_function("ops_differential_64_op_input", |b| {
        b.iter(|| {
            i = (i + 1) % inputs.len();
            pgmsim_sim::fuzzing::ops_differential(&inputs[i])
        })
    });

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
