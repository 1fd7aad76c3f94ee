//! The fuzz targets' logic, one module per target, in the library so `cargo test` replays
//! every committed input through exactly the function libFuzzer runs, and `pgmsim replay
//! --fuzz` turns an `ops_differential` input into a trace.
//!
//! * [`ops_differential`](mod@ops_differential): the simulator's step loop driven by fuzzer
//!   bytes, production and model side by side, every step checked.
//! * [`api_robustness`](mod@api_robustness): the shared call vocabulary with unconstrained
//!   arguments on the production manager alone.
//! * [`trace_decode`](mod@trace_decode): arbitrary bytes as a trace file.

pub mod api_robustness;
pub mod ops_differential;
pub mod trace_decode;

pub use api_robustness::api_robustness;
pub use ops_differential::{ops_differential, ops_differential_report, ops_differential_trace};
pub use trace_decode::trace_decode;
