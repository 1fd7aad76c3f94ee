//! The simulator's step loop (`pgmsim run`) driven by fuzzer bytes: 8 bytes pick a swarm
//! world, then two bytes per generator draw, 16 bytes per step. Every step is checked as
//! `pgmsim run` checks it, and the input ends with a full check; any failure is a crash.
//! Turn a crash into a trace with `pgmsim replay --fuzz ops_differential FILE -o x.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = pgmsim_sim::fuzzing::ops_differential(data) {
        panic!("ops_differential: {f}");
    }
});
