//! # pgmsim-sim: the deterministic simulator
//!
//! A seeded world — guest RAM, MMIO and MMIO2 ranges, vCPUs with a software MMU (guest page
//! tables in guest RAM, shadow page tables, set-associative TLBs) or nested paging (NEM) —
//! drives the production handler manager and the reference model side by side and checks
//! every invariant of `docs/semantics.md` §6 after every step. See ARCHITECTURE.md for the
//! data flow.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod check;
pub mod cli;
pub mod conc;
pub mod config;
pub mod coverage;
pub mod describe;
pub mod devices;
pub mod encode;
pub mod fuzzing;
pub mod gen;
pub mod machine;
pub mod memory;
pub mod mmu;
pub mod observe;
pub mod op;
pub mod report;
pub mod run;
pub mod shrink;
mod step;
pub mod steplog;
pub mod sweep;
pub mod trace;
pub mod world;

pub use check::{CheckMode, Failure, Invariant};
pub use config::{Overrides, SimConfig};
pub use op::{AccessKind, Op};
pub use run::{replay, run_entropy, run_seed, RunReport};
pub use trace::Trace;
pub use world::World;
