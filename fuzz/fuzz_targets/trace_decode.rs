//! Arbitrary bytes as a trace file: an error or a valid, round-tripping trace, never a panic;
//! small valid traces are replayed too (a replay may fail an invariant, but must not panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = pgmsim_sim::fuzzing::trace_decode(data) {
        panic!("trace_decode: {e}");
    }
});
