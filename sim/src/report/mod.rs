//! Reports as self-contained HTML files: the report of one trace (the page states over time,
//! the operations aligned with them, the details of each step, the failure with expected
//! versus actual, one lane per thread when the trace has concurrency data) and the report of
//! a sweep (its coverage tables and the failures it found). No network, no CDN: the
//! stylesheet and the script are inlined, and the pages work from a file URL.

mod data;
pub mod html;
mod lanes;
mod sweep;

pub use lanes::LaneData;
pub use sweep::{sweep_page, SweepFailure, SweepSummary};

use crate::observe::Observation;

/// The HTML report of an observed trace. `lanes`, when given, must fit the trace
/// ([`LaneData::validate`]).
pub fn trace_report(obs: &Observation, title: &str, lanes: Option<&LaneData>) -> String {
    let data = data::payload(obs, title, lanes);
    html::trace_page(obs, title, &data, lanes)
}
