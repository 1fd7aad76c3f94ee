//! The concurrent world: vCPU threads and device threads stepped by a seeded scheduler in
//! one OS thread, a simulated PGM lock, TLB shootdowns that take effect at exits the
//! scheduler chooses, and the oracles that judge interleavings (`docs/semantics.md` §7).
//!
//! * [`config`]: how a concurrent world is drawn and forced (threads, scheduler, shootdown).
//! * [`sched`]: the schedulers (random, PCT, replay of a recorded schedule, guided search).
//! * [`bytes`]: a scheduler reading its decisions from a fuzzer's bytes.
//! * [`hw`]: the hardware half of the machine in a concurrent world: each vCPU's in-flight
//!   instruction, the PGM lock, pending shootdowns, and the lock-free hardware steps a
//!   manager operation may be preempted by.
//! * [`exec`]: the executor: threads, their operations, quiescent points and the checks.
//! * [`explore`]: systematic exploration of every schedule of a small trace with at most K
//!   preemptions (`pgmsim explore`).
//! * [`oracle`]: linearizability of accesses, callbacks, lock discipline, dirty logging.

pub mod bytes;
pub mod config;
pub mod exec;
pub mod explore;
pub mod hw;
pub mod migration;
pub mod oracle;
pub mod sched;
pub mod shrink;
pub mod timeline;

pub use config::{Concurrency, SchedulerKind, Shootdown};
