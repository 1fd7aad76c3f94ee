//! Coverage: what a run or a sweep exercised, the figures users of cargo-fuzz (`cov:`,
//! `ft:`) and proptest (case statistics) expect, in the simulator's own terms:
//!
//! * operation × result: every API call (steps and device callbacks alike) by its status or
//!   error, and the simulator's steps (guest kernel edits, accesses by kind and outcome,
//!   harvests);
//! * page handler-state transitions, per page type (`MMIO A -> d`, alias types included);
//! * which invariant checks ran and how often, per step and in full checks;
//! * the swarm features of the worlds drawn (mode, vCPUs, TLB, devices, disabled families).
//!
//! Counted in [`Stats::coverage`](crate::world::Stats) by small hooks in the step loop
//! (`hooks`), merged by sweeps, printed by `table`, and checked against the cells the API can
//! produce (`cells`: `pgmsim coverage` lists what a sweep never reached).

pub mod cells;
mod counters;
pub(crate) mod hooks;
mod table;

pub use cells::Transition;
pub use counters::{Check, Coverage, Scope};
pub use hooks::PagesBefore;
pub use table::{render, render_gaps, transition_text, Gaps};
