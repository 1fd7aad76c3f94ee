//! The fuzz targets' logic, in the library so `cargo test` replays every corpus input
//! through exactly the function libFuzzer runs, and `pgmsim replay --fuzz` turns an input
//! into a trace.

use arbitrary::Unstructured;

use crate::check::CheckMode;
use crate::config::{Overrides, SimConfig};
use crate::gen::Entropy;
use crate::run::{run_entropy, RunReport};
use crate::trace::Trace;

/// Most steps an `ops_differential` input can drive.
pub const MAX_FUZZ_STEPS: usize = 256;

/// Fuzzer bytes as an entropy source: two bytes per draw, so most bytes steer a decision;
/// zeros once the input is used up.
pub struct ByteEntropy<'a> {
    u: Unstructured<'a>,
}

impl<'a> ByteEntropy<'a> {
    /// Wraps fuzzer bytes.
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteEntropy { u: Unstructured::new(bytes) }
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.u.is_empty()
    }
}

impl Entropy for ByteEntropy<'_> {
    fn next_u64(&mut self) -> u64 {
        self.u.arbitrary::<u16>().unwrap_or(0) as u64
    }
}

/// The world an `ops_differential` input runs in: its first eight bytes pick a swarm
/// configuration (as a seed would), small enough to fuzz fast.
pub fn fuzz_config(bytes: &[u8]) -> SimConfig {
    let mut seed = [0u8; 8];
    let n = bytes.len().min(8);
    seed[..n].copy_from_slice(&bytes[..n]);
    let ov = Overrides { full_check_every: Some(16), ..Overrides::default() };
    let mut config = SimConfig::from_seed(u64::from_le_bytes(seed), &ov);
    config.va_pages = config.va_pages.min(256);
    config
}

/// Runs an `ops_differential` input: configuration from the first bytes, then one generated
/// step per draw until the input is used up.
pub fn ops_differential(bytes: &[u8]) -> RunReport {
    let config = fuzz_config(bytes);
    let rest = bytes.get(8..).unwrap_or(&[]);
    let mut e = ByteEntropy::new(rest);
    let steps = (rest.len() / 16).clamp(1, MAX_FUZZ_STEPS);
    run_entropy(config, steps, &mut e)
}

/// The trace of an `ops_differential` input.
pub fn ops_differential_trace(bytes: &[u8]) -> Trace {
    let mut t = ops_differential(bytes).trace();
    t.check = CheckMode::Incremental;
    t
}
