//! What each thread of a concurrent run did, in the global order of scheduler decisions:
//! operations beginning and ending, the PGM lock taken and released, lock-free hardware
//! steps (a vCPU's own, inline inside another thread's operation, or run while a
//! synchronous shootdown waits), shootdowns and their acknowledgements, preemptions and
//! quiescent points. Step logs and reports draw it as one lane per thread.
//!
//! Recording is off unless an observer turns it on ([`crate::conc::hw::Hw::timeline`]):
//! a mark only appends to a list the run never reads, so a recorded run takes exactly the
//! decisions, and has exactly the trace hash, of an unrecorded one (tested).

use serde::Serialize;

use super::hw::Instr;
use super::sched::{self, Move};

/// A lock-free hardware step of a vCPU, named by what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HwStep {
    /// The exit at an instruction boundary with no instruction: acknowledges a shootdown.
    Ack,
    /// An issued access begins (acknowledging a pending shootdown first) and looks its page
    /// up in the TLB.
    Begin,
    /// A TLB lookup after a fault was resolved.
    Lookup,
    /// A hardware walk of the shadow (or nested) tables after a TLB miss.
    Walk,
    /// The memory access with the translation the instruction holds.
    Access,
    /// Nothing: the vCPU waits in the VMM for the lock.
    Exited,
}

impl HwStep {
    /// The step an instruction in state `instr` takes next.
    pub fn of(instr: Instr) -> HwStep {
        match instr {
            Instr::Idle => HwStep::Ack,
            Instr::Ready(_) => HwStep::Begin,
            Instr::Lookup(_) => HwStep::Lookup,
            Instr::Walk(_) => HwStep::Walk,
            Instr::Access(..) => HwStep::Access,
            Instr::Exit(_) => HwStep::Exited,
        }
    }

    /// A short verb for logs and hovers.
    pub fn verb(self) -> &'static str {
        match self {
            HwStep::Ack => "exits and acknowledges the shootdown",
            HwStep::Begin => "begins its access (TLB lookup)",
            HwStep::Lookup => "looks its page up in the TLB again",
            HwStep::Walk => "walks the tables after a TLB miss",
            HwStep::Access => "completes its memory access",
            HwStep::Exited => "waits in the VMM",
        }
    }
}

/// Where a lock-free step ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Within {
    /// At a top decision: the vCPU's own step.
    Own,
    /// Inline, at a preemption point of thread `holder`'s operation (`op`, if attributed).
    Inline {
        /// The thread running the manager operation (holding the lock).
        holder: u8,
        /// Its operation.
        op: Option<u32>,
    },
    /// While thread `requester` waited for the acknowledgements of its synchronous shootdown.
    FlushWait {
        /// The thread that requested the shootdown (holding the lock).
        requester: u8,
        /// Its operation.
        op: Option<u32>,
    },
}

/// One thing that happened. Operations are named as the executor names them (in a replay,
/// their index in the trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum Mark {
    /// `thread` started operation `op` (an access: issued; anything else: runs under the lock).
    Begin {
        /// The thread.
        thread: u8,
        /// The operation.
        op: u32,
    },
    /// Operation `op` of `thread` completed.
    End {
        /// The thread.
        thread: u8,
        /// The operation.
        op: u32,
    },
    /// `thread` took the PGM lock, working on `op` (if attributed).
    Acquire {
        /// The thread.
        thread: u8,
        /// Its operation.
        op: Option<u32>,
    },
    /// `thread` released the PGM lock (also: dropped it around a callback).
    Release {
        /// The thread.
        thread: u8,
        /// Its operation.
        op: Option<u32>,
    },
    /// A top decision chose `to` although `from`, which moved last, could have gone on.
    Preempt {
        /// The thread that could have gone on.
        from: u8,
        /// The thread chosen.
        to: u8,
    },
    /// vCPU `vcpu` took a lock-free step for operation `op` (none: an acknowledgement).
    Hw {
        /// The vCPU.
        vcpu: u8,
        /// The operation its instruction carries out.
        op: Option<u32>,
        /// What it did.
        step: HwStep,
        /// Where it ran.
        within: Within,
    },
    /// `thread`, working on `op`, requested a TLB shootdown; `pending` vCPUs (a bit each) were
    /// in guest mode and must acknowledge it at an exit.
    Shootdown {
        /// The requester.
        thread: u8,
        /// Its operation.
        op: Option<u32>,
        /// vCPUs that owe an acknowledgement.
        pending: u16,
    },
    /// vCPU `vcpu` flushed its TLB for a pending shootdown (at an exit or entering the VMM).
    Ack {
        /// The vCPU.
        vcpu: u8,
    },
    /// A quiescent point: no lock, no shootdown, no instruction in flight; invariants checked.
    Quiescent,
}

/// A mark and when it happened: `at` scheduler decisions had been taken before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Decisions taken before the mark.
    pub at: u64,
    /// What happened.
    pub mark: Mark,
}

/// An operation name as a timeline names it: `None` for a move that names a thread (a vCPU
/// with no operation) or for an unattributed decision.
pub fn op_name(m: Move) -> Option<u32> {
    if m == super::hw::UNATTRIBUTED || m & sched::THREAD != 0 {
        None
    } else {
        Some(m)
    }
}
