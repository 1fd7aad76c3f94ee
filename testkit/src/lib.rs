//! # pgmsim-testkit: test tooling shared by every suite
//!
//! Nothing here is part of the production manager; everything is built on its public API:
//!
//! * [`call`]: **one vocabulary of API calls** ([`ApiCall`]), handlers and types named by
//!   creation index, and the one function that applies a call to any
//!   [`pgmsim::PhysHandlerApi`] ([`apply`]). The simulator, the differential suite, the
//!   `api_robustness` fuzz target and the hardening tests all speak it.
//! * [`compare`]: the whole-state comparison of two sides that every lock-step driver uses.
//! * [`RecordingPlatform`]: a [`pgmsim::Platform`] that records every call.
//! * [`render`]: stable text renderings of manager state for snapshots and step logs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod call;
pub mod compare;
mod recording;
pub mod render;

pub use call::{apply, ApiCall, Names, Outcome};
pub use recording::RecordingPlatform;
