//! # pgmsim-testkit: test tooling shared by every suite
//!
//! Nothing here is part of the production manager; everything is built on its public API:
//!
//! * [`call`]: **one vocabulary of API calls** ([`ApiCall`]), handlers and types named by
//!   creation index, and the one function that applies a call to any
//!   [`pgmsim::PhysHandlerApi`] ([`apply`]). The simulator, the differential suite, the
//!   `api_robustness` fuzz target and the hardening tests all speak it. Each call also
//!   declares its operands by role ([`ApiCall::visit_mut`], [`spec::Operand`]) and its
//!   metadata ([`CALLS`], [`spec::CallSpec`]), from which the simulator derives the trace
//!   encoding, the pages a step touched, step-log text, coverage rows and shrinking.
//! * [`names`]: what creation indices mean on one side; [`outcome`]: what a call answered
//!   and the "a failed call changed nothing" check.
//! * [`compare`]: the whole-state comparison of two sides that every lock-step driver uses.
//! * [`hex`]: addresses in JSON as `"0x…"` strings (numbers still read).
//! * [`RecordingPlatform`]: a [`pgmsim::Platform`] that records every call.
//! * [`render`]: stable text renderings of manager state for snapshots and step logs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod call;
pub mod compare;
pub mod hex;
pub mod names;
pub mod outcome;
mod recording;
pub mod render;
pub mod spec;

pub use call::{apply, ApiCall, CallSpec, Footprint, Names, Operand, Outcome, CALLS};
pub use recording::RecordingPlatform;
