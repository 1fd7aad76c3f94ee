//! Reports as self-contained HTML files: the report of one trace (the page states over time,
//! the operations aligned with them, the details of each step, the failure with expected
//! versus actual, one lane per thread of a concurrent trace) and the report of
//! a sweep (its coverage tables and the failures it found). No network, no CDN: the
//! stylesheet and the script are inlined, and the pages work from a file URL.

mod data;
pub mod html;
pub mod lanes;
mod sweep;

pub use sweep::{sweep_page, SweepFailure, SweepSummary};

use crate::observe::Observation;

/// The HTML report of an observed trace (with one lane per thread if it is concurrent).
pub fn trace_report(obs: &Observation, title: &str) -> String {
    let data = data::payload(obs, title);
    html::trace_page(obs, title, &data)
}
