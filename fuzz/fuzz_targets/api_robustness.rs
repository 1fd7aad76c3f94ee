//! Raw API calls with unconstrained arguments on the production manager alone: no panic,
//! `check_sync` clean after every success, failed calls change nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = pgmsim_sim::fuzzing::api_robustness(data) {
        panic!("api_robustness: {e}");
    }
});
