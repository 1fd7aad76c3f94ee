//! Runs every committed 64-step `ops_differential` input `ROUNDS` times (world cache warm after
//! the first): a fixed amount of work whose instruction count (`perf stat -e instructions:u`)
//! is a noise-free cost figure on a shared machine.
use pgmsim_sim::fuzzing::ops_differential::{steps_of, BYTES_PER_STEP, CONFIG_BYTES};
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ops_differential");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.len() == CONFIG_BYTES + 64 * BYTES_PER_STEP && steps_of(b) == 64)
        .collect();
    let rounds: usize = std::env::args().nth(1).map_or(3, |s| s.parse().unwrap());
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        for b in &inputs {
            pgmsim_sim::fuzzing::ops_differential(b).unwrap();
        }
    }
    eprintln!(
        "{} inputs x {rounds}: {:.1} us/input",
        inputs.len(),
        t.elapsed().as_secs_f64() * 1e6 / (inputs.len() * rounds) as f64
    );
}
