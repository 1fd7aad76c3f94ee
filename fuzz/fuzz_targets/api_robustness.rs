//! Calls of the shared vocabulary with unconstrained arguments on the production manager
//! alone: no panic, failed calls change nothing and call nothing, `check_sync` clean after
//! every success, queries agree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = pgmsim_sim::fuzzing::api_robustness(data) {
        panic!("api_robustness: {e}");
    }
});
