//! The simulator's step loop (`pgmsim run`) driven by fuzzer bytes: 8 bytes pick a swarm
//! configuration, then two bytes per generator draw. Any invariant failure is a crash.
//! Turn a crash into a trace with `pgmsim replay --fuzz ops_differential FILE -o x.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = pgmsim_sim::fuzzing::ops_differential(data);
    if let Some(f) = &report.failure {
        panic!("ops_differential: {f} (after {} steps)", report.ops.len());
    }
});
