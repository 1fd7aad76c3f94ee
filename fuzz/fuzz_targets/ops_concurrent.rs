//! A small concurrent world driven by fuzzer bytes: 8 bytes pick a swarm world (forced
//! concurrent, 2-3 vCPUs, 1-2 device threads), then 16 bytes of generator draws per
//! operation, then 16 bytes per operation that the scheduler reads its decisions from (one
//! byte per real choice, zero the default). Every oracle of the concurrent world is on; any
//! failure is a crash. Turn a crash into a replayable trace with
//! `cargo run --release -p pgmsim-sim --example fuzz_trace -- ops_concurrent FILE -o x.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = pgmsim_sim::fuzzing::ops_concurrent(data) {
        panic!(
            "ops_concurrent: {f}\n(replayable trace: cargo run --release -p pgmsim-sim --example fuzz_trace -- \
             ops_concurrent <crash file> -o x.json, then pgmsim replay / shrink x.json)"
        );
    }
});
