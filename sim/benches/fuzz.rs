//! One benchmark per fuzz target, each on inputs of 64 operations, uninstrumented: the cost
//! of one execution without libFuzzer, so a regression shows without running a fuzzer.
//!
//! * `ops_differential`: the committed corpus inputs of exactly 64 steps, in turn (the world
//!   cache warm, as in a campaign).
//! * `api_robustness`: the committed corpus decoded, each input's calls run on into the
//!   following inputs' until there are 64, in turn (decoding the bytes is left out).
//! * `trace_decode`: the JSON trace of a 64-step seeded run.
//! * `ops_concurrent` (inputs of 32 operations, its longest): the committed corpus inputs of
//!   exactly 32 operations, in turn (the world cache warm).

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use criterion::{criterion_group, criterion_main, Criterion};
use pgmsim_sim::check::CheckMode;
use pgmsim_sim::config::Overrides;
use pgmsim_sim::fuzzing::api_robustness::ApiInput;
use pgmsim_sim::fuzzing::ops_concurrent::{ops_of, BYTES_PER_OP, MAX_OPS};
use pgmsim_sim::fuzzing::ops_differential::{steps_of, BYTES_PER_STEP, CONFIG_BYTES};
use pgmsim_sim::fuzzing::{api_robustness, ops_concurrent, ops_differential, trace_decode};

/// Operations per benchmarked input.
const OPS: usize = 64;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("input")).collect()
}

/// Inputs of exactly `OPS` calls: each corpus input's own, continued with the calls of the
/// inputs after it.
fn api_inputs() -> Vec<ApiInput> {
    let decoded: Vec<ApiInput> = corpus("api_robustness")
        .iter()
        .filter_map(|b| ApiInput::arbitrary_take_rest(Unstructured::new(b)).ok())
        .collect();
    (0..decoded.len())
        .filter_map(|i| {
            let mut input = decoded[i].clone();
            input.calls = decoded[i..]
                .iter()
                .flat_map(|d| d.calls.iter().cloned())
                .take(OPS)
                .collect();
            (input.calls.len() == OPS).then_some(input)
        })
        .take(64)
        .collect()
}

fn bench(c: &mut Criterion) {
    let ops: Vec<Vec<u8>> = corpus("ops_differential")
        .into_iter()
        .filter(|b| b.len() == CONFIG_BYTES + OPS * BYTES_PER_STEP && steps_of(b) == OPS)
        .collect();
    assert!(
        ops.len() >= 8,
        "too few 64-step ops_differential inputs ({})",
        ops.len()
    );
    let mut i = 0;
    c.bench_function("fuzz_ops_differential_64_ops", |b| {
        b.iter(|| {
            i = (i + 1) % ops.len();
            ops_differential(&ops[i])
        })
    });

    let api = api_inputs();
    assert!(
        api.len() >= 8,
        "too few api_robustness inputs of 64 calls ({})",
        api.len()
    );
    let mut i = 0;
    c.bench_function("fuzz_api_robustness_64_calls", |b| {
        b.iter(|| {
            i = (i + 1) % api.len();
            api_robustness::run_input(api[i].clone())
        })
    });

    let conc: Vec<Vec<u8>> = corpus("ops_concurrent")
        .into_iter()
        .filter(|b| b.len() == CONFIG_BYTES + MAX_OPS * BYTES_PER_OP && ops_of(b) == MAX_OPS)
        .collect();
    assert!(
        conc.len() >= 8,
        "too few 32-operation ops_concurrent inputs ({})",
        conc.len()
    );
    let mut i = 0;
    c.bench_function("fuzz_ops_concurrent_32_ops", |b| {
        b.iter(|| {
            i = (i + 1) % conc.len();
            ops_concurrent(&conc[i])
        })
    });

    let run = pgmsim_sim::run_seed(1, OPS, &Overrides::default(), CheckMode::Incremental);
    let json = serde_json::to_vec(&run.trace()).expect("a trace serialises");
    c.bench_function("fuzz_trace_decode_64_ops", |b| b.iter(|| trace_decode(&json)));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
