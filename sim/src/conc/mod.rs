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
//! * [`oracle`]: linearizability of accesses, callbacks, lock discipline, dirty logging.

pub mod bytes;
pub mod config;
pub mod exec;
pub mod hw;
pub mod migration;
pub mod oracle;
pub mod sched;
pub mod shrink;

pub use config::{Concurrency, SchedulerKind, Shootdown};

/// Whether `PGMSIM_CONC_DEBUG` is set: the executor then traces every step on stderr. Read
/// once per process (looking the variable up at every step cost about 6 % of a fuzz input).
pub(crate) fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("PGMSIM_CONC_DEBUG").is_some())
}
